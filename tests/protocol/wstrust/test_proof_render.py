"""RSTR proof-token parts (WS-Trust 1.3 §4.4, 2005/02 §5.4): forms, Type URIs, XSD validity, requester decryption."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from sts import ns
from sts.tokens.crypto.encryption import decrypt_key, encrypt_key_bytes
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from interop.xsd import validator
from sts.model import EncryptedSecret, ProofResponse
from sts.uris import DigestAlgorithm, KeyTransport, TrustVersion
from sts.protocol.wstrust.proof import render_proof

XENC = f"{{{ns.XENC}}}"
KEY = bytes(range(32))
ENTROPY = bytes(range(32, 64))
VERSIONS = pytest.mark.parametrize("version", list(TrustVersion), ids=lambda v: v.name)


@pytest.fixture(scope="module")
def requester() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("requester.test"))


def _rstr(version: TrustVersion, parts: list[etree._Element]) -> etree._Element:
    """The parts inside an RSTR, serialized and parsed again (as a client receives them)."""
    rstr = etree.Element(ns.qn(version.ns, "RequestSecurityTokenResponse"), nsmap={"wst": version.ns})
    rstr.extend(parts)
    return etree.fromstring(etree.tostring(rstr))


def _valid(element: etree._Element) -> None:
    errors = list(validator().iter_errors(element))
    assert not errors, errors[0]


def _q(version: TrustVersion, local: str) -> str:
    return ns.qn(version.ns, local)


@VERSIONS
def test_issuer_key_in_clear(version) -> None:
    parts = render_proof(version, ProofResponse(key_size=256, binary_secret=KEY))
    assert [etree.QName(p).localname for p in parts] == ["RequestedProofToken"]
    rstr = _rstr(version, parts)
    secret = rstr.find(f"{_q(version, 'RequestedProofToken')}/{_q(version, 'BinarySecret')}")
    assert secret.get("Type") == f"{version.ns}/SymmetricKey"
    assert base64.b64decode(secret.text) == KEY
    for part in rstr:
        _valid(part)
    _valid(rstr)


@VERSIONS
def test_computed_key(version) -> None:
    response = ProofResponse(
        key_size=256, server_entropy=ENTROPY, computed_key_algorithm=f"{version.ns}/CK/PSHA1"
    )
    parts = render_proof(version, response)
    assert [etree.QName(p).localname for p in parts] == ["RequestedProofToken", "Entropy", "KeySize"]
    rstr = _rstr(version, parts)
    computed = rstr.findtext(f"{_q(version, 'RequestedProofToken')}/{_q(version, 'ComputedKey')}")
    assert computed == f"{version.ns}/CK/PSHA1"
    nonce = rstr.find(f"{_q(version, 'Entropy')}/{_q(version, 'BinarySecret')}")
    assert nonce.get("Type") == f"{version.ns}/Nonce"
    assert base64.b64decode(nonce.text) == ENTROPY
    assert rstr.findtext(_q(version, "KeySize")) == "256"
    for part in rstr:
        _valid(part)


@VERSIONS
def test_issuer_key_encrypted_for_the_requester(version, requester) -> None:
    # The service encrypted the key already (the decision): the renderer only writes the EncryptedKey out.
    response = ProofResponse(key_size=256, encrypted=_encrypted(KEY, requester))
    rstr = _rstr(version, render_proof(version, response))
    (requested,) = rstr
    (encrypted_key,) = requested
    assert encrypted_key.tag == f"{XENC}EncryptedKey"
    assert KEY.hex() not in etree.tostring(rstr).decode() and base64.b64encode(KEY) not in etree.tostring(rstr)
    assert decrypt_key(encrypted_key, requester.private_key) == KEY
    _valid(requested)


@VERSIONS
def test_computed_key_entropy_encrypted_for_the_requester(version, requester) -> None:
    response = ProofResponse(
        key_size=128,
        computed_key_algorithm=f"{version.ns}/CK/PSHA1",
        encrypted=_encrypted(ENTROPY[:16], requester),
    )
    rstr = _rstr(version, render_proof(version, response))
    encrypted_key = rstr.find(f"{_q(version, 'Entropy')}/{XENC}EncryptedKey")
    assert decrypt_key(encrypted_key, requester.private_key) == ENTROPY[:16]
    assert rstr.findtext(_q(version, "KeySize")) == "128"
    for part in rstr:
        _valid(part)


def _encrypted(secret: bytes, requester: SigningKey) -> EncryptedSecret:
    cipher = encrypt_key_bytes(requester.certificate, secret, KeyTransport.RSA_OAEP_MGF1P)
    return EncryptedSecret(KeyTransport.RSA_OAEP_MGF1P.value, cipher, DigestAlgorithm.SHA1.value, requester.cert_der)


def test_prefixes_match_the_rstr_renderer() -> None:
    data = etree.tostring(render_proof(TrustVersion.WST13, ProofResponse(key_size=128, binary_secret=KEY))[0])
    assert data.startswith(b'<trust:RequestedProofToken xmlns:trust="http://docs.oasis-open.org/ws-sx/ws-trust/200512">')


@pytest.mark.parametrize(
    "response",
    [ProofResponse(key_size=256), ProofResponse(key_size=256, computed_key_algorithm="x")],
    ids=["empty", "computed-without-entropy"],
)
def test_incomplete_responses_are_programming_errors(response) -> None:
    with pytest.raises(ValueError):
        render_proof(TrustVersion.WST13, response)


def test_the_validator_checks_these_parts() -> None:
    bad = etree.Element(ns.qn(ns.WST13, "KeySize"))
    bad.text = "many"
    assert list(validator().iter_errors(bad))
