"""Validate, Renew and Cancel of tokens that are not the requester's to use: another user's, forged, another STS's,
and genuine tokens wrapped by an attacker (XML signature wrapping of the Validate target).

Validate never faults over a bad token: it answers Status invalid. Renew and Cancel refuse: a token that does not
resolve (forged, foreign, wrapped) gets wst:InvalidSecurityToken, another user's token UnableToRenew (Renew) or
RequestFailed (Cancel). After each refusal the genuine token is still valid: nothing was renewed or cancelled.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta

import pytest
from lxml import etree

from assertion_content import make_content
from attack_target import Target
from sts import ns
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, random_id
from sts.tokens.crypto.signing import XmlSigner
from sts.tokens.saml import saml20
from sts.uris import TrustVersion
from sts.xmltime import utcnow
from trust_client import Reply

WST = ns.WST13
VERSION = TrustVersion.WST13
SAML2 = f"{{{ns.SAML2}}}"
DS = f"{{{ns.DS}}}"
INVALID_TOKEN = (WST, "InvalidSecurityToken")


def _plain(target: Target, **options: object) -> etree._Element:
    token = target.token(**options)
    if etree.QName(token).localname != "Assertion":
        pytest.skip("the target relying party gets encrypted tokens: set STS_APPLIES_TO to one without encryption")
    return token


@pytest.fixture(scope="module")
def genuine(target: Target) -> etree._Element:
    """One genuine token of the target user, shared by the cases that only read it (never renewed/cancelled)."""
    return _plain(target)


def _request(target: Target, request_type: str, element: etree._Element, **options: object) -> Reply:
    local = f"{request_type}Target"
    if request_type == "Validate":
        options["token_type_uri"] = VERSION.uri("RSTR/Status")
    return target.post(target.envelope(request_type=request_type, applies_to=None, digest=True,
                                       targets={local: copy.deepcopy(element)}, **options))  # type: ignore[arg-type]


def _status(reply: Reply) -> str:
    assert reply.status == 200, f"{reply.fault_code} {reply.fault_reason}"
    code: str | None = reply.root.findtext(f".//{{{WST}}}Status/{{{WST}}}Code")
    assert code is not None
    return code.rsplit("/", 1)[1]


def _assert_still_valid(target: Target, token: etree._Element) -> None:
    assert _status(_request(target, "Validate", token)) == "valid"


def _unsigned_copy(token: etree._Element, subject: str = "mallory") -> etree._Element:
    evil = copy.deepcopy(token)
    evil.remove(evil.find(f"{DS}Signature"))
    name_id = evil.find(f".//{SAML2}NameID")
    assert name_id is not None
    name_id.text = subject
    return evil


def _foreign(token: etree._Element, *, same_id: bool) -> etree._Element:
    """The same claims signed by another STS's key (KeyInfo carrying its own certificate)."""
    key = SigningKey.from_pem(*generate_key_and_cert("sts signing"))
    now = utcnow()
    content = make_content(now=now, lifetime=timedelta(hours=1),
                           assertion_id=token.get("ID") if same_id else random_id(),
                           issuer=token.findtext(f"{SAML2}Issuer"), subject_name="mallory",
                           audience=token.findtext(f".//{SAML2}Audience"))
    assertion = saml20.build_assertion(content)
    XmlSigner(key).sign(assertion, content.assertion_id, after=saml20.issuer_of(assertion))
    return assertion


def _forged(token: etree._Element) -> etree._Element:
    """The genuine token, signature kept, subject changed."""
    forged = copy.deepcopy(token)
    forged.find(f".//{SAML2}NameID").text = "mallory"
    return forged


# --- another user's token -------------------------------------------------------------------------------------------


def test_another_users_token(target: Target) -> None:
    if target.second_user is None:
        pytest.skip("needs a second account: set STS_USER2 and STS_PASSWORD2")
    bob, bob_password = target.second_user
    theirs = _plain(target, user=bob, password=bob_password)
    renew = _request(target, "Renew", theirs)
    assert renew.fault_code == (WST, "UnableToRenew"), renew.fault_reason
    cancel = _request(target, "Cancel", theirs)
    assert cancel.fault_code == (WST, "RequestFailed"), cancel.fault_reason
    # Validate answers the status of a genuine token whoever asks (it reveals no more than the token itself).
    assert _status(_request(target, "Validate", theirs)) == "valid"
    # Nothing happened to it: its owner still sees it valid and can cancel it.
    assert _status(_request(target, "Validate", theirs, user=bob, password=bob_password)) == "valid"
    assert _request(target, "Cancel", theirs, user=bob, password=bob_password).status == 200


# --- forged and foreign tokens --------------------------------------------------------------------------------------

ALTERED: dict[str, Callable[[etree._Element], etree._Element]] = {
    "forged-subject": _forged,
    "another-sts": lambda t: _foreign(t, same_id=False),
    "another-sts-with-the-genuine-id": lambda t: _foreign(t, same_id=True),
}


@pytest.mark.parametrize("name", list(ALTERED))
def test_altered_token_validate(target: Target, genuine: etree._Element, name: str) -> None:
    assert _status(_request(target, "Validate", ALTERED[name](genuine))) == "invalid"
    _assert_still_valid(target, genuine)


@pytest.mark.parametrize("name", list(ALTERED))
@pytest.mark.parametrize("request_type", ["Renew", "Cancel"])
def test_altered_token_renew_or_cancel(target: Target, genuine: etree._Element, name: str, request_type: str) -> None:
    reply = _request(target, request_type, ALTERED[name](genuine))
    assert reply.fault_code == INVALID_TOKEN, f"{reply.status} {reply.fault_code} {reply.fault_reason}"
    _assert_still_valid(target, genuine)


# --- wrapped tokens (XSW of the target) -----------------------------------------------------------------------------


def _in_advice_of_evil_root(token: etree._Element) -> etree._Element:
    evil = _unsigned_copy(token)
    etree.SubElement(evil, f"{SAML2}Advice").append(copy.deepcopy(token))
    return evil


def _evil_root_with_the_signature_and_id(token: etree._Element) -> etree._Element:
    evil = _in_advice_of_evil_root(token)
    evil.insert(1, copy.deepcopy(token.find(f"{DS}Signature")))
    return evil


def _evil_root_with_another_id(token: etree._Element) -> etree._Element:
    evil = _in_advice_of_evil_root(token)
    evil.set("ID", random_id())
    return evil


def _in_an_attacker_element(token: etree._Element) -> etree._Element:
    wrapper = etree.Element("{urn:attack}Wrapper")
    wrapper.append(copy.deepcopy(token))
    return wrapper


def _beside_an_unsigned_assertion(token: etree._Element) -> etree._Element:
    wrapper = etree.Element("{urn:attack}Wrapper")
    wrapper.extend([_unsigned_copy(token), copy.deepcopy(token)])
    return wrapper


def _signed_one_first_then_an_unsigned_one(token: etree._Element) -> etree._Element:
    wrapper = etree.Element("{urn:attack}Wrapper")
    wrapper.extend([copy.deepcopy(token), _unsigned_copy(token)])
    return wrapper


def _in_the_signatures_object(token: etree._Element) -> etree._Element:
    evil = _unsigned_copy(token)
    signature = copy.deepcopy(token.find(f"{DS}Signature"))
    assert signature is not None
    etree.SubElement(signature, f"{DS}Object").append(copy.deepcopy(token))
    evil.insert(1, signature)
    return evil


WRAPPED: dict[str, Callable[[etree._Element], etree._Element]] = {
    "in-the-advice-of-an-evil-assertion": _in_advice_of_evil_root,
    "evil-root-with-the-signature-and-the-id": _evil_root_with_the_signature_and_id,
    "evil-root-with-another-id": _evil_root_with_another_id,
    "in-an-attacker-element": _in_an_attacker_element,
    "beside-an-unsigned-assertion": _beside_an_unsigned_assertion,
    "signed-first-then-an-unsigned-one": _signed_one_first_then_an_unsigned_one,
    "in-the-signatures-ds-object": _in_the_signatures_object,
}


@pytest.mark.parametrize("name", list(WRAPPED))
def test_wrapped_token_validate(target: Target, genuine: etree._Element, name: str) -> None:
    reply = _request(target, "Validate", WRAPPED[name](genuine))
    assert _status(reply) == "invalid", f"{name}: the wrapped token was reported valid"
    _assert_still_valid(target, genuine)


@pytest.mark.parametrize("name", ["in-the-advice-of-an-evil-assertion", "beside-an-unsigned-assertion"])
@pytest.mark.parametrize("request_type", ["Renew", "Cancel"])
def test_wrapped_token_renew_or_cancel(target: Target, genuine: etree._Element, name: str, request_type: str) -> None:
    reply = _request(target, request_type, WRAPPED[name](genuine))
    assert reply.fault_code == INVALID_TOKEN, f"{reply.status} {reply.fault_code} {reply.fault_reason}"
    _assert_still_valid(target, genuine)


def test_two_tokens_in_one_target(target: Target, genuine: etree._Element) -> None:
    """A target holds one token: two children are a malformed request, not a choice for the STS to make."""
    body = etree.fromstring(target.envelope(request_type="Validate", applies_to=None, digest=True,
                                            token_type_uri=VERSION.uri("RSTR/Status"),
                                            targets={"ValidateTarget": copy.deepcopy(genuine)}))
    validate_target = body.find(f".//{{{WST}}}ValidateTarget")
    assert validate_target is not None
    validate_target.insert(0, _unsigned_copy(genuine))
    reply = target.post(etree.tostring(body))
    assert reply.fault_code == (WST, "InvalidRequest"), reply.fault_reason
