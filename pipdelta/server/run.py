"""Run the server on waitress: blocking for ``pipdelta serve``, or in a thread for tests and demos."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Iterator
from typing import Any

from waitress.server import create_server
from waitress.wasyncore import close_all

from pipdelta.errors import PipdeltaError
from pipdelta.index.bounds import MAX_BODY
from pipdelta.server.connections import Limits, admit

DEFAULT_LIMITS = Limits()
FREE_THREADS = 2  # threads the gated queries never take: /health and files are answered while they run


def _server(app: Any, host: str, port: int, threads: int, limits: Limits) -> Any:
    gate = getattr(app, "gate", None)
    server: Any = create_server(
        app,
        host=host,
        port=port,
        threads=max(threads, gate.total + FREE_THREADS) if gate else threads,
        ident="pipdelta",
        # Bodies past the query limit are refused by waitress from their Content-Length, before being read;
        # one byte over the limit still reaches the application, which answers 413 with a JSON message.
        max_request_body_size=MAX_BODY + 2,
        max_request_header_size=16 << 10,
        # Idle connections, and requests not arrived in `timeout` from their first byte, are closed.
        channel_timeout=limits.timeout,
        cleanup_interval=limits.timeout / 4,
        # poll(), not select(): select() cannot watch more than 1,024 sockets.
        asyncore_use_poll=True,
        connection_limit=_connection_limit(limits.connections),
    )
    server.channel_class = functools.partial(admit, limits.per_client)
    return server


def _connection_limit(wanted: int) -> int:
    """``wanted``, or fewer when the process may not open enough files (a connection and the file it sends)."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return wanted
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return wanted if soft == resource.RLIM_INFINITY else max(16, min(wanted, (soft - 64) // 2))


def serve(
    app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 8, limits: Limits = DEFAULT_LIMITS
) -> None:
    """Serve ``app`` until interrupted."""
    try:
        server = _server(app, host, port, threads, limits)
    except OSError as exc:
        raise PipdeltaError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    log = getattr(app, "log", None)
    if log is not None:
        log.event("listening", url=f"http://{host}:{server.effective_port}/")
    _stop_on_signals()
    try:
        server.run()
    finally:
        server.close()


def _stop_on_signals() -> None:
    """SIGINT and SIGTERM stop the server, even when it was started with SIGINT ignored (``cmd &`` in a
    non-interactive shell does that, and a service manager sends SIGTERM)."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)


@contextlib.contextmanager
def running(
    app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 8, limits: Limits = DEFAULT_LIMITS
) -> Iterator[str]:
    """Serve ``app`` in a background thread; yields its base URL (``http://127.0.0.1:PORT``)."""
    server = _server(app, host, port, threads, limits)
    thread = threading.Thread(target=server.run, name="pipdelta-serve", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.effective_port}"
    finally:
        server.task_dispatcher.shutdown()  # finish the requests in flight first, then stop listening
        # Sockets are closed by the loop's own thread (closing them from here races its poll()).
        server.trigger.pull_trigger(lambda: close_all(server._map))
        thread.join(10)
