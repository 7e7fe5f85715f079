"""Waitress's connections made strict: a cap per client, a deadline per request, no ambiguous framing, JSON errors."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any, cast

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.task import ErrorTask
from waitress.utilities import Error


@dataclass(frozen=True)
class Limits:
    """Connections the server keeps: in all, per client address, and how long a silent or slow one may live."""

    connections: int = 1_000
    per_client: int = 64
    timeout: float = 15.0  # seconds of silence, or for one request to arrive from its first byte


class StrictParser(HTTPRequestParser):
    """Waitress's request parser, refusing framing that two HTTP servers could read differently."""

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            raise ParsingError("both Content-Length and Transfer-Encoding given")
        if "TRANSFER_ENCODING" in self.headers:  # left in place by waitress only below HTTP/1.1
            raise ParsingError("Transfer-Encoding needs HTTP/1.1")


class JsonErrorTask(ErrorTask):
    """Waitress's own error answers (400, 413, 431, 501) as one line of JSON, like the application's."""

    def execute(self) -> None:
        # types-waitress has ``request`` as the Error itself; it is the parser, holding the Error.
        error: Error = cast(Any, self.request).error
        body = json.dumps({"error": f"{error.reason}: {error.body}"}).encode()
        self.status = f"{error.code} {error.reason}"
        cast(list[tuple[str, str]], self.response_headers).append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class Channel(HTTPChannel):
    """One connection; a request still arriving counts as idle from its first byte, so trickling never pays."""

    parser_class = StrictParser
    error_task_class = JsonErrorTask
    began = 0.0

    def handle_read(self) -> None:
        began = self.began if self.request is not None else time.time()
        super().handle_read()
        if self.request is not None:  # waitress closes a channel idle for channel_timeout: date this one back
            self.began = began
            self.last_activity = min(self.last_activity, began)


REFUSED = b'{"error": "too many connections from your address; try again"}'
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\n"
    + f"Content-Length: {len(REFUSED)}\r\n\r\n".encode()
    + REFUSED
)


def admit(per_client: int, server: Any, sock: socket.socket, addr: Any, adj: Any, map: Any = None) -> None:
    """Open a channel for a new connection, or answer 503 and close it when its address holds ``per_client``."""
    held = sum(1 for channel in list(server.active_channels.values()) if channel.addr[0] == addr[0])
    if held < per_client:
        Channel(server, sock, addr, adj, map=map)
        return
    try:
        sock.setblocking(False)
        sock.send(REFUSAL)
    except OSError:
        pass
    sock.close()
