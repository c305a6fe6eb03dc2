"""A client that did everything right gets the server's answer, never a TCP reset: at a graceful shutdown (whether
its connection was accepted or still queued), and when the server answers and closes while the client is still
sending (``sts.web.draining``).

A real uvicorn server on a loopback socket runs each protocol ``sts serve`` can run, with a small ASGI app whose
routes put the connection in the risky state; the clients are raw sockets, so that nothing retries or hides a reset.
"""

from __future__ import annotations

import importlib.util
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from sts.web.draining import FIRST_REQUEST_SECONDS, DrainingServer
from sts.web.loopback import self_signed_tls_files
from sts.web.tls import TlsH11Protocol, TlsHttpToolsProtocol

PROTOCOLS = [pytest.param(protocol, id=protocol.__name__) for protocol in (TlsHttpToolsProtocol, TlsH11Protocol)
             if protocol is not None]
HOLD_SECONDS = 0.8


class _App:
    """``/refuse`` answers 413 and closes without reading the body; ``/hold`` holds the event loop, then starts
    uvicorn's graceful shutdown of every connection (what SIGTERM does), then answers; ``/stop`` asks the server to
    stop (what SIGTERM's handler does), then holds the event loop; anything else answers "ok"."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None
        self.holding = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/refuse":
            await _answer(send, 413, b"too big", close=True)
            return
        if scope["path"] == "/stop":
            assert self.server is not None
            self.server.should_exit = True
            self.holding.set()
            time.sleep(HOLD_SECONDS)  # nothing is accepted meanwhile: new connections wait in the accept queue
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
def _serving(protocol: type, loop: str = "auto", own_socket: bool = True,
             tls_files: tuple[str, str] | None = None) -> Iterator[tuple[int, uvicorn.Server]]:
    """A ``DrainingServer`` in a thread, on a socket of the test's (as a ``--workers`` worker) or of its own (as
    ``sts serve --workers 1``)."""
    app = _App()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if not own_socket:
        listener.close()
    server = DrainingServer(uvicorn.Config(app, http=protocol, lifespan="off", log_level="critical", loop=loop,
                                           port=port, ssl_certfile=tls_files[0] if tls_files else None,
                                           ssl_keyfile=tls_files[1] if tls_files else None))
    app.server = server
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener] if own_socket else None},
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.01)
    try:
        yield port, server
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


def _listening_entry(port: int) -> list[str] | None:
    """The Linux /proc/net/tcp line of the listening socket on ``port``, split; None when nothing listens there."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                return fields
    return None


def _accept_queue_length(port: int) -> int:
    """How many connections wait in the accept queue of the listening socket on ``port`` (for a listening socket,
    /proc/net/tcp's rx_queue is that count)."""
    fields = _listening_entry(port)
    assert fields is not None, f"no listening socket on port {port}"
    return int(fields[4].split(":")[1], 16)


def _wait_until(condition: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


def _exchange(client: socket.socket, request: bytes, tls: ssl.SSLContext | None) -> bytes:
    """One request and its whole answer, over TLS when asked (the handshake waits until the server takes over)."""
    if tls is not None:
        client = tls.wrap_socket(client, server_hostname="127.0.0.1")
    client.sendall(request)
    return _read_all(client)


@pytest.mark.parametrize("listening", ["worker-socket", "server-socket", "server-socket-tls"])
@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_requests_queued_for_accept_at_shutdown_are_answered(protocol: type, loop: str, listening: str,
                                                             tmp_path: Path) -> None:
    queued = 5
    tls_files = self_signed_tls_files(tmp_path) if listening.endswith("tls") else None
    client_tls = None
    if tls_files:
        client_tls = ssl.create_default_context(cafile=tls_files[0])
    with _serving(protocol, loop=loop, own_socket=listening == "worker-socket", tls_files=tls_files) as (port, server):
        stopping = socket.create_connection(("127.0.0.1", port))
        stopper = _Exchange(stopping, b"GET /stop HTTP/1.1\r\nHost: sts.test\r\n\r\n", client_tls)
        assert server.config.app.holding.wait(timeout=10)  # /stop holds the event loop, the shutdown asked for
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(queued)]
        # The case under test, not a lucky one: every client is queued, none accepted, when the shutdown starts.
        assert _accept_queue_length(port) == queued
        exchanges = [_Exchange(client, b"GET /queued/%d HTTP/1.1\r\nHost: sts.test\r\n\r\n" % number, client_tls)
                     for number, client in enumerate(clients)]
        answers = [exchange.answer() for exchange in exchanges]
        stopped = stopper.answer()
        for client in clients + [stopping]:
            client.close()
    assert stopped.startswith(b"HTTP/1.1 200"), stopped
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok"), answer


class _Exchange:
    """``_exchange`` in a thread: a TLS handshake blocks until the server takes the connection over."""

    def __init__(self, client: socket.socket, request: bytes, tls: ssl.SSLContext | None) -> None:
        self._outcome: list[bytes | BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(client, request, tls), daemon=True)
        self._thread.start()

    def _run(self, client: socket.socket, request: bytes, tls: ssl.SSLContext | None) -> None:
        try:
            self._outcome.append(_exchange(client, request, tls))
        except BaseException as exc:  # pytest.fail's exception included: reported by answer()
            self._outcome.append(exc)

    def answer(self) -> bytes:
        self._thread.join(timeout=30)
        assert self._outcome, "no answer within 30 s"
        outcome = self._outcome[0]
        if isinstance(outcome, BaseException):
            raise AssertionError(f"the exchange failed: {outcome!r}")
        return outcome


@pytest.mark.parametrize("when", ["tcp-connected", "tls-handshaken", "tls-handshake-not-started"])
@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_connected_before_shutdown_whose_request_comes_after_it_started_is_answered(
        protocol: type, loop: str, when: str, tmp_path: Path) -> None:
    """A connection accepted before the shutdown with nothing sent yet is not idle: its client (over TLS, maybe
    still before or in the handshake) is about to send its first request."""
    tls_files = self_signed_tls_files(tmp_path) if when.startswith("tls") else None
    client_tls = ssl.create_default_context(cafile=tls_files[0]) if tls_files else None
    with _serving(protocol, loop=loop, tls_files=tls_files) as (port, server):
        fresh = socket.create_connection(("127.0.0.1", port))
        if when == "tls-handshaken":
            assert client_tls is not None
            fresh = client_tls.wrap_socket(fresh, server_hostname="127.0.0.1")
        _wait_until(lambda: _accept_queue_length(port) == 0, "the server did not accept the first connection")
        stopper = _Exchange(socket.create_connection(("127.0.0.1", port)),
                            b"GET /stop HTTP/1.1\r\nHost: sts.test\r\n\r\n", client_tls)
        _wait_until(lambda: _listening_entry(port) is None, "the shutdown did not start")
        # The shutdown has started: uvicorn alone would close (or, mid-handshake, drop) the fresh connection now.
        # The client sends a little later than uvicorn's own 0.1 s pause, well within the window it is given.
        time.sleep(FIRST_REQUEST_SECONDS / 5)
        request = b"GET /late HTTP/1.1\r\nHost: sts.test\r\n\r\n"
        answer = _exchange(fresh, request, client_tls if when == "tls-handshake-not-started" else None)
        stopped = stopper.answer()
        fresh.close()
    assert stopped.startswith(b"HTTP/1.1 200"), stopped
    # The whole answer, then the server closed the connection (``_read_all`` returned), as a shutdown asks.
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok"), answer


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("loop", LOOPS)
def test_a_connection_that_stays_silent_is_closed_after_its_first_request_window(loop: str, tls: bool,
                                                                               tmp_path: Path) -> None:
    tls_files = self_signed_tls_files(tmp_path) if tls else None
    client_tls = ssl.create_default_context(cafile=tls_files[0]) if tls_files else None
    with _serving(PROTOCOLS[0].values[0], loop=loop, tls_files=tls_files) as (port, server):
        silent = socket.create_connection(("127.0.0.1", port))
        if client_tls is not None:
            silent = client_tls.wrap_socket(silent, server_hostname="127.0.0.1")
        _wait_until(lambda: len(server.server_state.connections) == 1, "the silent connection was not made")
        stopper = _Exchange(socket.create_connection(("127.0.0.1", port)),
                            b"GET /stop HTTP/1.1\r\nHost: sts.test\r\n\r\n", client_tls)
        _wait_until(lambda: _listening_entry(port) is None, "the shutdown did not start")
        started = time.monotonic()
        closed = _read_all(silent)  # a reset fails here
        waited = time.monotonic() - started
        assert stopper.answer().startswith(b"HTTP/1.1 200")
        silent.close()
    stopped = time.monotonic() - started
    assert closed == b""
    assert FIRST_REQUEST_SECONDS - 0.3 <= waited <= FIRST_REQUEST_SECONDS + 1, waited
    assert stopped <= FIRST_REQUEST_SECONDS + 2, stopped  # the silent client does not hold the shutdown longer
