"""HTTP connections that end without losing an answer: at a graceful shutdown, and when closed with input unread.

Three ways a client that did everything right could get a TCP reset instead of the STS's answer, from uvicorn's
plain server and protocols:

* **Connections still in the accept queue at shutdown.** The kernel completes a client's TCP handshake and queues the
  connection until the server accepts it; the client sends its request meanwhile. While the event loop runs a long
  request it accepts nothing, and uvicorn's shutdown closes the listening socket before the loop gets round to it
  (with uvloop the shutdown tick always comes first): closing a listening socket resets every connection still
  queued on it. :class:`DrainingServer` first accepts everything queued, then closes the listening socket, and
  serves those connections like the others in flight.

* **Shutdown.** On SIGTERM uvicorn closes every connection that has no request in progress. A connection whose
  request has already arrived but is not yet parsed (it waits in the kernel while the event loop finishes other
  work) counts as idle, and closing a socket with unread input makes the kernel send RST: the request is lost
  although it reached the server before the signal. Here such a connection is answered, then closed.
* **Connections that have not sent their first request yet.** A client that had just connected when the shutdown
  started (its connection taken over from the accept queue, or accepted a moment before) is about to send its
  request; over TLS it cannot send it before the handshake ends, which may be after the shutdown started. uvicorn
  closes such a connection as idle, and with TLS one whose handshake is under way is dropped with the process. Here
  each one is given :data:`FIRST_REQUEST_SECONDS` for its first request, answered, then closed.
* **Closing with input unread.** When the server answers and closes while the client is still sending (a request
  cut at ``graceful_shutdown_seconds`` gets uvicorn's 500, an error answered before the body was read), the same
  RST can reach the client before it has read the answer, and the client sees only "connection reset". Here the
  connection closes in the "lingering" way web servers use (nginx's ``lingering_close``): the answer is sent, the
  write side is shut (the client sees the end of the answer), the rest of the input is read and dropped, and the
  socket closes when the client closes its side (asyncio closes a transport whose peer sent EOF) or after
  :data:`LINGER_SECONDS`.

``Draining`` is a mixin for uvicorn's httptools and h11 protocols (``sts.web.tls`` builds the classes
``sts serve`` runs); it relies only on what both share: ``transport``, ``cycle`` (with ``more_body``,
``response_complete`` and ``keep_alive``), ``data_received`` and ``shutdown``. :class:`DrainingServer` relies on
``uvicorn.Server``'s ``servers``, ``server_state``, ``lifespan.state``, ``shutdown`` and
``_wait_tasks_to_complete`` (uvicorn is pinned), and
:class:`DrainingProcess` on the ``server`` property of uvicorn's worker process.

A connection whose handshake completes in the microseconds between the last accept and the close is still reset:
the kernel offers no way to stop queueing on a socket that stays open.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import gc
import os
import socket
import termios
import weakref
from typing import Any

import uvicorn
from uvicorn.server import ServerState
from uvicorn.supervisors.multiprocess import Process

__all__ = ["Draining", "DrainingProcess", "DrainingServer", "DrainingState", "FIRST_REQUEST_SECONDS",
           "LINGER_SECONDS", "MAX_QUEUED", "unread_bytes"]

#: At most this many queued connections are taken over at shutdown (a flood must not keep the shutdown accepting).
MAX_QUEUED = 4096

#: How long a closing connection keeps reading (and dropping) what the client still sends, at most.
LINGER_SECONDS = 2.0

#: At shutdown, how long a connection that has not sent anything yet is given for its first request (a TLS
#: handshake under way included): a client that has just connected sends at once, one that stays silent is idle.
FIRST_REQUEST_SECONDS = 2.0


class DrainingState(ServerState):
    """uvicorn's state shared by a server's connections, plus what draining needs to know."""

    def __init__(self) -> None:
        super().__init__()
        #: The shutdown has started: a connection made from now on is told at once.
        self.draining = False
        #: Protocols made for an accepted connection and not connected yet (TLS: the handshake is under way). Weak: a
        #: failed handshake never connects and must not be kept.
        self.connecting: weakref.WeakSet[Draining] = weakref.WeakSet()


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """How many bytes wait in the kernel's receive queue of the transport's socket (0 when it cannot tell)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        fd = sock.fileno()
        if fd < 0:
            return 0
        count = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, count)
        return int(count[0])
    except (OSError, ValueError):
        return 0


class _LingeringTransport:
    """The protocol's transport, whose ``close()`` lingers while the client may still be sending."""

    def __init__(self, transport: asyncio.Transport, protocol: Draining) -> None:
        self._transport = transport
        self._protocol = protocol
        #: Closing the lingering way: what the client still sends is read and dropped.
        self.lingering = False
        self._deadline: asyncio.TimerHandle | None = None
        # Bound once: every answer's writes come through here, and __getattr__ per call would cost each request.
        self.write = transport.write
        self.get_extra_info = transport.get_extra_info
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        if not self._protocol.expects_input() and unread_bytes(self._transport) == 0:
            self._transport.close()
            return
        self.lingering = True
        if self._transport.can_write_eof():
            self._transport.write_eof()  # after the answer already buffered: the client sees its end
        self._transport.resume_reading()
        self._deadline = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._transport.close)

    def closed(self) -> None:
        """The connection is gone: stop the lingering deadline."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class Draining:
    """Mixin (first base) for uvicorn's HTTP protocols: see the module's docstring."""

    transport: Any
    cycle: Any
    server_state: Any
    _close_after_request = False
    #: Whether the client has sent anything on this connection.
    _heard = False
    _first_request_deadline: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.server_state, DrainingState):
            self.server_state.connecting.add(self)

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[misc]
        state = self.server_state
        if isinstance(state, DrainingState):
            state.connecting.discard(self)
            if state.draining:  # connected after the shutdown told every connection: this one learns it now
                self.shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport.closed()
        if self._first_request_deadline is not None:
            self._first_request_deadline.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self.transport.lingering:
            return
        self._heard = True
        super().data_received(data)  # type: ignore[misc]
        if self._close_after_request and self.cycle is not None:
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown, except that a request which has arrived but is not parsed yet is answered
        (then the connection closes) instead of being reset with the connection, and that a connection which has
        not sent anything yet is given :data:`FIRST_REQUEST_SECONDS` for its first request."""
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self._heard:
            self._close_after_request = True
            if self._first_request_deadline is None:
                self._first_request_deadline = asyncio.get_running_loop().call_later(
                    FIRST_REQUEST_SECONDS, self._no_first_request)
            return
        if idle and unread_bytes(self.transport) > 0:
            self._close_after_request = True
            return
        super().shutdown()  # type: ignore[misc]

    def _no_first_request(self) -> None:
        if not self._heard:
            super().shutdown()  # type: ignore[misc]

    def expects_input(self) -> bool:
        """Whether the request being read still has body to come."""
        cycle = self.cycle
        return cycle is not None and bool(getattr(cycle, "more_body", False))


class DrainingServer(uvicorn.Server):
    """uvicorn's server, except that connections waiting in the accept queue at shutdown are served, not reset, and
    that connections still in their TLS handshake are waited for."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._state = DrainingState()
        self.server_state = self._state
        self._handovers: list[asyncio.Task[Any]] = []

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._state.draining = True
        queued = [connection for server in self.servers for connection in _accept_queued(server)]
        for server in self.servers:  # now, before any await, so that nothing new queues up unaccepted
            server.close()
        for sock in sockets or ():  # a worker's copy of the shared socket (uvicorn closes it later, too late)
            sock.close()
        self._serve_accepted(queued)
        await super().shutdown(sockets)

    def _serve_accepted(self, connections: list[socket.socket]) -> None:
        """Hand each connection to the HTTP protocol, as the listening server would have (TLS handshake included).
        Not awaited: its protocol is made in the handover's first step, well within the pause uvicorn's shutdown
        takes before waiting, and from then on it is waited for like any connection still connecting."""
        config = self.config
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(config=config, server_state=self.server_state,  # type: ignore[call-arg]
                                              app_state=self.lifespan.state)

        for connection in connections:
            handover = loop.create_task(loop.connect_accepted_socket(protocol, connection, ssl=config.ssl))
            handover.add_done_callback(_failed_handshake_is_that_clients_loss)
            self._handovers.append(handover)

    async def _wait_tasks_to_complete(self) -> None:
        """uvicorn's wait for the connections and tasks, after the connections still connecting have connected (or
        :data:`FIRST_REQUEST_SECONDS` have passed: a handshake that fails never does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FIRST_REQUEST_SECONDS
        connecting = self._state.connecting
        if connecting:
            gc.collect()  # a failed handshake's protocol may live on in a reference cycle
        while connecting and loop.time() < deadline and not self.force_exit:
            await asyncio.sleep(0.02)
        await super()._wait_tasks_to_complete()


def _failed_handshake_is_that_clients_loss(handover: asyncio.Task[Any]) -> None:
    """A client whose TLS handshake fails has no answer to lose; the failure is read so that asyncio does not log it
    as never retrieved."""
    if not handover.cancelled():
        handover.exception()


def _accept_queued(server: Any) -> list[socket.socket]:
    """Every connection waiting in the accept queues of an asyncio (or uvloop) server's listening sockets."""
    accepted: list[socket.socket] = []
    for listening in server.sockets or ():
        # A duplicate descriptor of the same listening socket: the loop's socket object is not ours to accept on.
        with socket.socket(fileno=os.dup(listening.fileno())) as listener:
            listener.setblocking(False)
            while len(accepted) < MAX_QUEUED:
                try:
                    connection, _ = listener.accept()
                except OSError:  # BlockingIOError: the queue is empty; any other: nothing more to take over
                    break
                connection.setblocking(False)
                accepted.append(connection)
    return accepted


class DrainingProcess(Process):
    """uvicorn's worker process (``--workers`` > 1), running a :class:`DrainingServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server
