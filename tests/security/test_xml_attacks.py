"""Hostile XML against the STS endpoint: the classics (DTDs, entities, XInclude, depth, bad UTF-8), resource floods
and processing instructions. Each is answered with wst:InvalidRequest, the floods in well under a second."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

import hostile
from attack_target import HOSTILE, Target
from sts import ns

INVALID_REQUEST = (ns.WST13, "InvalidRequest")
#: Generous for a busy two-core machine; a flood that is processed takes many seconds or gets a token.
FLOOD_SECONDS = 1.0


def _leaks(reply_root: etree._Element) -> bool:
    text = etree.tostring(reply_root)
    return b"root:" in text or b"lollol" in text or b"Traceback" in text


@pytest.mark.parametrize("name", [
    "billion-laughs.xml", "xxe-file.xml", "xxe-network.xml", "external-dtd.xml", "parameter-entity.xml",
    "internal-entity.xml", "deep-nesting.xml", "malformed-utf8.xml", "overlong-utf8.xml",
    "declared-utf16-sent-as-utf8.xml",
])
def test_hostile_document(target: Target, name: str) -> None:
    started = time.monotonic()
    reply = target.post((HOSTILE / name).read_bytes())
    assert reply.fault_code == INVALID_REQUEST, reply.fault_reason
    assert not _leaks(reply.root)
    assert time.monotonic() - started < 5


def test_xinclude_is_never_followed(target: Target) -> None:
    """The fixture: an XInclude as the RequestType of an unauthenticated request."""
    reply = target.post((HOSTILE / "xinclude.xml").read_bytes())
    assert reply.fault_code is not None and not _leaks(reply.root)


def test_xinclude_in_an_authenticated_request(target: Target) -> None:
    """An xi:include where the AppliesTo address belongs: not expanded, so the address is missing."""
    envelope = target.envelope()
    address = f"<ns0:Address>{target.applies_to}</ns0:Address>".encode()
    assert address in envelope
    include = (b'<ns0:Address><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
               b'parse="text"/></ns0:Address>')
    reply = target.post(envelope.replace(address, include))
    assert reply.fault_code == INVALID_REQUEST, reply.fault_reason
    assert not _leaks(reply.root)


def test_depth_just_inside_the_limit_is_parsed(target: Target) -> None:
    """The depth bound refuses, it does not truncate: 40 levels in a header block are fine."""
    reply = target.post(hostile.in_header(target.envelope(), b'<x:d xmlns:x="urn:a">' + b"<x:d>" * 39
                                          + b"</x:d>" * 40))
    assert reply.status == 200, reply.fault_reason


@pytest.mark.parametrize("name", list(hostile.FLOODS))
def test_flood_in_a_valid_request(target: Target, name: str) -> None:
    body = hostile.in_header(target.envelope(), hostile.FLOODS[name]())
    assert len(body) < 1024 * 1024  # under the size limit: the per-structure bound is what must refuse it
    started = time.monotonic()
    reply = target.post(body)
    elapsed = time.monotonic() - started
    assert reply.fault_code == INVALID_REQUEST, f"{name}: {reply.status} {reply.fault_reason}"
    assert elapsed < FLOOD_SECONDS, f"{name} answered in {elapsed:.2f} s"


def test_floods_refused_in_the_body_too(target: Target) -> None:
    """The bounds hold wherever the flood sits, not only in headers: here an extension element of the RST."""
    envelope = target.envelope()
    request_type = b"<trust:RequestType>"
    assert request_type in envelope
    body = envelope.replace(request_type, hostile.attribute_flood(2000) + request_type)
    assert target.post(body).fault_code == INVALID_REQUEST


PIS: dict[str, Callable[[bytes], bytes]] = {
    "xml-stylesheet-before-the-envelope": hostile.pi_before_envelope,
    "pi-in-the-header": hostile.pi_in_header,
    "pi-in-the-body": hostile.pi_in_body,
}


@pytest.mark.parametrize("name", list(PIS))
def test_processing_instruction(target: Target, name: str) -> None:
    reply = target.post(PIS[name](target.envelope()))
    assert reply.fault_code == INVALID_REQUEST, f"{name}: {reply.status} {reply.fault_reason}"


def test_processing_instruction_splitting_the_user_name(target: Target) -> None:
    reply = target.post(hostile.pi_in_username(target.envelope(), target.user))
    assert reply.fault_code == INVALID_REQUEST, reply.fault_reason


def test_xml_declaration_is_not_a_processing_instruction(target: Target) -> None:
    """Tolerance: the XML declaration looks like a PI but is not one; real clients send it."""
    reply = target.post(b'<?xml version="1.0" encoding="utf-8"?>\n' + target.envelope())
    assert reply.status == 200, reply.fault_reason


def test_fixture_files_exist() -> None:
    readme = (HOSTILE / "README.md").read_text()
    for path in Path(HOSTILE).glob("*.xml"):
        assert f"`{path.name}`" in readme, f"{path.name} is not described in fixtures/hostile/README.md"


def test_utf16_request_is_read(target: Target) -> None:
    """Tolerance: a UTF-16 document (with its byte order mark) is XML too."""
    reply = target.post(target.envelope().decode().encode("utf-16"))
    assert reply.status == 200, reply.fault_reason


def test_processing_instruction_in_a_utf16_request(target: Target) -> None:
    """A byte-level PI check that only looks at UTF-8 bytes would miss this one."""
    reply = target.post(hostile.pi_in_body(target.envelope()).decode().encode("utf-16"))
    assert reply.fault_code == INVALID_REQUEST, reply.fault_reason


def test_oversized_chunked_request(target: Target) -> None:
    """No Content-Length to refuse up front: the body limit holds while reading (2 MB in 64 KB chunks)."""
    body = target.envelope().replace(b"</s:Body>", b"<!--" + b"x" * (2 * 1024 * 1024) + b"--></s:Body>")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    started = time.monotonic()
    response = httpx.post(target.sts_url, content=chunks(), headers={"content-type": "application/soap+xml"},
                          timeout=30)
    assert response.status_code in (400, 413), response.status_code
    if response.status_code == 400:
        assert b"InvalidRequest" in response.content
    assert time.monotonic() - started < 5
