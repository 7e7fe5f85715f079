"""Start the local index on 127.0.0.1: a per-user secret path prefix, a stable port where free, one ledger."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipdelta.client.cache import Cache
from pipdelta.client.config import Settings
from pipdelta.client.environment import Environment
from pipdelta.client.http import Http
from pipdelta.client.report import Report
from pipdelta.errors import PipdeltaError
from pipdelta.proxy.app import ProxyApp
from pipdelta.proxy.ledger import Ledger
from pipdelta.proxy.timing import Meter
from pipdelta.proxy.upstreams import Upstream
from pipdelta.server.connections import Limits
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running

if TYPE_CHECKING:  # imported while the installer starts: see local_index
    from pipdelta.client.deltaindex import DeltaIndex
    from pipdelta.proxy.finders import OldVersions
    from pipdelta.proxy.jobs import Rebuilds

THREADS = 16  # uv asks for many pages and files at once; each waiting wheel holds one thread
# Every client of the local index is 127.0.0.1, and uv alone opens dozens of connections at once (50
# downloads, more pages): the per-address limit that protects ``pipdelta serve`` is the total here, and an
# installer busy building an sdist may leave a kept-alive connection quiet for longer than 15 s.
LIMITS = Limits(connections=1_000, per_client=1_000, timeout=60.0)


@dataclass
class LocalIndex:
    """A running local index: the URL to give an installer for each upstream, and what it served."""

    base: str  # http://127.0.0.1:PORT/SECRET
    upstreams: Sequence[Upstream]
    ledger: Ledger
    app: ProxyApp

    @property
    def urls(self) -> list[str]:
        """The simple-index URL standing for each upstream, in the order the upstreams were given."""
        return [f"{self.base}/{n}/simple/" for n in range(len(self.upstreams))]

    @property
    def rebuilds(self) -> Rebuilds | None:
        """The rebuild machinery (waited for while it starts); None if it could not."""
        return self.app.rebuilds

    @property
    def delta_index(self) -> DeltaIndex | None:
        rebuilds = self.rebuilds
        return None if rebuilds is None else rebuilds.context.delta_index

    @property
    def warnings(self) -> list[str]:
        """One line each: about the delta index's URL, and per wheel whose rebuild failed."""
        found = self.delta_index
        return [*(found.warnings if found is not None else ()), *self.ledger.warnings]

    def report(self, status: str) -> Report:
        """What this index served, for a command it ran (or served) that ended with ``status``.

        Every row counts as installed: the installer had it; whether it kept it is the command's to say.
        """
        outcomes = self.ledger.outcomes()
        for outcome in outcomes:
            outcome.installed = True
        found = self.delta_index
        return Report(outcomes, status, warnings=self.warnings, delta_index=found.base if found is not None else None)


def finders(environment: Environment, cache: Cache) -> list[OldVersions]:
    """The places old versions are looked for, in the order a patch's old wheel is opened from them."""
    from pipdelta.client import uvcache
    from pipdelta.proxy.finders import CachedWheels, InstalledFiles, PipCache, UvCache

    return [
        CachedWheels(cache),
        PipCache(environment, cache),
        UvCache(uvcache.cache_dir()),
        InstalledFiles(environment),
    ]


@contextlib.contextmanager
def local_index(
    upstreams: Sequence[Upstream],
    settings: Settings,
    environment: Environment,
    *,
    plan_only: bool = False,
    port: int | None = None,
    log: JsonLog | None = None,
) -> Iterator[LocalIndex]:
    """Serve the local index in background threads while the ``with`` block runs.

    It listens at once: pages and metadata need only the upstreams. The rebuild machinery (the engine, the
    delta index, the places old versions are: most of what pipdelta imports) starts in a thread of its own,
    while the installer starts; rebuilds asked for meanwhile start when it is up.
    """
    if settings.index_url is None:
        raise PipdeltaError("the local index needs a delta index URL")
    if not upstreams:
        raise PipdeltaError("no http(s) index to stand in front of: pip's configuration names none")
    cache = Cache(settings.cache_dir)
    http = Http(timeout=settings.timeout, retries=settings.retries)
    # By default a wheel waits for its rebuild as long as a query and a patch download may take, retries included.
    meter = Meter(settings.prefer, wait=settings.deadline or 2 * http.patience() + 1)
    ledger = Ledger()
    secret = _secret(settings.cache_dir)
    app = ProxyApp(secret, upstreams, http, cache, meter, ledger, log or JsonLog(io.StringIO()))

    def start_rebuilds() -> None:
        try:
            from pipdelta.client.deltaindex import DeltaIndex
            from pipdelta.proxy.jobs import Context, Rebuilds

            assert settings.index_url is not None
            found = finders(environment, cache)
            context = Context(DeltaIndex(settings.index_url, http), http, found, cache, meter, upstreams, plan_only)
            app.attach(Rebuilds(context, settings.jobs))
        except Exception as exc:  # a bug must cost full downloads, never the installer's run
            ledger.warn(f"the rebuilds could not start ({type(exc).__name__}: {exc}); every wheel comes in full")
            app.attach(None)

    try:
        with _listening(app, secret, port) as url:
            threading.Thread(target=start_rebuilds, daemon=True, name="pipdelta-start-rebuilds").start()
            yield LocalIndex(f"{url}/{secret}", upstreams, ledger, app)
    finally:
        app.close()


@contextlib.contextmanager
def _listening(app: ProxyApp, secret: str, port: int | None) -> Iterator[str]:
    """On ``port``; by default on a port derived from the secret (stable URLs: installers' caches hit), else any."""
    wanted = port if port is not None else 20000 + int(hashlib.sha256(secret.encode()).hexdigest()[:8], 16) % 20000
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(running(app, "127.0.0.1", wanted, THREADS, LIMITS))
        except OSError as exc:
            if port is not None:
                raise PipdeltaError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
            url = stack.enter_context(running(app, "127.0.0.1", 0, THREADS, LIMITS))
        yield url


def _secret(cache_dir: Path) -> str:
    """This user's secret path prefix, kept (mode 0600) so that the local index's URLs stay the same."""
    path = cache_dir / "proxy-secret"
    try:
        text = path.read_text(encoding="ascii").strip()
        if len(text) >= 16 and text.isalnum():
            return text
    except OSError:
        pass
    text = secrets.token_hex(16)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(text + "\n")
    except OSError:
        pass  # an unwritable cache: a new secret for this run only
    return text
