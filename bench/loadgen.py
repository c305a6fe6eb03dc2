"""The load generator: a separate process that posts pre-generated requests over keep-alive HTTP/1.1 connections.

Closed loop (``clients`` connections, each sends its next request when the answer to the last one arrived) or open
loop (requests sent on a fixed schedule at ``rate`` per second over a pool of connections; latency counts from the
scheduled send time, so a stalled server is not hidden by the client waiting for it). A minimal HTTP/1.1 client on
asyncio streams keeps the generator's own CPU small: it shares the machine's cores with the server.

Every answer is recorded as (completion time on the monotonic clock, latency, ok). An answer is an error unless it
is HTTP 200 with the kind's success marker and no SOAP Fault; errors are counted by class with one sample each.
The parent reads the server's CPU at the start and end of its window and keeps the records that fall inside it.
Against several servers (a farm's nodes) :class:`Generators` runs one process per server, the load spread evenly
(as a round-robin load balancer would), and reads them as one. A closed-loop generator that is warm holds until
the parent releases every one together, after it has opened its window: the window opens on the whole load, not
on one that ran ahead and out of requests, and no request is answered before the window's clocks are read.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from bench import procfs

_FORK = multiprocessing.get_context("fork")  # the requests are in memory already: a forked child shares them


@dataclass(frozen=True)
class Load:
    """What to send: where, the requests, how, and what a successful answer contains."""

    host: str
    port: int
    path: str
    content_type: str
    requests: list[bytes]
    success_marker: bytes
    clients: int  # closed loop: concurrent connections; open loop: the pool size
    warmup: int  # requests answered before the generator says it is ready (not for the parent's window)
    rate: float | None = None  # open loop: requests per second


@dataclass
class Records:
    """What the generator saw: per answer its completion time, latency and outcome; errors by class."""

    done_at: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    latency: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    ok: array = field(default_factory=lambda: array("b"))  # type: ignore[type-arg]
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    exhausted_at: float | None = None  # when the last request was answered, if they ran out
    cpu_seconds: float = 0.0  # the generator's own CPU

    def record(self, done: float, latency: float, error: str | None, sample: bytes = b"") -> None:
        self.done_at.append(done)
        self.latency.append(latency)
        self.ok.append(error is None)
        if error is not None:
            self.errors[error] += 1
            self.samples.setdefault(error, sample[:400].decode("utf-8", "replace"))


class _Connection:
    """One keep-alive HTTP/1.1 connection (reopened after the server closes it)."""

    def __init__(self, load: Load) -> None:
        self._load = load
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._head = (f"POST {load.path} HTTP/1.1\r\nHost: {load.host}:{load.port}\r\n"
                      f"Content-Type: {load.content_type}\r\nContent-Length: ").encode()

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._load.host, self._load.port)
        assert self._reader is not None
        self._writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        try:
            return await _read_response(self._reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(None, 2)[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return status, b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readline()


def _classify(status: int, body: bytes, marker: bytes) -> str | None:
    """None for a success, else the error's class: the HTTP status and the fault code if there is one."""
    if status == 200 and marker in body and b"Fault>" not in body:
        return None
    code = ""
    for tag in (b"Value>", b"faultcode>"):
        end = body.rfind(b"</", 0, body.rfind(tag))
        if end > 0:
            code = body[body.rfind(b">", 0, end) + 1:end].decode("utf-8", "replace")
            break
    return f"HTTP {status} {code}".strip() if status != 200 or code else "HTTP 200 without the expected answer"


async def _run(load: Load, ready: Any, stop: Any, answers: Any, go: Any) -> Records:
    records = Records()
    pending = iter(load.requests)
    answered = 0

    async def send(connection: _Connection, body: bytes, started: float) -> None:
        nonlocal answered
        try:
            status, answer = await connection.post(body)
            error = _classify(status, answer, load.success_marker)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            error, answer = f"transport: {type(exc).__name__}", str(exc).encode()
        done = time.monotonic()
        records.record(done, done - started, error, answer)
        answered += 1
        answers.value = answered
        if answered == load.warmup:
            ready.set()

    async def closed_loop_client() -> None:
        connection = _Connection(load)
        for body in pending:
            while answered >= load.warmup and not go.is_set() and not stop.is_set():
                await asyncio.sleep(0.005)  # warm: the others are not yet
            if stop.is_set():
                break
            await send(connection, body, time.monotonic())
        connection.close()

    async def open_loop() -> None:
        pool: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(load.clients):
            pool.put_nowait(_Connection(load))
        tasks = set()
        start = time.monotonic()

        async def one(body: bytes, scheduled: float) -> None:
            connection = await pool.get()
            try:
                await send(connection, body, scheduled)
            finally:
                pool.put_nowait(connection)

        assert load.rate
        for index, body in enumerate(pending):
            if stop.is_set():
                break
            scheduled = start + index / load.rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(body, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        while not pool.empty():
            pool.get_nowait().close()

    if load.rate is None:
        await asyncio.gather(*(closed_loop_client() for _ in range(load.clients)))
    else:
        await open_loop()
    if not stop.is_set():
        records.exhausted_at = time.monotonic()
    ready.set()  # fewer answers than the warm-up asked for: the parent must not wait forever
    return records


def _child(load: Load, ready: Any, stop: Any, answers: Any, go: Any, results: Connection) -> None:
    cpu = time.process_time()
    records = asyncio.run(_run(load, ready, stop, answers, go))
    records.cpu_seconds = time.process_time() - cpu
    results.send(records)
    results.close()


class Generator:
    """The load generator process: start it, wait until it is warm, then stop it and collect its records."""

    def __init__(self, load: Load, *, held: bool = False) -> None:
        """``held``: once warm, wait for ``release`` (closed loop) before sending more."""
        self._ready, self._stop, self._go = _FORK.Event(), _FORK.Event(), _FORK.Event()
        if not held:
            self._go.set()
        self._answers = _FORK.RawValue("q", 0)  # written by the child only: no lock needed to read it
        self._receive, send = _FORK.Pipe(duplex=False)
        self._process = _FORK.Process(target=_child, args=(load, self._ready, self._stop, self._answers, self._go, send),
                                      daemon=True)
        self._process.start()
        send.close()

    @property
    def pid(self) -> int:
        return self._process.pid or 0

    def wait_warm(self, timeout: float = 300) -> None:
        if not self._ready.wait(timeout):
            raise RuntimeError("the load generator did not warm up in time")

    def answered(self) -> int:
        """Answers received so far (successes and errors)."""
        return int(self._answers.value)

    def finished(self) -> bool:
        return self._receive.poll()

    def release(self) -> None:
        """Let a held generator send on past its warm-up."""
        self._go.set()

    def request_stop(self) -> None:
        """Stop sending (requests in flight are answered); ``stop`` collects the records."""
        self._stop.set()

    def stop(self, timeout: float = 120) -> Records:
        """Stop sending (requests in flight are answered) and collect the records."""
        self._stop.set()
        if not self._receive.poll(timeout):
            self._process.kill()
            raise RuntimeError("the load generator did not finish in time")
        records: Records = self._receive.recv()
        self._process.join(timeout=30)
        return records


def spread(load: Load, endpoints: list[tuple[str, int]]) -> list[Load]:
    """``load`` shared among servers: each gets every n-th request, its share of the clients (at least one), the
    warm-up and the rate."""
    count = len(endpoints)
    return [replace(load, host=host, port=port, requests=load.requests[index::count],
                    clients=max(1, (load.clients + count - 1 - index) // count),
                    warmup=max(1, load.warmup // count), rate=load.rate / count if load.rate else None)
            for index, (host, port) in enumerate(endpoints)]


def merge(parts: list[Records]) -> Records:
    """Several generators' records as one; the requests ran out when the first generator ran out of them."""
    merged = Records()
    for part in parts:
        merged.done_at.extend(part.done_at)
        merged.latency.extend(part.latency)
        merged.ok.extend(part.ok)
        merged.errors.update(part.errors)
        for error, sample in part.samples.items():
            merged.samples.setdefault(error, sample)
        merged.cpu_seconds += part.cpu_seconds
    ran_out = [part.exhausted_at for part in parts if part.exhausted_at is not None]
    merged.exhausted_at = min(ran_out) if ran_out else None
    return merged


class Generators:
    """One generator process per load (per server), started together, read and stopped as one. Each holds once warm
    until ``release``: the caller opens its window (reads the clocks and the CPU, which can take a while on a busy
    machine) first, so no request of the window is answered before it opens."""

    def __init__(self, loads: list[Load]) -> None:
        self._all = [Generator(load, held=True) for load in loads]

    def cpu_seconds(self) -> float:
        """The generators' CPU so far (read from /proc, so it is current while they run)."""
        return sum(procfs.tree_cpu_seconds(generator.pid) for generator in self._all)

    def wait_warm(self, timeout: float = 300) -> None:
        """Until every generator is warm (and holding)."""
        for generator in self._all:
            generator.wait_warm(timeout)

    def release(self) -> None:
        """All go on together."""
        for generator in self._all:
            generator.release()

    def answered(self) -> int:
        return sum(generator.answered() for generator in self._all)

    def finished(self) -> bool:
        """Whether any has run out of requests (the load is no longer what was asked for)."""
        return any(generator.finished() for generator in self._all)

    def stop(self, timeout: float = 120) -> Records:
        for generator in self._all:
            generator.request_stop()  # all at once: none runs on alone while another is being collected
        return merge([generator.stop(timeout) for generator in self._all])
