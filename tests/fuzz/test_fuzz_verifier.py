"""Fuzz target 4: the relying party's verifier (``TokenVerifier.verify``) on mutated genuine tokens.

Properties: only ``TokenRejected`` escapes, and never from the verifier's catch-all (whose reason names the
exception class: "malformed token (KeyError)"); and a token that is accepted says exactly what the STS signed
(subject, ID, claims): a mutation may be harmless, never believed.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from assertion_content import make_content
from fuzzing import fuzz_settings, tally
from mutations import mutate
from sts import ns
from sts.model import Claim
from sts.rp.verifier import TokenRejected, TokenVerifier, VerifiedToken
from sts.tokens.crypto.encryption import encrypt_element
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from sts.tokens.crypto.signing import XmlSigner
from sts.tokens.saml import saml11, saml20

NOW = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)
AUDIENCE = "https://rp.example/"
ISSUER = "https://sts.example/"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
STS_KEY = SigningKey.from_pem(*generate_key_and_cert("sts"))
RP_KEY = SigningKey.from_pem(*generate_key_and_cert("rp"))
VERIFIER = TokenVerifier([STS_KEY.certificate], rp_private_key=RP_KEY.private_key, audience=AUDIENCE,
                         issuer=ISSUER, clock=lambda: NOW)
CATCH_ALL = re.compile(r"malformed token \(\w+\)$")


def _content(version: int) -> object:
    return make_content(now=NOW - timedelta(minutes=1), assertion_id=f"_fuzz{version}", issuer=ISSUER,
                        subject_name="alice", audience=AUDIENCE, claims=(Claim(GIVENNAME, ("Alice",)),))


def _saml20() -> etree._Element:
    content = _content(20)
    assertion = saml20.build_assertion(content)  # type: ignore[arg-type]
    XmlSigner(STS_KEY).sign(assertion, "_fuzz20", after=saml20.issuer_of(assertion))
    return assertion


def _saml11() -> etree._Element:
    assertion = saml11.build_assertion(_content(11))  # type: ignore[arg-type]
    XmlSigner(STS_KEY).sign(assertion, "_fuzz11")
    return assertion


def _in_rstr(token: etree._Element) -> etree._Element:
    rstr = etree.Element(f"{{{ns.WST13}}}RequestSecurityTokenResponse")
    etree.SubElement(rstr, f"{{{ns.WST13}}}RequestedSecurityToken").append(token)
    return rstr


def _encrypted() -> etree._Element:
    wrapper = etree.Element(f"{{{ns.SAML2}}}EncryptedAssertion")
    wrapper.append(encrypt_element(_saml20(), RP_KEY.certificate))
    return wrapper


SEEDS = [etree.tostring(e) for e in (_saml20(), _saml11(), _in_rstr(_saml20()), _encrypted(),
                                     _in_rstr(_encrypted()))]
GENUINE = {token.token_id: token for token in (VERIFIER.verify(seed) for seed in SEEDS[:2])}


def check(blob: bytes, target: str = "verifier (mutated)") -> None:
    started = time.monotonic()
    try:
        verified = VERIFIER.verify(blob)
    except TokenRejected as problem:
        tally(target, problem.code, started)
        assert not CATCH_ALL.search(problem.reason), f"unhandled exception in the verifier: {problem.reason}"
        return
    tally(target, "accepted", started)
    _assert_as_signed(verified)


def _assert_as_signed(verified: VerifiedToken) -> None:
    genuine = GENUINE.get(verified.token_id)
    assert genuine is not None, f"accepted a token ID the STS never signed: {verified.token_id}"
    assert (verified.subject, verified.issuer, dict(verified.claims)) == \
        (genuine.subject, genuine.issuer, dict(genuine.claims)), "accepted a token that says something else"


def test_the_seeds_verify() -> None:
    for seed in SEEDS:
        check(seed)
        assert VERIFIER.verify(seed).subject == "alice"


@fuzz_settings
@given(st.data())
def test_verifier(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS), label="seed")
    check(mutate(data, seed))


@fuzz_settings
@given(st.binary(max_size=512))
def test_verifier_random_bytes(blob: bytes) -> None:
    check(blob, "verifier (random bytes)")
