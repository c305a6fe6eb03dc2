"""Reading a service's WSDL policy (sts.client.policy) and issuing what it demands from the live STS."""

from __future__ import annotations


import pytest
from lxml import etree

from client_servers import Recorder, serve
from sts import ns
from sts.client.trust import TrustClient, UsernameCredentials
from sts.client.policy import PolicyError, read_service_policy
from sts.uris import KeyType, TokenType, TrustVersion
from paths import FIXTURES  # type: ignore[import-not-found]

WSDLS = FIXTURES / "service-wsdl"
IDENTITY = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"


def _wsdl(name: str, issuer: str = "https://sts.example/services/sts") -> bytes:
    return (WSDLS / name).read_bytes().replace(b"ISSUER", issuer.encode())


def test_sp12_policy_reference_on_the_binding() -> None:
    policy = read_service_policy(_wsdl("sp12-policy-reference.wsdl"))
    assert policy.sp_namespace == ns.SP12 and policy.trust_version is TrustVersion.WST13
    assert policy.issuer == "https://sts.example/services/sts"  # the attached policy, not the unused one
    assert policy.issuer_metadata == "https://sts.example/services/sts/mex"
    assert policy.service_endpoint == "https://service-a.example/"
    template = policy.template
    assert TokenType(template.token_type) is TokenType.SAML20 and KeyType(template.key_type) is KeyType.BEARER
    assert template.claims_dialect == "http://schemas.xmlsoap.org/ws/2005/05/identity"
    assert [(c.uri, c.optional) for c in template.claims] == [(f"{IDENTITY}/givenname", False),
                                                             (f"{IDENTITY}/surname", False)]
    assert [etree.QName(etree.fromstring(e)).localname for e in template.elements] == ["TokenType", "KeyType",
                                                                                      "Claims"]


def test_sp2005_inline_on_the_operation_input() -> None:
    policy = read_service_policy(_wsdl("sp2005-inline.wsdl"))
    assert policy.sp_namespace == ns.SP2005 and policy.trust_version is TrustVersion.WST2005
    assert policy.issuer_metadata is None and policy.service_endpoint == "https://service-a.example/legacy"
    assert policy.template.key_type == f"{ns.WST2005}/SymmetricKey" and policy.template.key_size == 256
    assert TokenType(policy.template.token_type) is TokenType.SAML11 and policy.template.claims == ()


def test_optional_claims_through_a_nested_wsp15_reference() -> None:
    policy = read_service_policy(_wsdl("sp12-optional-claims.wsdl"))
    assert [(c.uri.rsplit("/", 1)[1], c.optional) for c in policy.template.claims] == [
        ("givenname", False), ("emailaddress", True), ("shoe-size", True)]


def test_a_wsdl_without_issued_token_is_refused(live_sts) -> None:
    import httpx

    with pytest.raises(PolicyError, match="IssuedToken"):
        read_service_policy(httpx.get(live_sts.sts_url + "?wsdl").content)
    with pytest.raises(PolicyError, match="WSDL"):
        read_service_policy(b"<notawsdl/>")


@pytest.mark.parametrize("name,version", [("sp12-policy-reference.wsdl", TrustVersion.WST13),
                                          ("sp12-optional-claims.wsdl", TrustVersion.WST13),
                                          ("sp2005-inline.wsdl", TrustVersion.WST2005)])
def test_issue_for_service_served_over_http(live_sts, demo, name, version) -> None:
    """The service's WSDL from a loopback server; its issuer is the live STS (asked through its own WSDL)."""
    credentials = UsernameCredentials(demo["user"], demo["password"])
    client = TrustClient(f"{live_sts.sts_url}?wsdl", credentials=credentials, version=TrustVersion.WST2005)
    sent: list[bytes] = []
    post_xml = client.transport.post_xml

    def spy(address, envelope, headers):
        sent.append(etree.tostring(envelope))
        return post_xml(address, envelope, headers)

    client.transport.post_xml = spy
    with serve(Recorder(get_body=_wsdl(name, live_sts.sts_url))) as service:
        applies_to = None if name == "sp12-policy-reference.wsdl" else demo["rp"]
        result = client.issue_for_service(service.url + "/service?wsdl", applies_to=applies_to)
    assert result.version is version and result.applies_to == demo["rp"]
    body = etree.fromstring(sent[-1]).find(f".//{{{version.ns}}}RequestSecurityToken")
    policy = read_service_policy(_wsdl(name))
    assert body.findtext(f"{{{version.ns}}}TokenType") == policy.template.token_type
    secondary = body.find(f"{{{ns.WST13}}}SecondaryParameters")
    if version is TrustVersion.WST13:
        assert len(secondary) == len(policy.template.elements)
        assert body.find(f"{{{ns.WST13}}}Claims") is not None
    else:
        assert secondary is None and result.proof_key is not None and len(result.proof_key) == 32
