"""The user's real indexes: each one's URL without credentials, and the credentials sent to it alone."""

from __future__ import annotations

import base64
import netrc
import urllib.parse
from dataclasses import dataclass, field

import urllib3

from pipdelta.client.http import MAX_JSON, FetchError, Http
from pipdelta.errors import PipdeltaError
from pipdelta.proxy import pages
from pipdelta.proxy.pages import Page

MAX_METADATA = 16 << 20  # a wheel's METADATA is a few kB; the largest on PyPI are under 1 MB


class UpstreamError(PipdeltaError):
    """An upstream index answered with an error or could not be reached; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upstream:
    """``Upstream.parse("https://user:token@mirror.example/simple")``: one index and its credentials."""

    url: str  # the base URL ending in "/", never with credentials: the only spelling logs and pages see
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> Upstream:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PipdeltaError(f"the index URL {strip(url)} is not an http(s) URL")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        clean = urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/") + "/", "", ""))
        user = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password else None
        return cls(clean, user, password)

    def headers(self, url: str) -> dict[str, str]:
        """Authorization for ``url``: the index's own credentials on its host (as pip does), else ``.netrc``'s."""
        host = urllib.parse.urlsplit(url).netloc
        if self.username is not None and host == urllib.parse.urlsplit(self.url).netloc:
            return urllib3.make_headers(basic_auth=f"{self.username}:{self.password or ''}")
        found = _netrc(urllib.parse.urlsplit(url).hostname or "")
        return urllib3.make_headers(basic_auth=f"{found[0]}:{found[1]}") if found else {}

    def page(self, http: Http, project: str) -> Page | None:
        """The project's page as PEP 691 JSON (None when upstream has no such project)."""
        url = urllib.parse.urljoin(self.url, f"{project}/")
        try:
            response = http.open(url, headers={"Accept": pages.ACCEPT, **self.headers(url)})
        except FetchError as exc:
            if exc.status == 404:
                return None
            raise UpstreamError(f"the index {strip(url)} failed: {strip(str(exc))}", exc.status) from None
        try:
            body = response.read(MAX_JSON + 1)
            final = urllib.parse.urljoin(url, response.url or "")  # a path after a redirect on the same host
            kind = response.headers.get("Content-Type", "text/html").split(";")[0].strip().lower()
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamError(f"the index {strip(url)} failed: {exc}") from None
        finally:
            response.release_conn()
        if len(body) > MAX_JSON:
            raise UpstreamError(f"the page {strip(url)} is larger than {MAX_JSON:,} bytes")
        page = pages.parse(body, kind, final)
        page.setdefault("name", project)
        return page

    def metadata(self, http: Http, url: str) -> bytes:
        """A wheel's ``.metadata`` file (PEP 658), as upstream serves it."""
        try:
            return http.get(url, limit=MAX_METADATA, headers=self.headers(url))
        except FetchError as exc:
            raise UpstreamError(f"{strip(url)} failed: {strip(str(exc))}", exc.status) from None

    def open(self, http: Http, url: str, offset: int = 0) -> urllib3.BaseHTTPResponse:
        """A streaming download of ``url`` from byte ``offset`` on (the answer may still start at 0: a 200)."""
        headers = self.headers(url)
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            return http.open(url, headers=headers)
        except FetchError as exc:
            raise UpstreamError(f"{strip(url)} failed: {strip(str(exc))}", exc.status) from None


def strip(text: str) -> str:
    """``text`` with the credentials of any URL in it replaced by ``***``."""
    out = []
    for word in text.split(" "):
        parts = urllib.parse.urlsplit(word) if "://" in word else None
        if (parts is not None and parts.password is not None) or (parts is not None and parts.username is not None):
            word = word.replace(parts.netloc.rsplit("@", 1)[0] + "@", "***@", 1)
        out.append(word)
    return " ".join(out)


def token(url: str) -> str:
    """A path segment that names ``url`` (stable, so installers' HTTP caches recognise a file next time)."""
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def untoken(text: str) -> str | None:
    """The URL a :func:`token` names; None for anything that is not one of an http(s) URL."""
    try:
        url = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return url if urllib.parse.urlsplit(url).scheme in ("http", "https") else None


def _netrc(host: str) -> tuple[str, str] | None:
    try:
        found = netrc.netrc().authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return (found[0] or "", found[2] or "") if found else None
