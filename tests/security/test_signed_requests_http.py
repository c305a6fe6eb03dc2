"""Signed-request attacks over the wire: the fault codes a client sees (the in-process cases, with every XSW
position, are in test_signed_requests.py). Needs a client certificate registered in our own database."""

from __future__ import annotations

import base64
import hmac

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from attack_target import Target
from signing import make_client, rst_root
from sts import ns
from sts.config import load_settings
from sts.protocol.wsse.build import sign_envelope
from sts.runtime import open_stores

S12 = f"{{{ns.SOAP12}}}"
DS = f"{{{ns.DS}}}"
CLIENT = make_client("attack-svc")


@pytest.fixture(scope="module")
def registered(target: Target) -> Target:
    home = target.require_home("registers a client certificate")
    stores = open_stores(load_settings(home))
    try:
        if stores.clients.get("attack-svc") is None:
            stores.clients.add("attack-svc", CLIENT[1].public_bytes(Encoding.PEM))
    finally:
        stores.close()
    return target


def _signed(target: Target, client: tuple[object, object, bytes] = CLIENT, **options: object) -> etree._Element:
    root = rst_root(applies_to=target.applies_to)
    sign_envelope(root, client[0], client[1], **options)  # type: ignore[arg-type]
    return root


def _post(target: Target, root: etree._Element) -> tuple[str, str] | None:
    code: tuple[str, str] | None = target.post(etree.tostring(root)).fault_code
    return code


def test_a_signed_request_gets_a_token(registered: Target) -> None:
    reply = registered.post(etree.tostring(_signed(registered)))
    assert reply.status == 200, reply.fault_reason


def test_wrapped_body(registered: Target) -> None:
    root = _signed(registered)
    body = root.find(f"{S12}Body")
    assert body is not None
    forged = etree.Element(body.tag)
    forged.append(rst_root(applies_to="https://evil.example/").find(f"{S12}Body")[0])
    body.addnext(forged)
    etree.SubElement(root.find(f"{S12}Header"), "{urn:evil}Wrapper").append(body)
    assert _post(registered, root) == (ns.WSSE, "FailedCheck")


def test_signature_over_the_timestamp_only(registered: Target) -> None:
    assert _post(registered, _signed(registered, sign_body=False)) == (ns.WST13, "AuthenticationBadElements")


def test_hmac_keyed_with_the_certificate(registered: Target) -> None:
    root = _signed(registered)
    signed_info = root.find(f".//{DS}SignedInfo")
    assert signed_info is not None
    signed_info.find(f"{DS}SignatureMethod").set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256")
    value = hmac.new(CLIENT[2], etree.tostring(signed_info, method="c14n", exclusive=True), "sha256").digest()
    root.find(f".//{DS}SignatureValue").text = base64.b64encode(value).decode()
    assert _post(registered, root) == (ns.WSSE, "UnsupportedAlgorithm")


def test_unregistered_certificate(registered: Target) -> None:
    assert _post(registered, _signed(registered, make_client("stranger"))) == (ns.WST13, "FailedAuthentication")


@pytest.mark.parametrize("value", ["", "***", "AAAA"], ids=["empty", "not-base64", "short"])
def test_broken_signature_value(registered: Target, value: str) -> None:
    """Found by tests/fuzz: an empty value escaped as an unhandled TypeError (RequestFailed); now FailedCheck."""
    root = _signed(registered)
    root.find(f".//{DS}SignatureValue").text = value
    assert _post(registered, root) == (ns.WSSE, "FailedCheck")
