"""The load generator (bench/loadgen.py): its HTTP reading, its judgement of an answer (what counts as an error), and
its hold between warm-up and the window."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.loadgen import Generators, Load, Records, _classify, _read_response, merge, spread

FAULT = (Path(__file__).resolve().parents[2] / "fixtures" / "bench" / "fault-invalid-scope.xml").read_bytes()
MARKER = b"RequestedSecurityToken"


def _read(raw: bytes) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await _read_response(reader)

    return asyncio.run(go())


def test_a_content_length_answer_is_read_whole() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 5\r\n\r\nhelloNEXT"
    assert _read(raw) == (200, b"hello")


def test_a_chunked_answer_is_joined() -> None:
    raw = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    assert _read(raw) == (500, b"abcde")


def test_a_fault_is_an_error_named_by_status_and_subcode() -> None:
    assert _classify(400, FAULT, MARKER) == "HTTP 400 trust:InvalidScope"


def test_a_200_without_the_expected_answer_is_an_error() -> None:
    assert _classify(200, b"<Envelope><Body/></Envelope>", MARKER) == "HTTP 200 without the expected answer"
    assert _classify(200, b"<x><RequestedSecurityToken/><s:Fault></s:Fault></x>", MARKER) is not None


def test_a_200_with_the_marker_and_no_fault_is_a_success() -> None:
    assert _classify(200, b"<x><trust:RequestedSecurityToken>...</trust:RequestedSecurityToken></x>", MARKER) is None


def _load(requests: int, clients: int, rate: float | None = None) -> Load:
    return Load("127.0.0.1", 1, "/services/sts", "application/soap+xml", [bytes([i]) for i in range(requests)],
                MARKER, clients, warmup=10, rate=rate)


def test_a_load_is_spread_evenly_over_the_nodes() -> None:
    parts = spread(_load(9, 5, rate=100.0), [("127.0.0.1", 8001), ("127.0.0.1", 8002)])
    assert [(part.port, part.clients, part.warmup, part.rate) for part in parts] == [(8001, 3, 5, 50.0),
                                                                                     (8002, 2, 5, 50.0)]
    assert sorted(request for part in parts for request in part.requests) == [bytes([i]) for i in range(9)]


def test_one_node_gets_the_load_unchanged() -> None:
    load = _load(4, 16)
    assert spread(load, [("127.0.0.1", 1)]) == [load]


def test_merged_records_keep_every_answer_and_end_when_the_first_ran_out() -> None:
    first, second = Records(), Records()
    first.record(1.0, 0.1, None)
    second.record(2.0, 0.2, "HTTP 500", b"boom")
    second.record(3.0, 0.3, None)
    first.exhausted_at, second.exhausted_at = 5.0, 4.0
    merged = merge([first, second])
    assert list(merged.done_at) == [1.0, 2.0, 3.0] and list(merged.ok) == [1, 0, 1]
    assert merged.errors == {"HTTP 500": 1} and merged.samples == {"HTTP 500": "boom"}
    assert merged.exhausted_at == 4.0
    assert merge([first, Records()]).exhausted_at == 5.0 and merge([Records()]).exhausted_at is None


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the generator's connections expect

    def do_POST(self) -> None:  # noqa: N802 - the handler's name is http.server's
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_generators_hold_once_warm_until_released() -> None:
    """The caller opens its window (clocks and CPU read) between ``wait_warm`` and ``release``: nothing may be
    answered meanwhile, however long that takes (a farm's CPU read on a busy machine did, and a smoke window
    found every request already answered)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        load = Load("127.0.0.1", server.server_address[1], "/sts", "text/xml", [b"<r/>"] * 400, b"ok",
                    clients=4, warmup=8)
        generators = Generators([load])
        generators.wait_warm()
        time.sleep(0.2)  # the requests in flight at the warm-up are answered
        held = generators.answered()
        time.sleep(0.3)
        assert generators.answered() == held
        generators.release()
        deadline = time.monotonic() + 10
        while generators.answered() <= held:
            assert time.monotonic() < deadline, "the generators did not go on after release"
            time.sleep(0.01)
        records = generators.stop()
    finally:
        server.shutdown()
    assert not records.errors
