"""The allow-list at the relying party's edges: ``sts token verify --allow-algorithm`` and the ASGI middleware's SOAP
path (one token per envelope)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from lxml import etree

from assertion_content import make_content
from sts import ns
from sts.cli.main import main
from sts.rp.asgi import token_from_soap
from sts.rp.verifier import TokenRejected
from sts.tokens.crypto.encryption import encrypt_element
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, random_id
from sts.tokens.crypto.signing import XmlSigner
from sts.tokens.saml import saml20
from sts.uris import DataEncryption, KeyTransport

AUDIENCE = "https://rp.example/"
ISSUER = "https://sts.example/"
SOAP = f"{{{ns.SOAP11}}}"


@pytest.fixture(scope="module")
def keys() -> tuple[SigningKey, SigningKey]:
    return SigningKey.from_pem(*generate_key_and_cert("sts")), SigningKey.from_pem(*generate_key_and_cert("rp"))


def _token(sts: SigningKey) -> etree._Element:
    # Valid now: the CLI verifies against the real clock.
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    content = make_content(now=now, assertion_id=random_id(), issuer=ISSUER, audience=AUDIENCE)
    assertion = saml20.build_assertion(content)
    XmlSigner(sts).sign(assertion, content.assertion_id, after=saml20.issuer_of(assertion))
    return assertion


def _files(tmp_path: Path, sts: SigningKey, rp: SigningKey, token: etree._Element) -> list[str]:
    (tmp_path / "sts.crt").write_bytes(sts.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "rp.key").write_bytes(rp.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "token.xml").write_bytes(etree.tostring(token))
    return [str(tmp_path / "token.xml"), "--sts-cert", str(tmp_path / "sts.crt"), "--rp-key", str(tmp_path / "rp.key"),
            "--audience", AUDIENCE, "--issuer", ISSUER]


def _runner() -> CliRunner:
    return CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()


def test_token_verify_refuses_cbc_and_rsa15_unless_allowed(tmp_path: Path, keys: tuple[SigningKey, SigningKey]) -> None:
    sts, rp = keys
    token = encrypt_element(_token(sts), rp.certificate, data=DataEncryption.AES256_CBC,
                            key_transport=KeyTransport.RSA_1_5)
    args = _files(tmp_path, sts, rp, token)
    refused = _runner().invoke(main, ["token", "verify", *args])
    assert refused.exit_code == 1
    assert "token rejected:" in refused.stderr and "(code: algorithm)" in refused.stderr
    only_cbc = _runner().invoke(main, ["token", "verify", *args, "--allow-algorithm", "aes256-cbc"])
    assert only_cbc.exit_code == 1 and "rsa-1_5" in only_cbc.stderr  # each legacy algorithm is its own opt-in
    allowed = _runner().invoke(main, ["token", "verify", *args, "--allow-algorithm", "aes256-cbc",
                                      "--allow-algorithm", KeyTransport.RSA_1_5.value, "--json"])
    assert allowed.exit_code == 0, allowed.stderr
    assert "legacy algorithms accepted: aes256-cbc, rsa-1_5" in allowed.stderr
    assert '"subject": "alice"' in allowed.stdout


def test_token_verify_names_an_unknown_algorithm(tmp_path: Path, keys: tuple[SigningKey, SigningKey]) -> None:
    sts, rp = keys
    result = _runner().invoke(main, ["token", "verify", *_files(tmp_path, sts, rp, _token(sts)),
                                     "--allow-algorithm", "3des"])
    assert result.exit_code == 2 and "unknown algorithm '3des'" in result.stderr


def _envelope(*header_tokens: etree._Element, body: etree._Element | None = None) -> bytes:
    envelope = etree.Element(f"{SOAP}Envelope")
    security = etree.SubElement(etree.SubElement(envelope, f"{SOAP}Header"), f"{{{ns.WSSE}}}Security")
    security.extend(copy.deepcopy(t) for t in header_tokens)
    etree.SubElement(envelope, f"{SOAP}Body").append(body if body is not None else etree.Element("Hello"))
    return etree.tostring(envelope)


def test_the_middleware_takes_the_one_token_of_the_envelope(keys: tuple[SigningKey, SigningKey]) -> None:
    sts, _ = keys
    good = _token(sts)
    assert token_from_soap(_envelope(good)).get("ID") == good.get("ID")
    evil = _token(sts)
    evil.remove(evil.find(f"{{{ns.DS}}}Signature"))
    with pytest.raises(TokenRejected) as extra:
        token_from_soap(_envelope(good, body=evil))  # a second assertion in the Body
    assert extra.value.code == "signature" and "more than one token" in extra.value.reason
    body = etree.Element("Hello", ID=good.get("ID"))
    with pytest.raises(TokenRejected) as duplicate:
        token_from_soap(_envelope(good, body=body))
    assert duplicate.value.code == "signature" and "duplicate Id" in duplicate.value.reason
