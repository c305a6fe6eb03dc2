"""The relying party's verifier on tokens issued by the real STS over HTTP (SAML 1.1/2.0, encrypted or not, bearer
or holder-of-key), and on federation metadata."""

from __future__ import annotations

import base64
import os
from datetime import timedelta

import httpx
import pytest
from lxml import etree

from sts import ns
from sts.config import load_settings
from sts.tokens.crypto.keys import load_certificate, load_private_key
from sts.tokens.crypto.proof import p_sha1
from sts.home import CLAIMS
from sts.model import RelyingParty
from sts.uris import TokenType, TrustVersion
from sts.rp.verifier import InMemoryReplayCache, TokenRejected, TokenVerifier, claim_uri_11
from sts.runtime import open_stores
from sts.xmltime import utcnow
from trust_client import Reply, post, rst_envelope

PLAIN_RP = "https://verifier-tests.example/plain/"
GIVENNAME, SURNAME, DOB = f"{CLAIMS}/givenname", f"{CLAIMS}/surname", f"{CLAIMS}/dateofbirth"


@pytest.fixture(scope="module")
def plain_rp(live_sts) -> str:
    """A relying party that receives unencrypted tokens (registered once in this worker's home)."""
    stores = open_stores(load_settings(live_sts.home))
    if stores.relying_parties.lookup(PLAIN_RP) is None:
        cert = (live_sts.home / "demo" / "rp.crt").read_bytes()  # for holder-of-key proof keys only
        stores.relying_parties.add(RelyingParty(endpoint=PLAIN_RP, cert_pem=cert, encrypt=False))
    stores.close()
    return PLAIN_RP


def sts_cert(live) -> object:
    return load_certificate(load_settings(live.home).signing_cert_path.read_bytes())


def rp_key(live) -> object:
    return load_private_key((live.home / "demo" / "rp.key").read_bytes())


def make_verifier(live, audience: str, **options: object) -> TokenVerifier:
    return TokenVerifier([sts_cert(live)], rp_private_key=rp_key(live), audience=audience,  # type: ignore[list-item,arg-type]
                         **options)  # type: ignore[arg-type]


def issue(live, demo, applies_to: str, version: TrustVersion = TrustVersion.WST13, **options: object) -> Reply:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=applies_to, version=version,
                        **options)
    reply = post(live.sts_url, body)
    assert reply.status == 200, reply.fault_reason
    return reply


@pytest.mark.parametrize("token_type", list(TokenType))
@pytest.mark.parametrize("encrypted", [True, False])
def test_bearer_tokens_verify(live_sts, demo, plain_rp, token_type, encrypted) -> None:
    audience = demo["rp"] if encrypted else plain_rp
    reply = issue(live_sts, demo, audience, token_type_uri=token_type.value,
                  claims=((GIVENNAME, False), (SURNAME, False), (DOB, False)))
    token = reply.token()
    assert (etree.QName(token).localname in ("EncryptedAssertion", "EncryptedData")) is encrypted
    verifier = make_verifier(live_sts, audience, required_claims=(GIVENNAME, DOB))
    for form in (token, etree.tostring(token), etree.tostring(reply.root),
                 etree.tostring(reply.root.find(".//{*}RequestSecurityTokenResponseCollection"))):
        verified = verifier.verify(form)
        assert verified.subject == "alice"
        assert verified.version == ("2.0" if token_type is TokenType.SAML20 else "1.1")
        assert verified.claims[GIVENNAME] == ("Alice",)
        assert verified.claims[SURNAME] == ("Liddell",)
        assert verified.claims[DOB] == ("1990-05-04",)
        assert verified.confirmation_method is not None and verified.confirmation_method.endswith(":cm:bearer")
        assert verified.proof_key is None and not verified.holder_of_key
        assert verified.not_on_or_after > utcnow() > verified.not_before  # type: ignore[operator]
        assert any(a.rstrip("/") == audience.rstrip("/") for a in verified.audiences)
        assert verified.authn_method and verified.authn_instant
        assert verified.token_id == reply.findtext(".//wsse:KeyIdentifier")


@pytest.mark.parametrize("token_type", list(TokenType))
def test_symmetric_holder_of_key_proof_key_equals_the_clients(live_sts, demo, token_type) -> None:
    wst = TrustVersion.WST13.value
    client_entropy = os.urandom(32)
    entropy = etree.Element(f"{{{wst}}}Entropy")
    etree.SubElement(entropy, f"{{{wst}}}BinarySecret", Type=f"{wst}/Nonce").text = (
        base64.b64encode(client_entropy).decode())
    key_size = etree.Element(f"{{{wst}}}KeySize")
    key_size.text = "256"
    computed = etree.Element(f"{{{wst}}}ComputedKeyAlgorithm")
    computed.text = f"{wst}/CK/PSHA1"
    reply = issue(live_sts, demo, demo["rp"], token_type_uri=token_type.value, key_type_uri=f"{wst}/SymmetricKey",
                  extra=(key_size, entropy, computed))
    server_entropy = base64.b64decode(reply.findtext(".//trust:RequestSecurityTokenResponse/trust:Entropy/"
                                                     "trust:BinarySecret") or "")
    client_key = p_sha1(client_entropy, server_entropy, 32)
    verified = make_verifier(live_sts, demo["rp"]).verify(reply.token())
    assert verified.holder_of_key and verified.proof_key == client_key
    assert verified.confirmation_method == (
        "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key" if token_type is TokenType.SAML20
        else "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key")


def test_symmetric_proof_key_needs_the_rp_key(live_sts, demo, plain_rp) -> None:
    reply = issue(live_sts, demo, plain_rp, key_type_uri=f"{ns.WST13}/SymmetricKey")
    verifier = TokenVerifier([sts_cert(live_sts)], audience=plain_rp)  # type: ignore[list-item]
    with pytest.raises(TokenRejected) as info:
        verifier.verify(reply.token())
    assert info.value.code == "decryption"
    assert make_verifier(live_sts, plain_rp).verify(reply.token()).proof_key is not None


def test_encrypted_token_without_rp_key_is_rejected(live_sts, demo) -> None:
    reply = issue(live_sts, demo, demo["rp"])
    verifier = TokenVerifier([sts_cert(live_sts)], audience=demo["rp"])  # type: ignore[list-item]
    with pytest.raises(TokenRejected) as info:
        verifier.verify(reply.token())
    assert info.value.code == "decryption"


def test_wstrust_2005_rstr_verifies(live_sts, demo) -> None:
    reply = issue(live_sts, demo, demo["rp"], version=TrustVersion.WST2005)
    assert make_verifier(live_sts, demo["rp"]).verify(etree.tostring(reply.root)).subject == "alice"


def test_replay_cache_rejects_the_second_use(live_sts, demo) -> None:
    reply = issue(live_sts, demo, demo["rp"])
    verifier = make_verifier(live_sts, demo["rp"], replay_cache=InMemoryReplayCache())
    verifier.verify(reply.token())
    with pytest.raises(TokenRejected) as info:
        verifier.verify(reply.token())
    assert info.value.code == "replay"


def test_sql_replay_cache_fits(live_sts, demo, tmp_path) -> None:
    from sqlalchemy import create_engine

    from sts.store.replay import SqlReplayCache
    from sts.store.schema import metadata

    engine = create_engine(f"sqlite:///{tmp_path / 'rp.db'}")
    metadata.create_all(engine)
    verifier = make_verifier(live_sts, demo["rp"], replay_cache=SqlReplayCache(engine))
    token = issue(live_sts, demo, demo["rp"]).token()
    verifier.verify(token)
    with pytest.raises(TokenRejected, match="already used"):
        verifier.verify(token)


def test_clock_and_skew(live_sts, demo) -> None:
    token = issue(live_sts, demo, demo["rp"]).token()
    late = make_verifier(live_sts, demo["rp"], clock=lambda: utcnow() + timedelta(hours=2))
    with pytest.raises(TokenRejected) as info:
        late.verify(token)
    assert info.value.code == "expired"
    # (The STS certificate itself is checked at the verifier's clock too: stay inside its validity.)
    early = make_verifier(live_sts, demo["rp"], clock=lambda: utcnow() - timedelta(seconds=30),
                          clock_skew=timedelta(0))
    with pytest.raises(TokenRejected) as info:
        early.verify(token)
    assert info.value.code == "not-yet-valid"
    tolerant = make_verifier(live_sts, demo["rp"], clock=lambda: utcnow() - timedelta(seconds=30),
                             clock_skew=timedelta(minutes=1))
    assert tolerant.verify(token).subject == "alice"


def test_audience_list_and_normalisation(live_sts, demo) -> None:
    token = issue(live_sts, demo, demo["rp"]).token()
    verifier = make_verifier(live_sts, ["https://other.example/", "HTTPS://Service-A.example"])
    assert verifier.verify(token).subject == "alice"


def test_issuer_expected(live_sts, demo) -> None:
    token = issue(live_sts, demo, demo["rp"]).token()
    issuer = make_verifier(live_sts, demo["rp"]).verify(token).issuer
    assert make_verifier(live_sts, demo["rp"], issuer=issuer).verify(token).issuer == issuer


def test_from_federation_metadata_pinned(live_sts, demo) -> None:
    url = live_sts.base_url + "/FederationMetadata/2007-06/FederationMetadata.xml"
    document = httpx.get(url).content
    cert = sts_cert(live_sts)
    verifier = TokenVerifier.from_federation_metadata(url, metadata_certificate=cert, audience=demo["rp"],  # type: ignore[arg-type]
                                                      rp_private_key=rp_key(live_sts))
    assert verifier.sts_certificates == (cert,)
    assert verifier.verify(issue(live_sts, demo, demo["rp"]).token()).subject == "alice"
    # A document altered after signing is refused when a certificate is pinned.
    tampered = document.replace(b"SecurityTokenServiceEndpoint", b"SecurityTokenServiceEndpoinT", 1).replace(
        b"SecurityTokenServiceEndpoint>", b"SecurityTokenServiceEndpoinT>", 1)
    with pytest.raises(ValueError, match="metadata signature"):
        TokenVerifier.from_federation_metadata(tampered, metadata_certificate=cert, audience=demo["rp"])
    other, _ = _other_cert()
    with pytest.raises(ValueError, match="metadata signature"):
        TokenVerifier.from_federation_metadata(document, metadata_certificate=other, audience=demo["rp"])
    assert TokenVerifier.from_federation_metadata(document, audience=demo["rp"]).sts_certificates == (cert,)


def _other_cert() -> tuple[object, bytes]:
    from sts.tokens.crypto.keys import generate_key_and_cert

    key_pem, cert_pem = generate_key_and_cert("someone else")
    return load_certificate(cert_pem), key_pem


def test_saml11_claim_uri_rebuilt() -> None:
    assert claim_uri_11("http://schemas.xmlsoap.org/ws/2005/05/identity/claims", "name") == (
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
    assert claim_uri_11("urn:oid", "2.5.4.3") == "urn:oid:2.5.4.3"
    assert claim_uri_11("", "plain") == "plain"
