"""HTTP for the delta index: pooled connections, timeouts, retries, bounded and verified downloads."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from pipdelta import __version__
from pipdelta.errors import PipdeltaError

USER_AGENT = f"pipdelta/{__version__}"
MAX_JSON = 64 << 20  # no project's delta metadata comes near this
# Redirects are followed (mirrors move pages and files); every other retry is this module's own, with backoff.
_REDIRECTS = urllib3.Retry(total=None, connect=0, read=0, redirect=5, status=0, other=0, raise_on_redirect=False)


class FetchError(PipdeltaError):
    """A download failed, was cut short, was larger than declared or had the wrong sha256.

    ``status`` is the HTTP status when the server answered with an error; ``transient`` says whether
    another try may succeed (no connection, a 5xx, a body cut short).
    """

    def __init__(self, message: str, status: int | None = None, *, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class Http:
    """One connection pool per host, shared by every download of a run (threads included)."""

    def __init__(self, *, timeout: float = 15.0, retries: int = 2) -> None:
        self.timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        self.retries = retries
        self._proxies = urllib.request.getproxies()  # HTTPS_PROXY, HTTP_PROXY, NO_PROXY, as pip reads them
        # Installers such as uv ask for many files at once; each host keeps up to 16 connections alive.
        self._direct = urllib3.PoolManager(maxsize=16, headers={"User-Agent": USER_AGENT})
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._lock = threading.Lock()

    def _pool(self, url: str) -> urllib3.PoolManager:
        parsed = urllib3.util.parse_url(url)
        proxy = self._proxies.get(parsed.scheme or "")
        if not proxy or urllib.request.proxy_bypass(parsed.host or ""):
            return self._direct
        with self._lock:
            if proxy not in self._proxied:
                self._proxied[proxy] = urllib3.ProxyManager(proxy, maxsize=16, headers={"User-Agent": USER_AGENT})
            return self._proxied[proxy]

    def get(
        self,
        url: str,
        *,
        limit: int,
        sha256: str | None = None,
        size: int | None = None,
        progress: Callable[[int], None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """The body at ``url``: at most ``limit`` bytes, and exactly ``size`` with ``sha256`` when given.

        Connection errors, 5xx answers and bodies cut short are retried with a short backoff.
        """
        data: bytes = self._with_retries(url, lambda: self._get_once(url, limit, sha256, size, progress, headers))
        return data

    def open(self, url: str, *, headers: Mapping[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        """A streaming ``GET`` answered 200 or 206 (the caller reads and releases it); retried like :meth:`get`."""

        def once() -> urllib3.BaseHTTPResponse:
            response = self._pool(url).request(
                "GET", url, headers=_headers(headers), timeout=self.timeout, retries=_REDIRECTS, preload_content=False
            )
            if response.status not in (200, 206):
                response.release_conn()
                raise FetchError(f"{url} answered {response.status}", response.status, transient=response.status >= 500)
            return response

        answer: urllib3.BaseHTTPResponse = self._with_retries(url, once)
        return answer

    def post_json(self, url: str, document: Any, *, limit: int = MAX_JSON) -> tuple[int, Any]:
        """POST ``document``; the status and the decoded JSON answer (None when the answer is not JSON)."""
        body = json.dumps(document).encode()

        def once() -> tuple[int, Any]:
            response = self._pool(url).request(
                "POST",
                url,
                body=body,
                headers={"Content-Type": "application/json", "Accept": "application/vnd.pipdelta.v1+json"},
                timeout=self.timeout,
                retries=False,
                preload_content=False,
            )
            try:
                if response.status >= 500 and response.status != 501:  # 501: no such endpoint here
                    raise FetchError(f"{url} answered {response.status}", response.status, transient=True)
                data = _read(response, url, limit, None, progress=None)
            finally:
                response.release_conn()
            try:
                return response.status, json.loads(data)
            except (ValueError, RecursionError):
                return response.status, None

        answer: tuple[int, Any] = self._with_retries(url, once)
        return answer

    def patience(self) -> float:
        """The longest one :meth:`get` may take before it gives up: every try timed out, every backoff slept."""
        read = self.timeout.read_timeout
        tries = (read if isinstance(read, float | int) else 0.0) * (self.retries + 1)
        return tries + sum(_backoff(attempt) for attempt in range(1, self.retries + 1))

    def _with_retries(self, url: str, once: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                return once()
            except FetchError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
            except Urllib3Error as exc:
                if attempt >= self.retries:
                    raise FetchError(f"cannot download {url}: {_reason(exc)}", transient=True) from None
            attempt += 1
            time.sleep(_backoff(attempt))

    def _get_once(
        self,
        url: str,
        limit: int,
        sha256: str | None,
        size: int | None,
        progress: Callable[[int], None] | None,
        headers: Mapping[str, str] | None,
    ) -> bytes:
        response = self._pool(url).request(
            "GET", url, headers=_headers(headers), timeout=self.timeout, retries=_REDIRECTS, preload_content=False
        )
        try:
            if response.status != 200:
                raise FetchError(f"{url} answered {response.status}", response.status, transient=response.status >= 500)
            return _read(response, url, limit if size is None else min(limit, size), size, progress, sha256)
        finally:
            response.release_conn()


def _read(
    response: urllib3.BaseHTTPResponse,
    url: str,
    limit: int,
    size: int | None,
    progress: Callable[[int], None] | None,
    sha256: str | None = None,
) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise FetchError(f"{url} is {int(declared):,} bytes, more than the {limit:,} expected")
    data = bytearray()
    for chunk in response.stream(1 << 16):
        data += chunk
        if len(data) > limit:
            raise FetchError(f"{url} sent more than the {limit:,} bytes expected")
        if progress is not None:
            progress(len(chunk))
    if size is not None and len(data) != size:
        # Fewer bytes than pinned: the transfer was cut short; worth another try.
        raise FetchError(f"{url} ended after {len(data):,} of {size:,} bytes", transient=True)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
        raise FetchError(f"{url} does not have the sha256 the delta index pins")
    return bytes(data)


def _backoff(attempt: int) -> float:
    return 0.2 * 2.0**attempt


def _headers(extra: Mapping[str, str] | None) -> dict[str, str]:
    return {"User-Agent": USER_AGENT, **(extra or {})}


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).split(": ", 1)[-1][:200]
