"""A client that did everything right gets the server's answer, never a TCP reset: at a graceful shutdown, and when
the server answers and closes while the client is still sending (``sts.web.draining``).

A real uvicorn server on a loopback socket runs each protocol ``sts serve`` can run, with a small ASGI app whose
routes put the connection in the risky state; the clients are raw sockets, so that nothing retries or hides a reset.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from sts.web.tls import TlsH11Protocol, TlsHttpToolsProtocol

PROTOCOLS = [pytest.param(protocol, id=protocol.__name__) for protocol in (TlsHttpToolsProtocol, TlsH11Protocol)
             if protocol is not None]
HOLD_SECONDS = 0.8


class _App:
    """``/refuse`` answers 413 and closes without reading the body; ``/hold`` holds the event loop, then starts
    uvicorn's graceful shutdown of every connection (what SIGTERM does), then answers; anything else answers "ok"."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/refuse":
            await _answer(send, 413, b"too big", close=True)
            return
        if scope["path"] == "/hold":
            time.sleep(HOLD_SECONDS)  # the event loop reads nothing meanwhile
            assert self.server is not None
            for connection in list(self.server.server_state.connections):
                connection.shutdown()
        await _answer(send, 200, b"ok")


async def _answer(send: Any, status: int, body: bytes, close: bool = False) -> None:
    headers = [(b"content-length", str(len(body)).encode())] + ([(b"connection", b"close")] if close else [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def _serving(protocol: type) -> Iterator[tuple[int, uvicorn.Server]]:
    app = _App()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=protocol, lifespan="off", log_level="critical"))
    app.server = server
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.01)
    try:
        yield listener.getsockname()[1], server
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes its side; a reset fails the test with what had arrived."""
    sock.settimeout(10)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            pytest.fail(f"the connection was reset; received before that: {received!r}")
        if not chunk:
            return received
        received += chunk


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_answer_sent_while_the_client_is_still_sending_reaches_it(protocol: type) -> None:
    size = 64 * 1024 * 1024
    with _serving(protocol) as (port, _):
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"POST /refuse HTTP/1.1\r\nHost: sts.test\r\nContent-Length: %d\r\n\r\n" % size)

        def send_body() -> None:
            chunk = b"x" * 65536
            try:
                for _ in range(size // len(chunk)):
                    client.sendall(chunk)
            except OSError:  # the server stopped reading at the end of its lingering: expected
                pass

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        answer = _read_all(client)
        client.close()
        sender.join(timeout=10)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert answer.endswith(b"too big")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_request_waiting_unread_at_shutdown_is_answered_then_closed(protocol: type) -> None:
    with _serving(protocol) as (port, server):
        waiting = socket.create_connection(("127.0.0.1", port))
        deadline = time.monotonic() + 5
        while len(server.server_state.connections) < 1:  # accepted and idle: what shutdown closes
            assert time.monotonic() < deadline
            time.sleep(0.01)
        holding = socket.create_connection(("127.0.0.1", port))
        holding.sendall(b"GET /hold HTTP/1.1\r\nHost: sts.test\r\n\r\n")
        time.sleep(HOLD_SECONDS / 3)  # /hold now holds the event loop
        waiting.sendall(b"GET /token HTTP/1.1\r\nHost: sts.test\r\n\r\n")  # arrives; nobody reads it yet
        answer = _read_all(waiting)
        held = _read_all(holding)
        waiting.close()
        holding.close()
    # The whole answer, and then the server closed the connection (``_read_all`` returned), as shutdown asks.
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok"), answer
    assert held.startswith(b"HTTP/1.1 200"), held
