"""The WSGI application: static index files, ``POST /query``, ``/health`` and ``/stats``, with JSON-lines logs."""

from __future__ import annotations

import functools
import json
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from packaging.utils import NormalizedName

from pipdelta.index import files
from pipdelta.index.bounds import MAX_BODY
from pipdelta.index.decide import Decision, decide
from pipdelta.index.model import API_VERSION, CONTENT_TYPE, DeltaEntry, IndexFormatError
from pipdelta.index.policy import Policy, PolicyFile
from pipdelta.index.query import Installed, Query
from pipdelta.server.catalog import Catalog
from pipdelta.server.gate import Full, Gate
from pipdelta.server.logs import JsonLog
from pipdelta.server.static import StaticFile, resolve
from pipdelta.server.stats import Stats
from pipdelta.server.upstream import UpstreamError

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
QUERY_TYPES = ("application/json", CONTENT_TYPE)
WORK, WORK_PER_CLIENT = 6, 4  # queries (and the on-demand builds they wait for) in flight: in all, per client


class HttpError(Exception):
    """An answer other than 200, with the message the client reads in ``{"error": ...}``."""

    def __init__(self, status: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


class IndexApp:
    """``IndexApp(catalog, policy)`` is a WSGI application serving one delta index."""

    def __init__(
        self,
        catalog: Catalog,
        policy: Policy | PolicyFile | None = None,
        *,
        base_url: str | None = None,
        log: JsonLog | None = None,
        stats: Stats | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.catalog = catalog
        self.policy = policy or Policy()
        self.base_url = base_url.rstrip("/") if base_url else None
        self.log = log or JsonLog()
        self.stats = stats or Stats()
        self.gate = gate or Gate(WORK, WORK_PER_CLIENT)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        try:
            status, headers, body = self._route(environ, method, path)
        except HttpError as exc:
            self.stats.add(bad_requests=exc.status.startswith("4"))
            status, headers, body = exc.status, exc.headers, [_json({"error": str(exc)})]
            headers = [("Content-Type", "application/json"), *headers]
        except Exception as exc:  # a bug or a failing disk: one logged event and a 500, never a hang
            self.log.event(
                "error",
                method=method,
                path=path,
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
            status, body = "500 Internal Server Error", [_json({"error": "internal error (logged on the server)"})]
            headers = [("Content-Type", "application/json")]
        length = next((int(v) for k, v in headers if k == "Content-Length"), None)
        if length is None and isinstance(body, list) and not status.startswith("304"):
            length = sum(map(len, body))
            headers = [*headers, ("Content-Length", str(length))]
        start_response(status, headers)
        self.log.event(
            "request",
            method=method,
            path=path,
            status=int(status[:3]),
            bytes=length,
            ms=round(1000 * (time.perf_counter() - started), 2),
            client=environ.get("REMOTE_ADDR"),
        )
        return [] if method == "HEAD" else body

    def _route(self, environ: Environ, method: str, path: str) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
        if path == "/query":
            if method != "POST":
                raise HttpError("405 Method Not Allowed", "use POST for /query", [("Allow", "POST")])
            try:
                with self.gate.enter(environ.get("REMOTE_ADDR", "")):
                    answer = self.query(environ)
            except Full as exc:
                raise HttpError("503 Service Unavailable", f"{exc}; try again", [("Retry-After", "1")]) from None
            return "200 OK", [("Content-Type", CONTENT_TYPE)], [_json(answer)]
        if method not in ("GET", "HEAD"):
            raise HttpError("405 Method Not Allowed", f"{method} is not allowed here", [("Allow", "GET, HEAD")])
        if path == "/health":
            return "200 OK", [("Content-Type", "application/json")], [_json({"status": "ok"})]
        if path == "/stats":
            return "200 OK", [("Content-Type", "application/json")], [_json(self.stats.snapshot())]
        found = resolve(self.catalog.root, path)
        if found is None:
            raise HttpError("404 Not Found", "no such file in this index")
        return self._file(environ, method, path, found)

    def _file(
        self, environ: Environ, method: str, path: str, found: StaticFile
    ) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
        headers = [("Content-Type", found.content_type), ("ETag", found.etag), ("Cache-Control", "max-age=300")]
        if found.etag in environ.get("HTTP_IF_NONE_MATCH", ""):
            return "304 Not Modified", headers, []
        headers.append(("Content-Length", str(found.size)))
        if method == "HEAD":
            return "200 OK", headers, []
        try:
            stream = found.path.open("rb")
        except OSError:
            raise HttpError("404 Not Found", "no such file in this index") from None
        if found.path.suffix == ".pdelta":
            self._count_patch(path, found.size)
        wrapper = environ.get("wsgi.file_wrapper", _chunks)
        return "200 OK", headers, wrapper(stream, 1 << 16)

    def _count_patch(self, path: str, size: int) -> None:
        parts = [p for p in path.split("/") if p]
        if len(parts) != 3 or parts[1] != files.PATCHES:
            return
        project = self.catalog.project(NormalizedName(parts[0]))
        url = f"{files.PATCHES}/{parts[2]}"
        delta = next((d for d in project.deltas if d.url == url), None) if project else None
        self.stats.add(patches_served=1, patch_bytes_served=size, full_bytes_replaced=delta.new.size if delta else 0)

    def query(self, environ: Environ) -> dict[str, Any]:
        """The upgrade query (docs/INDEX.md): every installed distribution's answer, keyed by project."""
        kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if kind not in QUERY_TYPES:
            raise HttpError("415 Unsupported Media Type", f"send the query as {QUERY_TYPES[0]}, not {kind!r}")
        try:
            query = Query.parse(_body(environ))
        except IndexFormatError as exc:
            raise HttpError("400 Bad Request", str(exc)) from None
        names = [item.name for item in query.installed]
        if len(set(names)) != len(names):
            raise HttpError("400 Bad Request", "each project may be listed once in 'installed'")
        base = self.base_url or _request_base(environ)
        policy = self.policy.current(lambda message: self.log.event("policy", error=message))
        answers = {}
        for item in query.installed:
            try:
                decision = self._decide(item, query, policy)
            except UpstreamError as exc:
                raise HttpError("502 Bad Gateway", str(exc)) from None
            answers[item.name] = decision.to_json(functools.partial(_absolute, base, item.name))
            kind_of = f"answers_upgrade_{decision.path}" if decision.status == "upgrade" else "answers_other"
            self.stats.add(**{kind_of: 1})
        self.stats.add(queries=1)
        return {"meta": {"api-version": API_VERSION}, "projects": answers}

    def _decide(self, item: Installed, query: Query, policy: Policy) -> Decision:
        rule = policy.rule(item.name)
        decision = decide(item, query.want.get(item.name), rule, self.catalog.project(item.name))
        # An upstream page without sizes (PEP 503): learn the target's, since paths are chosen by bytes.
        if decision.target is not None and decision.target.size == 0 and self.catalog.fill_size(decision.target):
            decision = decide(item, query.want.get(item.name), rule, self.catalog.project(item.name))
        # On demand, the direct delta may be made now; then the answer is decided again with it.
        start, target = decision.start, decision.target
        if decision.path == "full" and start and target and self.catalog.make(item.name, start, target):
            decision = decide(item, query.want.get(item.name), rule, self.catalog.project(item.name))
        return decision


def _body(environ: Environ) -> bytes:
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError("400 Bad Request", "Content-Length is not a number") from None
    if declared > MAX_BODY:
        raise HttpError("413 Content Too Large", f"the query is over {MAX_BODY:,} bytes")
    body: bytes = environ["wsgi.input"].read(min(declared, MAX_BODY) if declared else MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise HttpError("413 Content Too Large", f"the query is over {MAX_BODY:,} bytes")
    return body


def _request_base(environ: Environ) -> str:
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{urllib.parse.quote(environ.get('SCRIPT_NAME', ''))}"


def _absolute(base: str, project: str, delta: DeltaEntry) -> str:
    return f"{base}/{project}/{urllib.parse.quote(delta.url)}"


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _chunks(stream: Any, size: int) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(size):
            yield chunk
