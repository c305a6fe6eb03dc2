"""XML resource limits (issue 12, item 3): each bound refused with a fault naming it, in well under a second, on
the normal path at almost no cost; through the endpoint a valid request right after still gets a token."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from sts import ns
from sts.config import Settings, load_settings
from sts.errors import InvalidRequest
from sts.protocol.xmlsafe import DEFAULT_LIMITS, XmlLimits, parse
from sts.runtime import Runtime, build_runtime
from sts.uris import SoapVersion
from live import LiveServer
from trust_client import handle_in_process, valid_digest_issue, Reply, post

#: Generous for a busy two-core machine: a flood that is really processed takes seconds, or gets a token.
FLOOD_SECONDS = 1.0


def _attributes(count: int) -> bytes:
    return b"<x:f xmlns:x='urn:x' " + b" ".join(b"a%d='1'" % i for i in range(count)) + b"/>"


def _namespaces_on_one(count: int) -> bytes:
    return b"<f " + b" ".join(b"xmlns:p%d='urn:%d'" % (i, i) for i in range(count)) + b"/>"


def _namespaces_across(elements: int, per_element: int) -> bytes:
    inner = b"".join(
        b"<e " + b" ".join(b"xmlns:p%d='urn:%d:%d'" % (i, e, i) for i in range(per_element)) + b"/>"
        for e in range(elements)
    )
    return b"<f>" + inner + b"</f>"


def _elements(count: int) -> bytes:
    return b"<f>" + b"<e/>" * (count - 1) + b"</f>"


def _text(length: int) -> bytes:
    return b"<f>" + b"x" * length + b"</f>"


def _attribute_value(length: int) -> bytes:
    return b"<f v='" + b"x" * length + b"'/>"


def _depth(depth: int) -> bytes:
    return b"<e>" * depth + b"</e>" * depth


#: name -> (document with n of the thing, the limit's field, the setting named in the fault)
CASES: dict[str, tuple[Callable[[int], bytes], str, str]] = {
    "attributes": (_attributes, "max_attributes", "max_xml_attributes"),
    "namespaces-per-element": (_namespaces_on_one, "max_namespaces_per_element", "max_xml_namespaces_per_element"),
    "namespaces": (lambda n: _namespaces_across(n, 1), "max_namespaces", "max_xml_namespaces"),
    "elements": (_elements, "max_elements", "max_xml_elements"),
    "text-length": (_text, "max_text_length", "max_xml_text_length"),
    "attribute-length": (_attribute_value, "max_attribute_length", "max_xml_attribute_length"),
}


def test_defaults_are_the_settings_defaults(tmp_path: Path) -> None:
    assert XmlLimits.from_settings(Settings(home=tmp_path)) == DEFAULT_LIMITS


@pytest.mark.parametrize("name", list(CASES))
def test_at_the_limit_accepted_one_over_refused(name: str) -> None:
    build, field, setting = CASES[name]
    limit = getattr(DEFAULT_LIMITS, field)
    parse(build(limit))
    with pytest.raises(InvalidRequest) as raised:
        parse(build(limit + 1))
    assert raised.value.public_reason.endswith(f"the limit is {limit} ({setting})"), raised.value.public_reason


@pytest.mark.parametrize("name", list(CASES))
def test_limits_are_configurable(name: str) -> None:
    build, field, setting = CASES[name]
    limits = dataclasses.replace(DEFAULT_LIMITS, **{field: 5})
    parse(build(5), limits=limits)
    with pytest.raises(InvalidRequest, match=rf"the limit is 5 \({setting}\)"):
        parse(build(6), limits=limits)


def test_the_fault_names_what_was_found() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse(_attributes(25_000))
    assert raised.value.public_reason == (
        "The request was invalid or malformed: an element has 25000 attributes; the limit is 500 (max_xml_attributes)"
    )


def test_the_older_keywords_still_work() -> None:
    with pytest.raises(InvalidRequest, match="exceeds the limit of 100"):
        parse(_text(200), max_bytes=100)
    parse(_depth(10), max_depth=10)
    with pytest.raises(InvalidRequest, match="nesting deeper than 10"):
        parse(_depth(11), max_depth=10)
    with pytest.raises(InvalidRequest, match="max_xml_attributes"):  # the other limits still apply
        parse(_attributes(600), max_bytes=10**6)


def test_repeated_declarations_count_once_per_document() -> None:
    """A batch answer's tokens each declare the same namespaces again: that is no flood."""
    document = b"<f>" + b"<e xmlns:a='urn:a' xmlns:b='urn:b'/>" * 1000 + b"</f>"
    root = parse(document)
    assert len(root) == 1000 and root[-1].nsmap == {"a": "urn:a", "b": "urn:b"}


def test_comments_and_cdata_do_not_hide_text() -> None:
    with pytest.raises(InvalidRequest, match="max_xml_text_length"):
        parse(b"<f><![CDATA[" + b"x" * (DEFAULT_LIMITS.max_text_length + 1) + b"]]></f>")


@pytest.mark.parametrize("encoding,declared", [("utf-16", True), ("utf-16-be", True), ("utf-7", True),
                                               ("utf-16", False), ("utf-32", False)])
def test_other_encodings_get_the_exact_checks(encoding: str, declared: bool) -> None:
    """The byte-count shortcuts assume ASCII markup; in UTF-16 or UTF-7 (where '<' is '+ADw-') they would miss,
    declared or (UTF-16/32 with a byte order mark) not."""
    declaration = f"<?xml version='1.0' encoding='{encoding}'?>" if declared else ""
    flood = "<f " + " ".join(f"a{i}='1'" for i in range(600)) + "/>"
    with pytest.raises(InvalidRequest, match="max_xml_attributes"):
        parse(f"{declaration}{flood}".encode(encoding))
    elements = f"{declaration}<f>{'<e/>' * 60}</f>".encode(encoding)
    with pytest.raises(InvalidRequest, match="max_xml_elements"):
        parse(elements, limits=dataclasses.replace(DEFAULT_LIMITS, max_elements=50))


FLOODS: dict[str, bytes] = {
    "25000-attributes": _attributes(25_000),
    "colliding-attribute-names": b"<x:f xmlns:x='urn:x' " + b" ".join(
        b"%s='1'" % bytes(format(i, "012b"), "ascii").replace(b"0", b"Aa").replace(b"1", b"BB")
        for i in range(4096)) + b"/>",
    "2000-namespaces-on-one-element": _namespaces_on_one(2000),
    "1600-namespaces-across-elements": _namespaces_across(40, 40),
    "250000-elements": _elements(250_000),
    "400000-character-text": _text(400_000),
    "400000-character-attribute": _attribute_value(400_000),
}


@pytest.mark.parametrize("name", list(FLOODS))
def test_a_flood_is_refused_quickly(name: str) -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidRequest):
        parse(FLOODS[name])
    assert time.perf_counter() - start < FLOOD_SECONDS


# --- through the endpoint ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(sts_home: Path) -> Iterator[Runtime]:
    yield build_runtime(load_settings(sts_home).with_bind("127.0.0.1", 8080, tls=False))


def _in_header(envelope: bytes, fragment: bytes) -> bytes:
    end = envelope.index(b"</s:Header>")
    return envelope[:end] + fragment + envelope[end:]


@pytest.mark.parametrize("name", [n for n in FLOODS if n != "250000-elements"])  # that one exceeds 1 MB
def test_endpoint_refuses_a_flood_then_serves(runtime: Runtime, demo: dict[str, str], name: str) -> None:
    body = _in_header(valid_digest_issue(demo), FLOODS[name])
    start = time.perf_counter()
    reply = handle_in_process(runtime, body)
    elapsed = time.perf_counter() - start
    assert reply.fault_code == (ns.WST13, "InvalidRequest"), reply.fault_reason
    assert "the limit is" in (reply.fault_reason or "")
    assert elapsed < FLOOD_SECONDS, f"{name}: {elapsed:.2f} s"
    assert handle_in_process(runtime, valid_digest_issue(demo)).status == 200


def test_endpoint_uses_the_configured_limits(sts_home: Path, demo: dict[str, str]) -> None:
    settings = dataclasses.replace(load_settings(sts_home).with_bind("127.0.0.1", 8080, tls=False),
                                   max_xml_attributes=3)
    strict = build_runtime(settings)
    reply = handle_in_process(strict, _in_header(valid_digest_issue(demo), _attributes(4)))
    assert reply.fault_reason is not None and reply.fault_reason.endswith("the limit is 3 (max_xml_attributes)")


def test_a_body_over_max_request_bytes_over_http(live_sts: LiveServer, demo: dict[str, str]) -> None:
    """Refused while it is read, with the parser's words; the server then still serves."""
    limit = load_settings(live_sts.home).max_request_bytes
    body = _in_header(valid_digest_issue(demo), b"<x:f xmlns:x='urn:x'>" + b"x" * limit + b"</x:f>")
    response = httpx.post(live_sts.sts_url, content=body, headers={"content-type": SoapVersion.SOAP12.content_type},
                          timeout=30)
    reply = Reply(response.status_code, response.headers["content-type"], etree.fromstring(response.content))
    assert reply.fault_code == (ns.WST13, "InvalidRequest")
    assert reply.fault_reason == (f"The request was invalid or malformed: the request exceeds the limit of {limit} "
                                  "bytes (max_request_bytes)")
    assert post(live_sts.sts_url, valid_digest_issue(demo)).status == 200
