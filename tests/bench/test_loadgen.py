"""The load generator's HTTP reading and its judgement of an answer (bench/loadgen.py): what counts as an error."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.loadgen import _classify, _read_response

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
