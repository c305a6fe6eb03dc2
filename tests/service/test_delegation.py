"""ActAs / OnBehalfOf over real HTTP: tokens for another identity, only for allowed delegates, chain recorded."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from lxml import etree

from live import LiveServer, start_server
from peers import signxml_verify
from sts import ns
from sts.config import load_settings
from interop.xsd import validator
from sts.model import RelyingParty
from sts.uris import TokenType, TrustVersion
from sts.runtime import open_stores
from trust_client import Reply, post, rst_envelope

RP = "https://delegation.example/"
BACKEND_RP = "https://backend.example/"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"


@pytest.fixture(scope="module")
def sts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from sts.home import init_home

    home = tmp_path_factory.mktemp("delegation-home")
    init_home(home)
    stores = open_stores(load_settings(home))
    for name in ("portal", "backend", "mallory"):
        stores.users.add(name, f"{name}-pw", [(GIVENNAME, name.title())])
    for endpoint in (RP, BACKEND_RP):
        stores.relying_parties.add(RelyingParty(endpoint=endpoint, encrypt=False))
    live, server, thread = start_server(home, delegates=("portal", "backend"))
    yield live
    server.should_exit = True
    thread.join(timeout=10)


def _issue(live, user, password, applies_to=RP, **options) -> Reply:
    body = rst_envelope(user=user, password=password, applies_to=applies_to, digest=True,
                        claims=((GIVENNAME, False),), **options)
    return post(live.sts_url, body)


def _username_token(name: str, password: str | None = None) -> etree._Element:
    token = etree.Element(f"{{{ns.WSSE}}}UsernameToken", nsmap={"wsse": ns.WSSE})
    etree.SubElement(token, f"{{{ns.WSSE}}}Username").text = name
    if password is not None:
        etree.SubElement(token, f"{{{ns.WSSE}}}Password").text = password
    return token


def _delegates(assertion: etree._Element) -> list[str]:
    return [d.findtext(f"{{{ns.SAML2}}}NameID") for d in assertion.iter(f"{{{ns.DELEGATION}}}Delegate")]


def test_act_as_a_token_of_ours(sts) -> None:
    alice_token = _issue(sts, "alice", "wonderland").token()
    reply = _issue(sts, "portal", "portal-pw", applies_to=BACKEND_RP, targets={"ActAs": copy.deepcopy(alice_token)})
    assert reply.status == 200, reply.fault_reason
    token = reply.token()
    assert token.findtext(f".//{{{ns.SAML2}}}Subject/{{{ns.SAML2}}}NameID") == "alice"
    assert "Alice" in etree.tostring(token).decode()  # the subject's claims, not the delegate's
    assert _delegates(token) == ["portal"]
    condition = token.find(f".//{{{ns.SAML2}}}Condition")
    assert condition.get(f"{{{ns.XSI}}}type") == "del:DelegationRestrictionType"
    validator().validate(token)
    signxml_verify(token, load_settings(sts.home).signing_cert_path.read_bytes())
    record = open_stores(load_settings(sts.home)).tokens.get(token.get("ID"))
    assert (record.requester, record.details["identity"], record.details["delegation"]) == ("portal", "alice", "ActAs")


def test_delegation_chain_grows(sts) -> None:
    alice_token = _issue(sts, "alice", "wonderland").token()
    first = _issue(sts, "portal", "portal-pw", targets={"ActAs": alice_token}).token()
    second = _issue(sts, "backend", "backend-pw", applies_to=BACKEND_RP, targets={"ActAs": first})
    assert second.status == 200, second.fault_reason
    assert _delegates(second.token()) == ["portal", "backend"]


def test_act_as_in_the_200512_namespace(sts) -> None:
    alice_id = _issue(sts, "alice", "wonderland").findtext(".//wsse:KeyIdentifier")
    act_as = etree.Element(f"{{{ns.WST13}}}ActAs")
    reference = etree.SubElement(act_as, f"{{{ns.WSSE}}}SecurityTokenReference")
    etree.SubElement(reference, f"{{{ns.WSSE}}}KeyIdentifier").text = alice_id
    reply = _issue(sts, "portal", "portal-pw", extra=(act_as,))
    assert reply.status == 200, reply.fault_reason
    assert reply.token().findtext(f".//{{{ns.SAML2}}}Subject/{{{ns.SAML2}}}NameID") == "alice"


@pytest.mark.parametrize("version", list(TrustVersion))
def test_on_behalf_of_a_username_token(sts, version) -> None:
    reply = _issue(sts, "portal", "portal-pw", version=version,
                   targets={"OnBehalfOf": _username_token("alice", "wonderland")})
    assert reply.status == 200, reply.fault_reason
    assert reply.token().findtext(f".//{{{ns.SAML2}}}Subject/{{{ns.SAML2}}}NameID") == "alice"


def test_on_behalf_of_a_name_the_delegate_vouches_for(sts) -> None:
    reply = _issue(sts, "portal", "portal-pw", targets={"OnBehalfOf": _username_token("alice")})
    assert reply.status == 200, reply.fault_reason
    assert _delegates(reply.token()) == ["portal"]


def test_saml11_records_the_chain_in_the_store(sts) -> None:
    reply = _issue(sts, "portal", "portal-pw", token_type_uri=TokenType.SAML11.value,
                   targets={"OnBehalfOf": _username_token("alice", "wonderland")})
    assert reply.status == 200
    token = reply.token()
    record = open_stores(load_settings(sts.home)).tokens.get(token.get("AssertionID"))
    assert record.details["delegates"][0]["name"] == "portal"


def test_requester_not_allowed_to_delegate(sts) -> None:
    reply = _issue(sts, "mallory", "mallory-pw", targets={"OnBehalfOf": _username_token("alice")})
    assert reply.fault_code == (ns.WST13, "RequestFailed")
    assert reply.fault_reason.endswith("OnBehalfOf")


def test_wrong_delegated_password(sts) -> None:
    reply = _issue(sts, "portal", "portal-pw", targets={"OnBehalfOf": _username_token("alice", "guess")})
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


def test_unknown_delegated_identity(sts) -> None:
    reply = _issue(sts, "portal", "portal-pw", targets={"OnBehalfOf": _username_token("nobody")})
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


def test_cancelled_or_tampered_token_cannot_be_acted_as(sts) -> None:
    issued = _issue(sts, "alice", "wonderland")
    token = issued.token()
    tampered = copy.deepcopy(token)
    tampered.find(f".//{{{ns.SAML2}}}NameID").text = "portal"
    reply = _issue(sts, "portal", "portal-pw", targets={"ActAs": tampered})
    assert reply.fault_code == (ns.WST13, "InvalidSecurityToken")
    token_id = issued.findtext(".//wsse:KeyIdentifier")
    cancel = post(sts.sts_url, rst_envelope(user="alice", password="wonderland", digest=True, applies_to=None,
                                            request_type="Cancel", targets={"CancelTarget": token_id}))
    assert cancel.status == 200
    reply = _issue(sts, "portal", "portal-pw", targets={"ActAs": token})
    assert reply.fault_code == (ns.WST13, "InvalidSecurityToken")


def test_act_as_and_on_behalf_of_together(sts) -> None:
    reply = _issue(sts, "portal", "portal-pw", targets={"ActAs": _username_token("alice"),
                                                       "OnBehalfOf": _username_token("alice")})
    assert reply.fault_code == (ns.WST13, "BadRequest")


def test_renewal_keeps_the_delegation(sts) -> None:
    reply = _issue(sts, "portal", "portal-pw", targets={"OnBehalfOf": _username_token("alice")})
    token_id = reply.findtext(".//wsse:KeyIdentifier")
    renewed = post(sts.sts_url, rst_envelope(user="portal", password="portal-pw", digest=True, applies_to=None,
                                             request_type="Renew", targets={"RenewTarget": token_id}))
    assert renewed.status == 200, renewed.fault_reason
    token = renewed.token()
    assert token.findtext(f".//{{{ns.SAML2}}}Subject/{{{ns.SAML2}}}NameID") == "alice"
    assert _delegates(token) == ["portal"]




def test_a_wrapped_or_doubled_act_as_token_is_refused(sts) -> None:
    """The one verification path: the ActAs element must itself be the signed token, the only one in the RST."""
    genuine = _issue(sts, "alice", "wonderland").token()
    wrapper = copy.deepcopy(genuine)
    wrapper.remove(wrapper.find(f"{{{ns.DS}}}Signature"))
    wrapper.set("ID", "_wrapper")
    wrapper.append(copy.deepcopy(genuine))  # the genuine signed one inside an attacker's Assertion
    reply = _issue(sts, "portal", "portal-pw", targets={"ActAs": wrapper})
    assert reply.fault_code == (ns.WST13, "InvalidSecurityToken")
    moved = copy.deepcopy(wrapper)
    moved.remove(moved[-1])
    moved.insert(1, copy.deepcopy(genuine.find(f"{{{ns.DS}}}Signature")))  # its Signature names the genuine ID
    reply = _issue(sts, "portal", "portal-pw", targets={"ActAs": moved})
    assert reply.fault_code == (ns.WST13, "InvalidSecurityToken")
    reply = _issue(sts, "portal", "portal-pw", applies_to=BACKEND_RP, targets={"ActAs": copy.deepcopy(genuine)})
    assert reply.status == 200, reply.fault_reason  # the genuine token still works right after
