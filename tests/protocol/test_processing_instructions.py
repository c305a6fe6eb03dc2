"""Processing instructions are refused anywhere (SOAP 1.1 §3, SOAP 1.2 Part 1 §5), by the one parser, so that
STS requests, tokens read by the verifier, decrypted tokens and metadata all refuse them; the XML declaration is
not a PI and stays accepted; comments are still dropped (exclusive c14n without comments never signs them)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sts import ns
from sts.config import load_settings
from sts.errors import InvalidRequest
from sts.protocol.xmlsafe import parse
from sts.runtime import Runtime, build_runtime
from trust_client import handle_in_process, valid_digest_issue

NAME_ID = (b"<saml:Assertion xmlns:saml='urn:oasis:names:tc:SAML:2.0:assertion' ID='_a'>"
           b"<saml:Subject><saml:NameID>al<?x?>ice</saml:NameID></saml:Subject></saml:Assertion>")

REFUSED = {
    "stylesheet-before-the-root": (b'<?xml-stylesheet type="text/xsl" href="http://a.example/x.xsl"?><a/>',
                                   "xml-stylesheet"),
    "after-the-declaration": (b'<?xml version="1.0"?>\n<?attacker run?><a/>', "attacker"),
    "inside": (b"<a><b><?attacker run?></b></a>", "attacker"),
    "after-the-root": (b"<a/><?trailer?>", "trailer"),
    "splitting-a-name-id": (NAME_ID, "x"),
    "target-starting-with-xml": (b"<a><?xml-foo bar?></a>", "xml-foo"),
    "utf-16": ('<?xml version="1.0" encoding="UTF-16"?><a><?hidden?></a>'.encode("utf-16"), "hidden"),
    # without a declaration lxml reports UTF-8 for what libxml2 read as UTF-16: b"<?" is not in these bytes
    "utf-16-without-a-declaration": ("<a><?hidden?></a>".encode("utf-16"), "hidden"),
    "utf-32-without-a-declaration": ("<a><?hidden?></a>".encode("utf-32"), "hidden"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_naming_the_target(name: str) -> None:
    document, target = REFUSED[name]
    with pytest.raises(InvalidRequest) as raised:
        parse(document)
    assert raised.value.public_reason == f"The request was invalid or malformed: processing instruction <?{target}?>"


ACCEPTED = {
    "xml-declaration": b'<?xml version="1.0" encoding="utf-8"?><a/>',
    "declaration-after-a-bom": b'\xef\xbb\xbf<?xml version="1.0"?><a/>',
    "pi-like-text-in-cdata": b"<a><![CDATA[<?not a pi?>]]></a>",
    "pi-like-text-in-a-comment": b"<a><!-- <?not a pi?> --></a>",
    "escaped-in-text": b"<a>&lt;?not a pi?&gt;</a>",
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_not_processing_instructions(name: str) -> None:
    root = parse(ACCEPTED[name])
    assert root.tag == "a" and root.getprevious() is None
    assert "<?not a pi?>" in (root.text or "") or name in ("xml-declaration", "declaration-after-a-bom",
                                                         "pi-like-text-in-a-comment")


def test_comments_are_dropped_not_refused() -> None:
    root = parse(b"<a>x<!-- hidden -->y</a>")
    assert root.text == "xy" and len(root) == 0


# --- through the endpoint ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(sts_home: Path) -> Runtime:
    return build_runtime(load_settings(sts_home).with_bind("127.0.0.1", 8080, tls=False))


def _before_the_envelope(body: bytes, demo: dict[str, str]) -> bytes:
    return b'<?xml-stylesheet type="text/xsl" href="http://attacker.example/steal.xsl"?>' + body


def _in_the_header(body: bytes, demo: dict[str, str]) -> bytes:
    return body.replace(b"</s:Header>", b"<?attacker run?></s:Header>")


def _in_the_body(body: bytes, demo: dict[str, str]) -> bytes:
    return body.replace(b"<s:Body>", b"<s:Body><?attacker run?>")


def _splitting_the_user_name(body: bytes, demo: dict[str, str]) -> bytes:
    name = demo["user"].encode()
    return body.replace(b">" + name + b"<", b">" + name[:1] + b"<?attacker?>" + name[1:] + b"<")


PLACES = {
    "before-the-envelope": (_before_the_envelope, "xml-stylesheet"),
    "in-the-header": (_in_the_header, "attacker"),
    "in-the-body": (_in_the_body, "attacker"),
    "splitting-the-user-name": (_splitting_the_user_name, "attacker"),
}


@pytest.mark.parametrize("place", list(PLACES))
def test_endpoint_refuses_then_serves(runtime: Runtime, demo: dict[str, str], place: str) -> None:
    edit, target = PLACES[place]
    valid = valid_digest_issue(demo)
    body = edit(valid, demo)
    assert body != valid
    start = time.perf_counter()
    reply = handle_in_process(runtime, body)
    assert time.perf_counter() - start < 1.0
    assert reply.status == 400  # a Sender fault in SOAP 1.2
    assert reply.fault_code == (ns.WST13, "InvalidRequest")
    assert reply.fault_reason == f"The request was invalid or malformed: processing instruction <?{target}?>"
    assert handle_in_process(runtime, valid_digest_issue(demo)).status == 200


def test_endpoint_accepts_the_xml_declaration(runtime: Runtime, demo: dict[str, str]) -> None:
    reply = handle_in_process(runtime, b'<?xml version="1.0" encoding="utf-8"?>\n' + valid_digest_issue(demo))
    assert reply.status == 200, reply.fault_reason
