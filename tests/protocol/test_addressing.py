"""sts.protocol.addressing: reply header blocks each declare wsa themselves; MessageIDs are random UUIDv4s."""

from __future__ import annotations

import uuid

from lxml import etree

from sts import ns
from sts.protocol.addressing import parse_addressing, random_uuid, render_reply_headers
from sts.protocol.soap import build_envelope
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
