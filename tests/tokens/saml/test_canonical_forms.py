"""The assertions are written in their exclusive-c14n form: for every shape (bearer, the three holder-of-key
proofs, delegation, extra audiences, hostile claim values) the bytes sent canonicalise to exactly the bytes the
digest covers, and a token signed from those bytes is the token signed the tree way."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from assertion_content import NOW, make_content
from sts.model import AssertionContent, Claim, Delegate, ProofKey
from sts.tokens.crypto.canonical import SignableParts
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from sts.tokens.crypto.proof import proof_key_info
from sts.tokens.crypto.signing import XmlSigner, c14n
from sts.tokens.saml import saml11, saml20


HOSTILE = "a&b<c>d\"e'f\tg\nh\ri ]]> ünï 𝄞"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {"rsa": SigningKey.from_pem(*generate_key_and_cert("sts.test")),
            "requester": SigningKey.from_pem(*generate_key_and_cert("requester.test")),
            "rp": SigningKey.from_pem(*generate_key_and_cert("rp.test"))}


def _shapes(keys: dict[str, SigningKey]) -> dict[str, tuple[AssertionContent, etree._Element | None]]:
    base = make_content(now=NOW, subject_name="alice@test", authn_age=timedelta(seconds=1))
    numbers = keys["requester"].certificate.public_key().public_numbers()  # type: ignore[union-attr]
    proofs = {"symmetric": ProofKey(symmetric_key=bytes(range(32))),
              "certificate": ProofKey(certificate_der=keys["requester"].cert_der),
              "keyvalue": ProofKey(rsa_modulus=numbers.n, rsa_exponent=numbers.e)}
    shapes: dict[str, tuple[AssertionContent, etree._Element | None]] = {
        "bearer": (base, None),
        "hostile": (dataclasses.replace(
            base, subject_name=HOSTILE, issuer=HOSTILE, audience="https://rp.test/?a=1&b=<2>",
            claims=(Claim("urn:x:" + HOSTILE, (HOSTILE, "", "plain")), Claim("urn:empty", ()))), None),
        "audiences": (dataclasses.replace(base, additional_audiences=("urn:b", base.audience, "urn:b", "urn:c&d")),
                      None),
        "delegation": (dataclasses.replace(base, delegates=(Delegate("svc&1", NOW), Delegate("svc<2>", NOW))), None),
        "no claims": (dataclasses.replace(base, claims=()), None),
    }
    for name, proof in proofs.items():
        recipient = keys["rp"].certificate if proof.symmetric_key else None
        shapes[f"hok-{name}"] = (dataclasses.replace(base, proof_key=proof), proof_key_info(proof, recipient))
    return shapes


SHAPES = ["bearer", "hostile", "audiences", "delegation", "no claims", "hok-symmetric", "hok-certificate",
          "hok-keyvalue"]


def _canonical_of_sent(parts: SignableParts, signature: bytes = b"") -> bytes:
    return c14n(etree.fromstring(parts.signed(signature)))


@pytest.mark.parametrize("module", [saml20, saml11], ids=["saml20", "saml11"])
@pytest.mark.parametrize("shape", SHAPES)
def test_the_bytes_sent_canonicalise_to_the_bytes_the_digest_covers(module, shape: str, keys) -> None:
    content, key_info = _shapes(keys)[shape]
    parts = module.canonical_assertion(content, key_info)
    assert _canonical_of_sent(parts) == parts.head + parts.tail
    signature = XmlSigner(keys["rsa"]).signature_for(parts, content.assertion_id)
    # With the Signature in: still canonical, so the token hash is the hash of what is sent (less extra roots).
    assert _canonical_of_sent(parts, signature) == parts.head + signature + parts.tail


@pytest.mark.parametrize("module", [saml20, saml11], ids=["saml20", "saml11"])
@pytest.mark.parametrize("shape", SHAPES)
def test_signing_the_bytes_gives_the_token_signing_the_tree_gives(module, shape: str, keys) -> None:
    """RSA PKCS#1 v1.5 is deterministic: the two ways must agree to the last byte of their canonical forms."""
    content, key_info = _shapes(keys)[shape]
    signer = XmlSigner(keys["rsa"])
    parts = module.canonical_assertion(content, key_info)
    from_bytes = etree.fromstring(parts.signed(signer.signature_for(parts, content.assertion_id)))
    tree = module.build_assertion(content, key_info)
    signer.sign(tree, content.assertion_id, after=saml20.issuer_of(tree) if module is saml20 else None)
    assert c14n(from_bytes) == c14n(tree)


def test_a_delegated_assertion_declares_the_prefix_its_condition_type_names(keys) -> None:
    content, _ = _shapes(keys)["delegation"]
    parts = saml20.canonical_assertion(content)
    assertion = etree.fromstring(parts.signed(b""))
    condition = assertion.find("{urn:oasis:names:tc:SAML:2.0:assertion}Conditions")[0]
    assert condition.nsmap["del"] == "urn:oasis:names:tc:SAML:2.0:conditions:delegation"
    assert parts.sent_head != parts.head  # the declaration is outside what the digest covers


@pytest.mark.parametrize("field", ["subject_name", "issuer", "audience"])
def test_a_value_xml_cannot_carry_is_refused_not_written(field: str, keys) -> None:
    content = dataclasses.replace(make_content(now=NOW), **{field: "alice\x00"})
    with pytest.raises(ValueError, match="XML compatible"):
        saml20.canonical_assertion(content)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12), min_size=1, max_size=4))
def test_any_claim_values_keep_the_form_canonical(values: list[str]) -> None:
    content = make_content(now=NOW, claims=(Claim("urn:x", tuple(values)),), subject_name=values[0] or "x")
    parts = saml20.canonical_assertion(content)
    assert _canonical_of_sent(parts) == parts.head + parts.tail
