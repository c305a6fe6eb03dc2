"""sts.protocol.addressing: reply header blocks each declare wsa themselves; MessageIDs are random UUIDv4s."""

from __future__ import annotations

import uuid

import pytest
from lxml import etree

from sts import ns
from sts.protocol import addressing
from sts.protocol.addressing import parse_addressing, random_uuid, render_reply_headers, reply_headers_bytes
from sts.protocol.soap import build_envelope, envelope_bytes
from sts.protocol.xmlbytes import serialised
from sts.uris import SoapVersion


def test_reply_headers_serialize_as_separate_blocks() -> None:
    headers = render_reply_headers("urn:act", "urn:uuid:req")
    assert [h.getparent() for h in headers] == [None, None, None]
    wire = build_envelope(SoapVersion.SOAP12, etree.Element("{urn:x}b"), headers).decode()
    message_id = headers[1].text
    assert message_id is not None and message_id.startswith("urn:uuid:")
    wsa = f'xmlns:wsa="{ns.WSA}"'
    assert (f"<s:Header><wsa:Action {wsa}>urn:act</wsa:Action><wsa:MessageID {wsa}>{message_id}</wsa:MessageID>"
            f"<wsa:RelatesTo {wsa}>urn:uuid:req</wsa:RelatesTo></s:Header>") in wire


def test_no_relates_to_without_a_request_message_id() -> None:
    assert [h.tag for h in render_reply_headers("urn:act", None)] == [ns.qn(ns.WSA, "Action"),
                                                                     ns.qn(ns.WSA, "MessageID")]


def test_random_uuid_is_a_version_4_uuid() -> None:
    seen = {random_uuid() for _ in range(500)}
    assert len(seen) == 500
    for text in seen:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_parse_addressing_reads_either_namespace_and_any_case() -> None:
    blocks = tuple(etree.fromstring(x) for x in (
        f"<a:Action xmlns:a='{ns.WSA2004}'> urn:one </a:Action>",
        f"<a:messageID xmlns:a='{ns.WSA}'>id-1</a:messageID>",
        f"<a:Action xmlns:a='{ns.WSA}'>urn:two</a:Action>",
        "<a:To xmlns:a='urn:other'>nowhere</a:To>",
        f"<a:To xmlns:a='{ns.WSA}'>https://sts/</a:To>",
    ))
    headers = parse_addressing(blocks)
    assert (headers.action, headers.message_id, headers.to, headers.actions) == (
        "urn:one", "id-1", "https://sts/", ("urn:one", "urn:two"))


@pytest.mark.parametrize("relates_to", [None, "", "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", "id:<&>\r"])
@pytest.mark.parametrize("action", ["http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTRC/IssueFinal", "a&b<c>"])
def test_reply_headers_as_bytes_are_the_elements_serialised(action: str, relates_to: str | None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addressing, "random_uuid", lambda: "00000000-0000-4000-8000-000000000000")
    as_bytes = reply_headers_bytes(action, relates_to)
    assert as_bytes == b"".join(serialised(header) for header in render_reply_headers(action, relates_to))
    # ... and in an envelope, the bytes build_envelope makes of the elements.
    body = etree.Element(ns.qn(ns.WST13, "RequestSecurityTokenResponseCollection"), nsmap={"trust": ns.WST13})
    for version in SoapVersion:
        built = build_envelope(version, body.__copy__(), render_reply_headers(action, relates_to))
        assert envelope_bytes(version, as_bytes, serialised(body)) == built


def test_reply_headers_as_bytes_carry_a_new_message_id_each_time() -> None:
    first, second = (parse_addressing(list(etree.fromstring(b"<h>" + reply_headers_bytes("urn:a", None) + b"</h>")))
                     for _ in range(2))
    assert first.message_id != second.message_id
    assert first.action == second.action == "urn:a"
