"""An upstream file streamed through unchanged, resumed where a connection drops, and kept in the cache."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator

import urllib3

from pipdelta.client.cache import Cache
from pipdelta.client.http import Http
from pipdelta.proxy.targets import Target
from pipdelta.proxy.upstreams import Upstream, UpstreamError, strip

_CHUNK = 1 << 16


class Download:
    """``open()`` the first answer (its errors are the installer's to see), then iterate ``chunks()``."""

    def __init__(self, upstream: Upstream, http: Http, target: Target, cache: Cache | None) -> None:
        self.upstream = upstream
        self.http = http
        self.target = target
        self.cache = cache  # wheels are kept, to be the old version next time
        self.length: int | None = target.size
        self.received = 0
        self.sha256: str | None = None  # of the whole file, once it arrived complete

    def open(self) -> urllib3.BaseHTTPResponse:
        response = self.upstream.open(self.http, self.target.url)
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit():
            self.length = int(declared)
        return response

    def chunks(self, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        """The file's bytes; a dropped connection is resumed (``Range``) up to the client's retry count."""
        digest = hashlib.sha256()
        keep = self._spool()
        failures = 0
        try:
            while True:
                try:
                    for chunk in self._skip(response):
                        digest.update(chunk)
                        if keep is not None:
                            keep.write(chunk)
                        self.received += len(chunk)
                        yield chunk
                    if self.length is None or self.received >= self.length:
                        break
                    raise urllib3.exceptions.ProtocolError("the answer ended early")
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    failures += 1
                    if failures > self.http.retries:
                        raise UpstreamError(f"{strip(self.target.url)} broke off: {exc}") from None
                finally:
                    response.release_conn()
                response = self.upstream.open(self.http, self.target.url, self.received)
            self.sha256 = digest.hexdigest()
            self._keep(keep)
            keep = None
        finally:
            if keep is not None:
                keep.close()
                os.unlink(keep.name)

    def _skip(self, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        """The answer's bytes past those already sent (a server that ignores ``Range`` starts again at 0)."""
        skip = self.received if response.status == 200 else 0
        for chunk in response.stream(_CHUNK):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:]
            skip = 0

    def _spool(self) -> tempfile._TemporaryFileWrapper[bytes] | None:
        if self.cache is None:
            return None
        folder = self.cache.directory / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False)

    def _keep(self, spool: tempfile._TemporaryFileWrapper[bytes] | None) -> None:
        """Into the cache, if the file has the sha256 its page lists (or the page lists none)."""
        if spool is None:
            return
        spool.close()
        listed = self.target.sha256
        if self.sha256 is not None and (listed is None or listed.lower() == self.sha256) and self.cache is not None:
            self.cache.keep(self.target.filename, spool.name, self.sha256)
        else:
            os.unlink(spool.name)
