"""HTTP for the delta index: pooled connections, timeouts, retries, bounded and verified downloads."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from pipdelta import __version__
from pipdelta.errors import PipdeltaError

USER_AGENT = f"pipdelta/{__version__}"
MAX_JSON = 64 << 20  # no project's delta metadata comes near this
MAX_RETRY_AFTER = 30.0  # a busy server's Retry-After is honoured up to this many seconds
# Redirects are followed (mirrors move pages and files); every other retry is this module's own, with backoff.
_REDIRECTS = urllib3.Retry(total=None, connect=0, read=0, redirect=5, status=0, other=0, raise_on_redirect=False)


class FetchError(PipdeltaError):
    """A download failed, was cut short, was larger than declared or had the wrong sha256.

    ``status`` is the HTTP status when the server answered with an error; ``transient`` says whether
    another try may succeed (no connection, a 5xx, a body cut short); ``retry_after`` is how long a busy
    server asked the client to wait before that try.
    """

    def __init__(
        self, message: str, status: int | None = None, *, transient: bool = False, retry_after: float = 0.0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after


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
        self._credentials: dict[str, dict[str, str]] = {}  # basic auth by origin (scheme://host:port)

    def authorize(self, url: str) -> str:
        """``url`` without its credentials, which are sent (HTTP basic) to its origin alone from now on.

        The URL returned is the only spelling that reaches messages and reports.
        """
        parts = urllib.parse.urlsplit(url)
        if parts.username is None:
            return url
        origin = _origin(parts)
        secret = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        self._credentials[origin] = urllib3.make_headers(basic_auth=secret)
        return urllib.parse.urlunsplit((parts.scheme, origin.split("://", 1)[1], parts.path, parts.query, ""))

    def _headers(self, url: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        origin = _origin(urllib.parse.urlsplit(url))
        return {"User-Agent": USER_AGENT, **self._credentials.get(origin, {}), **(extra or {})}

    def _stream(self, url: str, headers: Mapping[str, str] | None) -> urllib3.BaseHTTPResponse:
        """A ``GET`` whose body is not read yet (redirects followed)."""
        response: urllib3.BaseHTTPResponse = self.pool(url).request(
            "GET",
            url,
            headers=self._headers(url, headers),
            timeout=self.timeout,
            retries=_REDIRECTS,
            preload_content=False,
        )
        return response

    def pool(self, url: str) -> urllib3.PoolManager:
        """The connection pool for ``url``: direct, or through the proxy pip would use."""
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
            response = self._stream(url, headers)
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
            response = self.pool(url).request(
                "POST",
                url,
                body=body,
                headers=self._headers(
                    url, {"Content-Type": "application/json", "Accept": "application/vnd.pipdelta.v1+json"}
                ),
                timeout=self.timeout,
                retries=False,
                preload_content=False,
            )
            try:
                if response.status >= 500 and response.status != 501:  # 501: no such endpoint here
                    wait = _retry_after(response.headers.get("Retry-After"))
                    raise FetchError(
                        f"{url} answered {response.status}", response.status, transient=True, retry_after=wait
                    )
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
            wait = 0.0
            try:
                return once()
            except FetchError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
                wait = exc.retry_after
            except Urllib3Error as exc:
                if attempt >= self.retries:
                    raise FetchError(f"cannot download {url}: {_reason(exc)}", transient=True) from None
            attempt += 1
            # A busy server's Retry-After, spread a little so that a fleet does not come back all at once.
            time.sleep(wait * random.uniform(1.0, 1.5) if wait else _backoff(attempt))

    def _get_once(
        self,
        url: str,
        limit: int,
        sha256: str | None,
        size: int | None,
        progress: Callable[[int], None] | None,
        headers: Mapping[str, str] | None,
    ) -> bytes:
        response = self._stream(url, headers)
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


def _retry_after(header: str | None) -> float:
    """Seconds from a ``Retry-After: N`` header (an HTTP date, or none: 0), at most MAX_RETRY_AFTER."""
    text = (header or "").strip()
    return min(float(text), MAX_RETRY_AFTER) if text.isdigit() else 0.0


def _origin(parts: urllib.parse.SplitResult) -> str:
    """``scheme://host[:port]``, without credentials."""
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def _backoff(attempt: int) -> float:
    return 0.2 * 2.0**attempt


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).split(": ", 1)[-1][:200]
