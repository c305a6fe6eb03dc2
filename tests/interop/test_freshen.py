"""Freshening keeps a recording's shape and quirks and replaces only what is stale or another deployment's."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree

from interop.freshen import freshen
from interop.sidecar import discover
from interop.target import PROFILES, RelyingParty, Target
from sts import ns
from sts.uris import PASSWORD_DIGEST
from sts.protocol.wsse.username import password_digest

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"
FIXTURES = {f.name: f for f in discover(RECORDED)}
TARGET = Target(
    base_url="http://127.0.0.1:9", sts_cert_pem=b"", username="ada", password="s3cret&<x>", ours=True,
    relying_parties={name: RelyingParty(f"https://{name}.rp.test/", profile, None)
                     for name, profile in PROFILES.items()})
TOKEN = etree.fromstring(b'<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_fresh" Version="2.0"/>')


def _fresh(name: str, variant: str = "as-recorded") -> tuple[etree._Element, dict[str, str], str]:
    request = freshen(FIXTURES[name], TARGET, lambda profile: TOKEN, variant)
    return etree.fromstring(request.body), request.headers, request.url


def test_adal_template_placeholders_are_filled_and_quirks_kept() -> None:
    root, headers, url = _fresh("adal-python/adal-wstrust13-soap12-rst-issue-usernametoken-bearer.TEMPLATE.xml")
    text = etree.tostring(root).decode()
    assert "%" not in text
    assert url == "http://127.0.0.1:9/adfs/services/trust/13/usernamemixed"
    assert root.findtext(f".//{{{ns.WSA}}}To") == url
    assert root.find(f".//{{{ns.WSA}}}messageID") is not None  # ADAL's lowercase, as recorded
    password = root.find(f".//{{{ns.WSSE}}}Password")
    assert password is not None and password.text == "s3cret&<x>" and password.get("Type") is None
    assert root.findtext(f".//{{{ns.WSP12}}}AppliesTo//{{{ns.WSA}}}Address") == "https://saml11-plain.rp.test/"
    assert headers["SOAPAction"] == "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"
    assert headers["Content-Type"].startswith("application/soap+xml")


def test_a_bare_body_gets_an_envelope_with_our_username_token() -> None:
    root, headers, _ = _fresh("picketlink/wst-issue-public-key.xml")
    assert root.tag == ns.qn(ns.SOAP12, "Envelope")
    assert root.findtext(f".//{{{ns.WSSE}}}Username") == "ada"
    assert root.findtext(f".//{{{ns.WSA}}}Action") == "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"
    assert root.find(f".//{{{ns.WST13}}}UseKey") is not None  # the body itself goes out as recorded
    assert root.findtext(f".//{{{ns.WSP12}}}AppliesTo//{{{ns.WSA}}}Address") == "https://saml20.rp.test/"


def test_batch_action_names_the_batch() -> None:
    root, _, _ = _fresh("picketlink/wst-batch-validate.xml")
    # the action the STS maps to a batch (sts.web.pipeline), not the RequestType URI
    assert root.findtext(f".//{{{ns.WSA}}}Action") == f"{ns.WST13}/RST/BatchValidate"


def test_validate_target_becomes_a_fresh_token_unless_kept() -> None:
    root, _, _ = _fresh("picketlink/wst-validate-saml.xml")
    target = root.find(f".//{{{ns.WST13}}}ValidateTarget")
    assert target is not None and [c.get("ID") for c in target] == ["_fresh"]
    kept, _, _ = _fresh("picketlink/wst-validate-saml.xml", "keep-target")
    assert kept.find(f".//{{{ns.WST13}}}ValidateTarget/{{{ns.SAML2}}}Assertion").get("ID") != "_fresh"


def test_wrong_password_variant() -> None:
    root, _, _ = _fresh("adal-node/adal-wstrust2005-soap12-rst-issue-usernametoken-noproofkey.TEMPLATE.xml",
                        "wrong-password")
    assert root.findtext(f".//{{{ns.WSSE}}}Password") != TARGET.password


def test_timestamps_are_current() -> None:
    root, _, _ = _fresh("adal-python/adal-wstrust13-soap12-rst-issue-usernametoken-bearer.TEMPLATE.xml")
    created = root.findtext(f".//{{{ns.WSU}}}Timestamp/{{{ns.WSU}}}Created")
    assert created is not None and created.startswith("20") and created.endswith("Z")


def test_a_digest_is_recomputed_with_a_fresh_nonce(tmp_path: Path) -> None:
    from interop.sidecar import load

    source = FIXTURES["adal-python/adal-wstrust13-soap12-rst-issue-usernametoken-bearer.TEMPLATE.xml"]
    data = source.data().replace(
        b"<wsse:Password>%PASSWORD%</wsse:Password>",
        f'<wsse:Password Type="{PASSWORD_DIGEST}">old</wsse:Password><wsse:Nonce>AAAA</wsse:Nonce>'
        f"<wsu:Created>2015-01-01T00:00:00Z</wsu:Created>".encode())
    (tmp_path / "d.xml").write_bytes(data)
    (tmp_path / "d.toml").write_text(source.path.with_name(source.path.name[:-4] + ".toml").read_text())
    (tmp_path / "PROVENANCE.md").write_text("copy\n")
    request = freshen(load(tmp_path / "d.xml", tmp_path), TARGET, lambda profile: TOKEN)
    token = etree.fromstring(request.body).find(f".//{{{ns.WSSE}}}UsernameToken")
    assert token is not None
    nonce = base64.b64decode(token.findtext(f"{{{ns.WSSE}}}Nonce") or "")
    created = token.findtext(f"{{{ns.WSU}}}Created") or ""
    assert nonce != b"\0\0\0" and not created.startswith("2015")
    assert token.findtext(f"{{{ns.WSSE}}}Password") == password_digest(nonce, created, TARGET.password)


def test_a_target_token_without_a_target_element_is_refused() -> None:
    fixture = FIXTURES["picketlink/wst-validate-saml.xml"]
    from dataclasses import replace

    odd = replace(fixture, path=FIXTURES["picketlink/wst-issue-public-key.xml"].path)
    with pytest.raises(ValueError, match="no Validate/Renew/CancelTarget"):
        freshen(odd, TARGET, lambda profile: TOKEN)


def test_a_signed_recording_is_signed_again_with_the_targets_client_key() -> None:
    from dataclasses import replace

    from sts.tokens.crypto.keys import generate_key_and_cert, load_certificate
    from sts.protocol.wsse.signature import AlgorithmPolicy, TrustedKey, verify_message
    from sts.xmltime import utcnow

    key_pem, cert_pem = generate_key_and_cert("a client of the target")
    target = replace(TARGET, client_name="c", client_key_pem=key_pem, client_cert_pem=cert_pem)
    fixture = FIXTURES["live/zeep/saml20-wst1.3-soap1.2-x509.rst.xml"]
    assert fixture.message.auth == "x509"
    root = etree.fromstring(freshen(fixture, target, lambda profile: TOKEN).body)
    security = root.find(f".//{{{ns.WSSE}}}Security")
    assert security is not None and len(security.findall(f"{{{ns.DS}}}Signature")) == 1
    signed = verify_message(root, security, resolve=lambda reference: TrustedKey(load_certificate(cert_pem)),
                            allowed=AlgorithmPolicy.strict(), now=utcnow())
    assert signed.body_signed and signed.timestamp_signed
    assert signed.signed_body.findtext(f".//{{{ns.WSP12}}}AppliesTo//{{{ns.WSA}}}Address") == "https://saml20.rp.test/"
    with pytest.raises(ValueError, match="no registered X.509 client key"):
        freshen(fixture, TARGET, lambda profile: TOKEN)


def test_use_key_names_the_targets_client_certificate() -> None:
    from dataclasses import replace

    from sts.tokens.crypto.keys import generate_key_and_cert

    key_pem, cert_pem = generate_key_and_cert("a client of the target")
    target = replace(TARGET, client_name="c", client_key_pem=key_pem, client_cert_pem=cert_pem)
    fixture = FIXTURES["live/sts-client/saml20-plain-wst1.3-soap1.2-x509-publickey.rst.xml"]
    assert fixture.replay.use_key == "fresh-certificate"
    root = etree.fromstring(freshen(fixture, target, lambda profile: TOKEN).body)
    in_use_key = root.findtext(f".//{{{ns.WST13}}}UseKey//{{{ns.DS}}}X509Certificate")
    in_signature = root.findtext(f".//{{{ns.WSSE}}}BinarySecurityToken")
    assert in_use_key and in_use_key == in_signature  # the key named is the key that signed
    assert base64.b64decode(in_use_key)[:1] == b"\x30"
