"""The local index as a WSGI application: project pages, ``.metadata`` files and wheels, behind a secret prefix."""

from __future__ import annotations

import contextlib
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from pipdelta.client.cache import Cache
from pipdelta.client.http import Http
from pipdelta.client.report import Outcome
from pipdelta.proxy import pages
from pipdelta.proxy.download import Download
from pipdelta.proxy.lanes import Lane
from pipdelta.proxy.ledger import Ledger
from pipdelta.proxy.pages import Page
from pipdelta.proxy.targets import Target
from pipdelta.proxy.timing import Meter
from pipdelta.proxy.upstreams import Upstream, UpstreamError, strip, token, untoken
from pipdelta.server.logs import JsonLog

if TYPE_CHECKING:  # the rebuild machinery is imported while the installer starts (see ``local``)
    from pipdelta.proxy.jobs import Job, Rebuilds

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Answer = tuple[str, list[tuple[str, str]], Iterable[bytes]]
_STATUS = {200: "200 OK", 301: "301 Moved Permanently", 404: "404 Not Found", 406: "406 Not Acceptable"}
_CHUNK = 1 << 16
PAGES = 4  # pages read at once before the installer asks for them


class ProxyApp:
    """``/{secret}/{n}/simple/{project}/`` and ``/{secret}/{n}/files/{token}/{filename}`` for upstream ``n``."""

    def __init__(
        self,
        secret: str,
        upstreams: Sequence[Upstream],
        http: Http,
        cache: Cache,
        meter: Meter,
        ledger: Ledger,
        log: JsonLog,
    ) -> None:
        self.secret = secret
        self.upstreams = upstreams
        self.http = http
        self.cache = cache
        self.meter = meter
        self.ledger = ledger
        self.log = log
        self._targets: dict[str, Target] = {}  # upstream file URL -> what its page says about it
        self._seen: dict[str, str] = {}  # upstream file URL -> sha256 of the bytes it sent (pages without hashes)
        self._early: dict[tuple[int, str], Future[Page | None]] = {}  # pages read before the installer asks
        self._lock = threading.Lock()
        self._rebuilds: Rebuilds | None = None  # attached once imported and started (pages need none of it)
        self._ready = threading.Event()
        self._waiting: list[Target] = []  # to rebuild once attached
        self._closed = False
        self._reading: Lane[tuple[int, Requirement, Future[Page | None]]] = Lane("page", PAGES, self._read_early)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        try:
            status, headers, body = self._route(environ, method, path)
        except UpstreamError as exc:  # the installer sees what it would have seen from upstream itself
            status = f"{exc.status} Upstream Error" if exc.status else "502 Bad Gateway"  # 502: unreachable
            self.log.event("upstream-error", error=strip(str(exc)))
            headers, body = [("Content-Type", "text/plain")], [strip(str(exc)).encode()]
        except Exception as exc:  # a bug: one logged event and a 500, never a hang
            self.log.event("error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            status, headers, body = "500 Internal Server Error", [("Content-Type", "text/plain")], [b"internal error"]
        if isinstance(body, list) and not any(key == "Content-Length" for key, _ in headers):
            headers = [*headers, ("Content-Length", str(sum(map(len, body))))]
        if method == "HEAD":
            body = []
        start_response(status, headers)
        return body

    def _route(self, environ: Environ, method: str, path: str) -> Answer:
        parts = path.split("/")
        if len(parts) < 5 or parts[1] != self.secret or not parts[2].isdigit() or int(parts[2]) >= len(self.upstreams):
            return _plain(404, "not found")  # another user of this machine: the secret prefix is not theirs
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", [("Allow", "GET, HEAD")], [b""]
        index, area, rest = int(parts[2]), parts[3], parts[4:]
        if area == "simple" and len(rest) == 2 and rest[0] and rest[1] == "":
            return self._page(index, rest[0], environ.get("HTTP_ACCEPT"))
        if area == "files" and len(rest) == 2 and (url := untoken(rest[0])) is not None:
            filename = urllib.parse.unquote(rest[1])
            if filename.endswith(".metadata") and url.rsplit("/", 1)[-1] != rest[1]:
                return self._metadata(index, url, filename.removesuffix(".metadata"))
            return self._file(index, url, filename, method)
        return _plain(404, "not found")

    def local_url(self, index: int, url: str, filename: str) -> str:
        """The path under which this index serves upstream ``index``'s ``url`` (stable across runs)."""
        return f"/{self.secret}/{index}/files/{token(url)}/{urllib.parse.quote(filename)}"

    def _page(self, index: int, project: str, accept: str | None) -> Answer:
        name = canonicalize_name(project)
        if name != project:  # as PyPI does: one URL per project
            return "301 Moved Permanently", [("Location", f"/{self.secret}/{index}/simple/{name}/")], [b""]
        kind = pages.negotiate(accept)
        if kind is None:
            return _plain(406, "this index serves PEP 691 JSON and PEP 503 HTML")
        page = self._upstream_page(index, name)
        if page is None:
            return _plain(404, f"no project {name}")
        listed = self._listed(index, page)
        self._guess(listed)
        body = pages.render(pages.rewrite(page, lambda url, filename: self.local_url(index, url, filename)), kind)
        content_type = "text/html; charset=utf-8" if kind == "text/html" else kind
        return "200 OK", [("Content-Type", content_type), ("Vary", "Accept"), ("Cache-Control", "max-age=0")], [body]

    def start_early(self, requirements: Sequence[Requirement]) -> None:
        """Read the pages of what the installer was asked for before it asks, and start rebuilding the newest wheels
        each requirement admits (the rebuilds of the wheels pip will want then overlap its start and each other).

        The installer's first request for such a page is answered with the page read here.
        """
        for index in range(len(self.upstreams)):
            for requirement in requirements:
                early: Future[Page | None] = Future()
                with self._lock:
                    key = (index, canonicalize_name(requirement.name))
                    if key in self._early:
                        continue
                    self._early[key] = early
                self._reading.put(0, early, (index, requirement, early))

    def attach(self, rebuilds: Rebuilds | None) -> None:
        """The rebuild machinery is ready (None: it could not start, and every wheel comes from upstream); the
        rebuilds asked for meanwhile start now."""
        with self._lock:
            closed, self._rebuilds, waiting, self._waiting = self._closed, rebuilds, self._waiting, []
            self._ready.set()
        if rebuilds is None:
            return
        if closed:  # the run ended before the machinery was up
            rebuilds.close()
            return
        for target in waiting:
            rebuilds.start(target)

    @property
    def rebuilds(self) -> Rebuilds | None:
        """The rebuild machinery, once attached (waited for as long as a wheel waits for its rebuild)."""
        self._ready.wait(self.meter.wait)
        return self._rebuilds

    def _start(self, target: Target) -> None:
        """Rebuild ``target`` in the background: now, or once the machinery is attached."""
        with self._lock:
            if not self._ready.is_set():
                self._waiting.append(target)
                return
        if self._rebuilds is not None:
            self._rebuilds.start(target)

    def close(self) -> None:
        """Read no more pages early, start no more rebuilds."""
        self._reading.close()
        with self._lock:
            rebuilds, self._closed = self._rebuilds, True
        if rebuilds is not None:
            rebuilds.close()

    def _read_early(self, item: tuple[int, Requirement, Future[Page | None]]) -> None:
        index, requirement, early = item
        if not early.set_running_or_notify_cancel():
            return  # the installer asked first, and read the page itself
        try:
            page = self.upstreams[index].page(self.http, canonicalize_name(requirement.name))
        except Exception as exc:  # the installer's own request reads it again, and sees the error if it lasts
            early.set_exception(exc)
            return
        early.set_result(page)
        if page is not None:
            for target in _newest(self._listed(index, page), requirement.specifier):
                self._start(target)

    def _upstream_page(self, index: int, name: str) -> Page | None:
        """The project's page from upstream ``index``: the one read early, if it was, else read now."""
        with self._lock:
            early = self._early.pop((index, name), None)
        if early is not None and not early.cancel():  # being read, or read: its answer
            with contextlib.suppress(Exception):
                return early.result()
        return self.upstreams[index].page(self.http, name)

    def _listed(self, index: int, page: Page) -> list[tuple[Target, dict[str, Any]]]:
        """The files of ``page``, each as the target it is (remembered, for the installer's requests of them)."""
        listed = []
        for entry in page["files"]:
            hashes = entry.get("hashes") or {}
            sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
            size = entry.get("size")
            target = Target(index, entry["url"], entry["filename"], sha256, size if type(size) is int else None)
            listed.append((target, entry))
        with self._lock:
            self._targets.update((t.url, t) for t, _ in listed)
        return listed

    def _guess(self, listed: list[tuple[Target, dict[str, Any]]]) -> None:
        """Rebuild the newest wheels while the installer resolves, where no ``.metadata`` request will say more."""
        bare = [(t, e) for t, e in listed if not e.get("core-metadata", e.get("dist-info-metadata"))]
        for target in _newest(bare, SpecifierSet()):
            self._start(target)

    def _target(self, index: int, url: str, filename: str) -> Target:
        with self._lock:
            target = self._targets.get(url)
        if target is None and _is_wheel(filename):  # a page from before this process: read it again
            self._page(index, parse_wheel_filename(filename)[0], None)
            with self._lock:
                target = self._targets.get(url)
        return target or Target(index, url, filename, None, None)

    def _metadata(self, index: int, url: str, filename: str) -> Answer:
        target = self._target(index, url, filename)
        if target.sha256 and _is_wheel(filename):
            self._start(target)  # the resolver looks at this version: rebuild it while it resolves
        data = self.upstreams[index].metadata(self.http, url + ".metadata")
        return "200 OK", [("Content-Type", "application/octet-stream")], [data]

    def _file(self, index: int, url: str, filename: str, method: str) -> Answer:
        target = self._target(index, url, filename)
        if method == "HEAD":
            return "200 OK", [("Content-Length", str(target.size))] if target.size else [], []
        rebuilds = self.rebuilds if _is_wheel(filename) and target.sha256 else None
        cached = None if rebuilds is not None and rebuilds.get(url) else self._cached(target)  # the job's wheel
        if cached is not None:
            row = Outcome(
                target.name, None, str(target.version), "cached", "", cached.stat().st_size, 0, "cached wheel"
            )
            self.ledger.record(filename, row)
            return _serve(cached)
        job = rebuilds.start(target) if rebuilds is not None else None
        if rebuilds is not None and job is not None:
            rebuilds.hurry(job)
            finished = job.done.wait(self.meter.deadline(target.size))
            if not finished and job.fetched_all.is_set():
                # its patches are here: the rest is this machine's work, busy with the other rebuilds of the run
                finished = job.done.wait(self.meter.wait)
            if job.path is not None:
                self.ledger.record(filename, job.outcome)
                return _serve(job.path)
            reason = job.outcome.reason if finished else f"past the deadline ({self.meter.deadline(target.size):.1f} s)"
            if job.failed or not finished:
                self.ledger.warn(f"{target.name} {target.version}: {reason}; downloading the full wheel")
            return self._stream(target, job, reason)
        if not _is_wheel(filename):
            reason = "not a wheel"
        elif target.sha256 is None:
            reason = "the index publishes no sha256 to verify a rebuilt wheel against"
        else:
            reason = "the rebuilds could not start"
        return self._stream(target, None, reason)

    def _cached(self, target: Target) -> Path | None:
        with self._lock:
            sha256 = target.sha256 or self._seen.get(target.url)
        return self.cache.find(sha256) if sha256 and _is_wheel(target.filename) else None

    def _stream(self, target: Target, job: Job | None, reason: str) -> Answer:
        download = Download(
            self.upstreams[target.index], self.http, target, self.cache if _is_wheel(target.filename) else None
        )
        counted = self.meter.started(target.size)
        try:
            first = download.open()
        except BaseException:
            if counted:
                self.meter.finished(0)
            raise
        length = download.length
        headers = [("Content-Type", "application/octet-stream")]
        if length is not None:
            headers.append(("Content-Length", str(length)))

        def body() -> Iterator[bytes]:
            try:
                yield from download.chunks(first)
            finally:
                if counted:
                    self.meter.finished(download.received)
            if download.sha256 is not None:
                with self._lock:
                    self._seen[target.url] = download.sha256
            old = job.outcome.old if job is not None else None
            wasted = job.fetched if job is not None else 0
            outcome = Outcome(target.name, old, str(target.version), reason=reason, full_size=download.received)
            outcome.downloaded = download.received + wasted
            if _is_wheel(target.filename):
                self.ledger.record(target.filename, outcome)

        return "200 OK", headers, body()


def _newest(listed: list[tuple[Target, dict[str, Any]]], specifier: SpecifierSet) -> list[Target]:
    """The wheels (with a sha256, not yanked) of the newest version ``specifier`` admits, as pip would choose it:
    a pre-release only where the specifier names one or nothing else is listed."""
    wheels = [t for t, e in listed if _is_wheel(t.filename) and t.sha256 and not e.get("yanked")]
    versions = list(specifier.filter({t.version for t in wheels}))
    if not versions:
        return []
    newest = max(versions)
    return [t for t in wheels if t.version == newest]


def _serve(path: Path) -> Answer:
    size = path.stat().st_size

    def body() -> Iterator[bytes]:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                yield chunk

    return "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))], body()


def _plain(status: int, text: str) -> Answer:
    return _STATUS[status], [("Content-Type", "text/plain")], [text.encode()]


def _is_wheel(filename: str) -> bool:
    if not filename.endswith(".whl"):
        return False
    try:
        parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return True
