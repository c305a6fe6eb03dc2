"""The load generator's HTTP reading and its judgement of an answer (bench/loadgen.py): what counts as an error."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.loadgen import Load, Records, _classify, _read_response, merge, spread

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
