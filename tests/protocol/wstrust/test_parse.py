from datetime import datetime, timezone

import pytest
from lxml import etree

from sts import ns
from sts.errors import BadRequest, InvalidRequest
from sts.model import EncryptedSecret
from sts.uris import DigestAlgorithm, KeyTransport, KeyType, RequestType, TokenType, TrustVersion
from sts.protocol.wstrust.parse import parse_rst
from sts.protocol.wstrust.render import render_rst
from sts.protocol.xmlsafe import parse
from paths import FIXTURES  # type: ignore[import-not-found]

WST13, WST05 = ns.WST13, ns.WST2005


def _rst(body: str, wst: str = WST13, request_type: str = "Issue") -> etree._Element:
    return parse(
        f"<wst:RequestSecurityToken xmlns:wst='{wst}' xmlns:wsa='{ns.WSA}' xmlns:wsu='{ns.WSU}' Context='ctx-1'>"
        f"<wst:RequestType>{wst}/{request_type}</wst:RequestType>{body}</wst:RequestSecurityToken>".encode()
    )


def _applies(address: str, wsp: str = ns.WSP12, wsa: str = ns.WSA) -> str:
    return (f"<wsp:AppliesTo xmlns:wsp='{wsp}'><a:EndpointReference xmlns:a='{wsa}'><a:Address>{address}"
            f"</a:Address></a:EndpointReference></wsp:AppliesTo>")


@pytest.mark.parametrize("wst,version", [(WST13, TrustVersion.WST13), (WST05, TrustVersion.WST2005)])
def test_minimal(wst: str, version: TrustVersion) -> None:
    rst = parse_rst(_rst(_applies("https://rp/"), wst))
    assert rst.version is version
    assert rst.request_type is RequestType.ISSUE
    assert rst.applies_to == "https://rp/"
    assert rst.context == "ctx-1"
    assert rst.token_type is None


@pytest.mark.parametrize("wsp", [ns.WSP12, ns.WSP15, ns.WSP2006])
@pytest.mark.parametrize("wsa", [ns.WSA, ns.WSA2004])
def test_applies_to_namespaces(wsp: str, wsa: str) -> None:
    rst = parse_rst(_rst(_applies("urn:federation:MicrosoftOnline", wsp, wsa)))
    assert rst.applies_to == "urn:federation:MicrosoftOnline"
    assert rst.applies_to_ns == wsp


def test_applies_to_wsp_uri() -> None:
    body = f"<wsp:AppliesTo xmlns:wsp='{ns.WSP15}'><wsp:URI>https://rp/x</wsp:URI></wsp:AppliesTo>"
    assert parse_rst(_rst(body)).applies_to == "https://rp/x"


@pytest.mark.parametrize("uri,expected", [
    ("urn:oasis:names:tc:SAML:1.0:assertion", TokenType.SAML11),
    ("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1", TokenType.SAML11),
    ("urn:oasis:names:tc:SAML:2.0:assertion", TokenType.SAML20),
    ("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0", TokenType.SAML20),
])
def test_token_types(uri: str, expected: TokenType) -> None:
    rst = parse_rst(_rst(f"<wst:TokenType>{uri}</wst:TokenType>"))
    assert rst.token_type is expected
    assert rst.token_type_uri == uri


def test_unknown_token_type_is_bad_request() -> None:
    with pytest.raises(BadRequest) as info:
        parse_rst(_rst("<wst:TokenType>urn:ietf:params:oauth:token-type:jwt</wst:TokenType>"))
    assert "jwt" in info.value.public_reason


@pytest.mark.parametrize("uri", [
    "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer",
    "http://docs.oasis-open.org/wssx/wstrust/200512/Bearer",
    "http://docs.oasis-open.org/ws-sx/wstrust/200512/Bearer",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",
])
def test_bearer_spellings(uri: str) -> None:
    assert parse_rst(_rst(f"<wst:KeyType>{uri}</wst:KeyType>")).key_type is KeyType.BEARER


def test_lifetime() -> None:
    body = ("<wst:Lifetime><wsu:Created>2026-01-01T00:00:00Z</wsu:Created>"
            "<wsu:Expires>2026-01-01T01:00:00.123456+00:00</wsu:Expires></wst:Lifetime>")
    life = parse_rst(_rst(body)).lifetime
    assert life.created == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert life.expires == datetime(2026, 1, 1, 1, 0, 0, 123456, tzinfo=timezone.utc)


def test_malformed_lifetime() -> None:
    with pytest.raises(InvalidRequest):
        parse_rst(_rst("<wst:Lifetime><wsu:Created>yesterday</wsu:Created></wst:Lifetime>"))


@pytest.mark.parametrize("dialect_attr", ["Dialect", "wst:Dialect"])
def test_identity_claims_with_optional(dialect_attr: str) -> None:
    body = (f"<wst:Claims {dialect_attr}='{ns.IDENTITY}' xmlns:i='{ns.IDENTITY}'>"
            "<i:ClaimType Uri='urn:c:a'/><i:ClaimType Uri='urn:c:b' Optional='true'/></wst:Claims>")
    rst = parse_rst(_rst(body))
    assert rst.claims_dialect == ns.IDENTITY
    assert [(c.uri, c.optional) for c in rst.claims] == [("urn:c:a", False), ("urn:c:b", True)]


def test_auth_dialect_with_value() -> None:
    body = (f"<wst:Claims Dialect='{ns.AUTH}' xmlns:auth='{ns.AUTH}'><auth:ClaimType Uri='urn:role'>"
            "<auth:Value>admin</auth:Value></auth:ClaimType></wst:Claims>")
    (claim,) = parse_rst(_rst(body)).claims
    assert (claim.uri, claim.value) == ("urn:role", "admin")


def test_wso2_dialect() -> None:
    body = (f"<wst:Claims Dialect='http://wso2.org/claims' xmlns:i='{ns.IDENTITY}'>"
            "<i:ClaimType Uri='http://wso2.org/claims/givenname'/></wst:Claims>")
    rst = parse_rst(_rst(body))
    assert rst.claims_dialect == "http://wso2.org/claims"
    assert rst.claims[0].uri == "http://wso2.org/claims/givenname"


def test_secondary_parameters_fill_gaps_only() -> None:
    body = ("<wst:TokenType>urn:oasis:names:tc:SAML:1.0:assertion</wst:TokenType><wst:SecondaryParameters>"
            "<wst:TokenType>urn:oasis:names:tc:SAML:2.0:assertion</wst:TokenType>"
            f"<wst:Claims Dialect='{ns.IDENTITY}' xmlns:i='{ns.IDENTITY}'><i:ClaimType Uri='urn:c'/></wst:Claims>"
            "</wst:SecondaryParameters>")
    rst = parse_rst(_rst(body))
    assert rst.token_type is TokenType.SAML11
    assert rst.claims[0].uri == "urn:c"


@pytest.mark.parametrize("element", ["DelegateTo", "Participants", "Encryption", "ProofEncryption"])
def test_unsupported_elements_are_bad_request(element: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_rst(_rst(f"<wst:{element}/>"))
    assert info.value.detail == element


@pytest.mark.parametrize("element", ["Forwardable", "Delegatable"])
def test_false_only_elements(element: str) -> None:
    assert parse_rst(_rst(f"<wst:{element}>false</wst:{element}>")).request_type is RequestType.ISSUE
    with pytest.raises(BadRequest):
        parse_rst(_rst(f"<wst:{element}>true</wst:{element}>"))


@pytest.mark.parametrize("wrapper", ["RenewTarget", "CancelTarget", "ValidateTarget", "OnBehalfOf", "ActAs"])
def test_targets_by_reference(wrapper: str) -> None:
    body = (f"<wst:{wrapper}><wsse:SecurityTokenReference xmlns:wsse='{ns.WSSE}'>"
            f"<wsse:KeyIdentifier ValueType='x'>_abc</wsse:KeyIdentifier></wsse:SecurityTokenReference></wst:{wrapper}>")
    rst = parse_rst(_rst(body))
    field = {"RenewTarget": "renew_target", "CancelTarget": "cancel_target", "ValidateTarget": "validate_target",
             "OnBehalfOf": "on_behalf_of", "ActAs": "act_as"}[wrapper]
    assert getattr(rst, field).reference == "_abc"


def test_target_by_reference_uri() -> None:
    body = (f"<wst:CancelTarget><wsse:SecurityTokenReference xmlns:wsse='{ns.WSSE}'><wsse:Reference URI='#_x'/>"
            "</wsse:SecurityTokenReference></wst:CancelTarget>")
    assert parse_rst(_rst(body)).cancel_target.reference == "_x"


def test_inline_target_is_kept_unverified() -> None:
    body = f"<wst:RenewTarget><a:Assertion xmlns:a='{ns.SAML2}' ID='_1'/></wst:RenewTarget>"
    target = parse_rst(_rst(body)).renew_target
    # The element as parsed with the request (not bytes to parse again).
    assert target.reference is None and target.unverified_token.tag == f"{{{ns.SAML2}}}Assertion"


def test_act_as_in_14_namespace_and_in_13_namespace() -> None:
    inline = f"<a:Assertion xmlns:a='{ns.SAML2}' ID='_1'/>"
    assert parse_rst(_rst(f"<w14:ActAs xmlns:w14='{ns.WST14}'>{inline}</w14:ActAs>")).act_as.unverified_token is not None
    assert parse_rst(_rst(f"<wst:ActAs>{inline}</wst:ActAs>")).act_as.unverified_token is not None


def test_target_must_hold_one_element() -> None:
    with pytest.raises(InvalidRequest):
        parse_rst(_rst("<wst:CancelTarget/>"))


def test_symmetric_key_request() -> None:
    body = ("<wst:KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey</wst:KeyType>"
            "<wst:KeySize>256</wst:KeySize><wst:Entropy><wst:BinarySecret Type='x'>AAECAw==</wst:BinarySecret>"
            "</wst:Entropy><wst:ComputedKeyAlgorithm>http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1"
            "</wst:ComputedKeyAlgorithm>")
    rst = parse_rst(_rst(body))
    assert rst.key_type is KeyType.SYMMETRIC and rst.key_size == 256
    assert rst.entropy.binary_secret == b"\x00\x01\x02\x03"
    assert rst.computed_key_algorithm.endswith("CK/PSHA1")


def test_encrypted_key_entropy_is_read_once_into_a_typed_value() -> None:
    body = (f"<wst:Entropy><xenc:EncryptedKey xmlns:xenc='{ns.XENC}' xmlns:ds='{ns.DS}'>"
            f"<xenc:EncryptionMethod Algorithm='{KeyTransport.RSA_OAEP_MGF1P.value}'>"
            f"<ds:DigestMethod Algorithm='{DigestAlgorithm.SHA1.value}'/></xenc:EncryptionMethod>"
            "<xenc:CipherData><xenc:CipherValue>AAEC</xenc:CipherValue></xenc:CipherData>"
            "</xenc:EncryptedKey></wst:Entropy>")
    assert parse_rst(_rst(body)).entropy.encrypted_key == EncryptedSecret(
        KeyTransport.RSA_OAEP_MGF1P.value, b"\x00\x01\x02", DigestAlgorithm.SHA1.value)


def test_a_malformed_cipher_value_reads_as_empty() -> None:
    body = f"<wst:Entropy><xenc:EncryptedKey xmlns:xenc='{ns.XENC}'/></wst:Entropy>"
    assert parse_rst(_rst(body)).entropy.encrypted_key == EncryptedSecret("", b"")


@pytest.mark.parametrize("size", ["abc", "-1", "99999999"])
def test_bad_key_size(size: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_rst(_rst(f"<wst:KeySize>{size}</wst:KeySize>"))


def test_use_key_certificate_and_key_value() -> None:
    fixture = FIXTURES / "recorded/picketlink/wstrust-rst-usekey.xml"
    rst = parse_rst(parse(fixture.read_bytes()))
    assert rst.use_key.certificate_der[:1] == b"\x30"
    body = (f"<wst:UseKey><ds:KeyInfo xmlns:ds='{ns.DS}'><ds:KeyValue><ds:RSAKeyValue><ds:Modulus>AQAB</ds:Modulus>"
            "<ds:Exponent>AQAB</ds:Exponent></ds:RSAKeyValue></ds:KeyValue></ds:KeyInfo></wst:UseKey>")
    use_key = parse_rst(_rst(body)).use_key
    assert (use_key.rsa_modulus, use_key.rsa_exponent) == (65537, 65537)


def test_use_key_as_a_bare_certificate_picketlink_style() -> None:
    fixture = FIXTURES / "recorded/picketlink/wst-issue-public-certificate.xml"
    rst = parse_rst(parse(fixture.read_bytes()))
    assert rst.use_key is not None and rst.use_key.certificate_der[:1] == b"\x30"


def test_use_key_without_a_key() -> None:
    with pytest.raises(BadRequest):
        parse_rst(_rst(f"<wst:UseKey><ds:KeyInfo xmlns:ds='{ns.DS}'><ds:KeyName>k</ds:KeyName></ds:KeyInfo></wst:UseKey>"))


def test_renewing_and_postdating() -> None:
    rst = parse_rst(_rst("<wst:Renewing Allow='true' OK='true'/><wst:AllowPostdating/>"))
    assert rst.renewing.allow and rst.renewing.ok and rst.allow_postdating
    assert not parse_rst(_rst("<wst:Renewing Allow='false'/>")).renewing.allow


def test_algorithm_hints_are_collected() -> None:
    rst = parse_rst(_rst("<wst:SignatureAlgorithm>urn:sig</wst:SignatureAlgorithm><wst:SignWith>urn:sw</wst:SignWith>"))
    assert rst.algorithms == (("SignatureAlgorithm", "urn:sig"), ("SignWith", "urn:sw"))


def test_batch_collection() -> None:
    from sts.protocol.wstrust.parse import parse_rst_collection
    one = (f"<wst:RequestSecurityToken><wst:RequestType>{WST13}/BatchIssue</wst:RequestType>"
           "</wst:RequestSecurityToken>")
    rsts = parse_rst_collection(parse(
        f"<wst:RequestSecurityTokenCollection xmlns:wst='{WST13}'>{one}{one}</wst:RequestSecurityTokenCollection>".encode()))
    assert len(rsts) == 2 and all(r.batch and r.request_type is RequestType.ISSUE for r in rsts)


def test_batch_collection_refuses_plain_requests() -> None:
    from sts.protocol.wstrust.parse import parse_rst_collection
    one = f"<wst:RequestSecurityToken><wst:RequestType>{WST13}/Issue</wst:RequestType></wst:RequestSecurityToken>"
    with pytest.raises(InvalidRequest):
        parse_rst_collection(parse(
            f"<wst:RequestSecurityTokenCollection xmlns:wst='{WST13}'>{one}</wst:RequestSecurityTokenCollection>".encode()))


def test_extension_elements_are_ignored() -> None:
    body = "<wst:KeySize>256</wst:KeySize><x:Whatever xmlns:x='urn:ext'/><wst:Renewing Allow='true'/>"
    assert parse_rst(_rst(body)).request_type is RequestType.ISSUE


def test_unknown_trust_element_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        parse_rst(_rst("<wst:Frobnicate/>"))


def test_missing_request_type() -> None:
    with pytest.raises(InvalidRequest):
        parse_rst(parse(f"<wst:RequestSecurityToken xmlns:wst='{WST13}'/>".encode()))


def test_duplicate_element() -> None:
    with pytest.raises(InvalidRequest):
        parse_rst(_rst("<wst:KeySize>1</wst:KeySize><wst:Lifetime/><wst:Lifetime/>"))


def test_mixed_versions() -> None:
    with pytest.raises(InvalidRequest):
        parse_rst(_rst(f"<t:TokenType xmlns:t='{WST05}'>urn:oasis:names:tc:SAML:2.0:assertion</t:TokenType>"))


def test_request_type_of_other_version() -> None:
    with pytest.raises(InvalidRequest):
        parse_rst(parse(
            f"<wst:RequestSecurityToken xmlns:wst='{WST13}'><wst:RequestType>{WST05}/Issue</wst:RequestType>"
            "</wst:RequestSecurityToken>".encode()))


def test_not_trust() -> None:
    with pytest.raises(InvalidRequest):
        parse_rst(parse(b"<a/>"))


def test_render_rst_roundtrip() -> None:
    element = render_rst(TrustVersion.WST13, applies_to="https://rp/", token_type_uri=TokenType.SAML11.value,
                         key_type_uri=KeyType.BEARER.value, claims=(("urn:a", False), ("urn:b", True)),
                         lifetime=("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"), context="c")
    rst = parse_rst(parse(etree.tostring(element)))
    assert (rst.applies_to, rst.token_type, rst.key_type, rst.context) == (
        "https://rp/", TokenType.SAML11, KeyType.BEARER, "c")
    assert [c.optional for c in rst.claims] == [False, True]


@pytest.mark.parametrize("wst,version", [(WST13, TrustVersion.WST13), (WST05, TrustVersion.WST2005)])
@pytest.mark.parametrize("request_type", list(RequestType))
def test_every_request_type_plain_and_batch(wst: str, version: TrustVersion, request_type: RequestType) -> None:
    for prefix, batch in (("", False), ("Batch", True)):
        rst = parse_rst(_rst("", wst, f"{prefix}{request_type.value}"))
        assert (rst.request_type, rst.version, rst.batch) == (request_type, version, batch)
        assert rst.request_type_uri == f"{wst}/{prefix}{request_type.value}"


@pytest.mark.parametrize("request_type,named", [("BatchFoo", f"{WST13}/Foo"), ("Batch", f"{WST13}/"),
                                                ("RST/Issue", f"{WST13}/RST/Issue")])
def test_unknown_request_types_name_what_was_tried(request_type: str, named: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_rst(_rst("", WST13, request_type))
    assert raised.value.detail == named


def test_comments_between_children_are_skipped() -> None:
    body = f"<!--a--><wst:TokenType>{ns.SAML2}</wst:TokenType><!--b-->{_applies('https://rp/')}<!--c-->"
    rst = parse_rst(_rst(body))
    assert (rst.token_type, rst.applies_to) == (TokenType.SAML20, "https://rp/")
