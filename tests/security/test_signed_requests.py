"""X.509-signed requests through ``RequestAuthenticator`` and the client store (the pipeline calls exactly this).

Each case asserts the exact error class the endpoint turns into its fault (errors.py maps class -> fault code:
FailedCheck -> wsse:FailedCheck, UnsupportedAlgorithm -> wsse:UnsupportedAlgorithm, ...), and is followed by a
genuine signed request that must still authenticate (``_valid_request_still_works``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from signing import make_client, reparse, rst_root, zeep_sign
from sts import ns
from sts.service.auth import AuthResult, ProofDemand, RequestAuthenticator, UsernameTokenAuthenticator, X509Authenticator
from sts.errors import (
    AuthenticationBadElements,
    FailedAuthentication,
    FailedCheck,
    InvalidRequest,
    MessageExpired,
    UnsupportedAlgorithm,
)
from sts.model import RequestContext
from sts.store.passwords import PasswordHasher, SecretBox
from sts.protocol.soap import parse_envelope
from sts.store.database import Database, open_database
from sts.uris import AuthnMethod, DigestAlgorithm, SignatureAlgorithm
from sts.protocol.wsse.build import sign_envelope
from sts.protocol.wsse.header import parse_security_header
from sts.protocol.wsse.signature import AlgorithmPolicy

WST = ns.WST13
Client = tuple[rsa.RSAPrivateKey, x509.Certificate]


@pytest.fixture(scope="module")
def svc() -> Client:
    key, cert, _ = make_client("svc")
    return key, cert


@pytest.fixture
def db(tmp_path: Path, svc: Client) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'sts.db'}", hasher=PasswordHasher(n=2**4),
                             secret_box=SecretBox(bytes(range(32))))
    database.users.add("alice", "wonderland")
    database.clients.add("svc", svc[1].public_bytes(Encoding.PEM), [("urn:c:role", "robot")])
    yield database
    database.close()


#: Cases that change the client record on purpose: the valid request after them is not expected to pass.
_CHANGES_THE_CLIENT = frozenset({"test_disabled_client"})


@pytest.fixture(autouse=True)
def _valid_request_still_works(request: pytest.FixtureRequest, db: Database, svc: Client) -> Iterator[None]:
    yield
    if request.node.originalname not in _CHANGES_THE_CLIENT:
        assert run(authenticator(db), signed_request(svc)).principal.name == "svc"


def authenticator(db: Database, demand: ProofDemand = ProofDemand.EITHER, *, sha1: bool = False) -> RequestAuthenticator:
    policy = AlgorithmPolicy.strict().with_sha1() if sha1 else AlgorithmPolicy.strict()
    return RequestAuthenticator(
        username=UsernameTokenAuthenticator(users=db.users, replay=db.nonces),
        x509=X509Authenticator(clients=db.clients, replay=db.nonces, algorithms=policy),
        demand=demand,
    )


def ctx(now: datetime | None = None) -> RequestContext:
    return RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=now or datetime.now(UTC))


def run(auth: RequestAuthenticator, root: etree._Element, *, demand: ProofDemand | None = None,
        now: datetime | None = None) -> AuthResult:
    """What the pipeline does with a parsed request (see the report for the exact lines)."""
    envelope = parse_envelope(root)
    header = parse_security_header(envelope)
    return auth.authenticate(envelope, root, header, ctx(now), demand=demand)


def signed_request(client: Client, **options: object) -> etree._Element:
    root = rst_root()
    sign_envelope(root, client[0], client[1], **options)  # type: ignore[arg-type]
    return reparse(root)


@pytest.mark.parametrize("style", ["bst", "ski", "thumbprint", "issuer-serial"])
def test_signed_request_authenticates_the_client(db, svc, style) -> None:
    result = run(authenticator(db), signed_request(svc, key_reference=style))
    assert result.principal.name == "svc" and result.principal.authn_method is AuthnMethod.X509
    assert result.signed is not None and result.signed.body_signed
    assert result.body.tag == f"{{{WST}}}RequestSecurityToken"
    assert result.body.getparent() is result.signed.signed_body  # the verified Body, not the input tree
    assert result.client is not None and result.client.as_user().claims[0].values == ("robot",)


def test_signature_demanded(db, svc) -> None:
    auth = authenticator(db, ProofDemand.SIGNATURE)
    assert run(auth, signed_request(svc)).principal.name == "svc"
    with pytest.raises(FailedAuthentication):
        run(auth, rst_root(username=("alice", "wonderland")))


def test_username_demanded_ignores_signatures(db, svc) -> None:
    auth = authenticator(db, ProofDemand.USERNAME_TOKEN)
    with pytest.raises(FailedAuthentication):
        run(auth, signed_request(svc))
    result = run(auth, rst_root(username=("alice", "wonderland")))
    assert result.principal.name == "alice" and result.signed is None


def test_either_accepts_a_username_token(db) -> None:
    result = run(authenticator(db), rst_root(username=("alice", "wonderland")))
    assert result.principal.authn_method is AuthnMethod.PASSWORD and result.signed is None
    assert result.body.tag == f"{{{WST}}}RequestSecurityToken"


def test_both_credentials_make_the_user_the_principal(db, svc) -> None:
    root = rst_root(username=("alice", "wonderland"))
    sign_envelope(root, svc[0], svc[1])
    result = run(authenticator(db), reparse(root))
    assert result.principal.name == "alice" and result.signed is not None
    with pytest.raises(FailedAuthentication):
        bad = rst_root(username=("alice", "wrong"))
        sign_envelope(bad, svc[0], svc[1])
        run(authenticator(db), reparse(bad))


def test_request_demand_overrides_the_default(db, svc) -> None:
    with pytest.raises(FailedAuthentication):
        run(authenticator(db), rst_root(username=("alice", "wonderland")), demand=ProofDemand.SIGNATURE)


def test_unregistered_certificate(db) -> None:
    stranger = make_client("stranger")
    with pytest.raises(FailedAuthentication):
        run(authenticator(db), signed_request((stranger[0], stranger[1])))


def test_disabled_client(db, svc) -> None:
    db.clients.set_disabled("svc", True)
    with pytest.raises(FailedAuthentication):
        run(authenticator(db), signed_request(svc))


def test_expired_registered_certificate(db, svc) -> None:
    with pytest.raises(FailedAuthentication):
        run(authenticator(db), signed_request(svc, now=datetime.now(UTC) + timedelta(days=400)),
            now=datetime.now(UTC) + timedelta(days=400))


def test_replayed_signed_request(db, svc) -> None:
    message = etree.tostring(signed_request(svc))
    auth = authenticator(db)
    run(auth, reparse(etree.fromstring(message)))
    with pytest.raises(MessageExpired):
        run(auth, reparse(etree.fromstring(message)))


def test_stale_or_expired_timestamp(db, svc) -> None:
    old = datetime.now(UTC) - timedelta(minutes=30)
    with pytest.raises(MessageExpired):
        run(authenticator(db), signed_request(svc, now=old))
    with pytest.raises(MessageExpired):
        run(authenticator(db), signed_request(svc, now=old, ttl=timedelta(hours=1)))


def test_body_must_be_signed(db, svc) -> None:
    with pytest.raises(AuthenticationBadElements):
        run(authenticator(db), signed_request(svc, sign_body=False))


def test_wrapped_body(db, svc) -> None:
    root = signed_request(svc)
    body = root.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    forged = etree.Element(body.tag)
    forged.append(rst_root(applies_to="https://evil.example/").find(f"{{{ns.SOAP12}}}Body")[0])  # type: ignore[index]
    body.addnext(forged)
    etree.SubElement(root.find(f"{{{ns.SOAP12}}}Header"), "{urn:evil}W").append(body)  # type: ignore[arg-type]
    with pytest.raises(FailedCheck):
        run(authenticator(db), reparse(root))


def test_sha1_per_client_or_per_server(db, svc, tmp_path: Path) -> None:
    message = zeep_sign(rst_root(timestamp=True), svc[0], svc[1], tmp_path, sha256=False)
    with pytest.raises(UnsupportedAlgorithm):
        run(authenticator(db), reparse(message))
    assert run(authenticator(db, sha1=True), reparse(message)).principal.name == "svc"
    legacy = make_client("legacy")
    db.clients.add("legacy", legacy[2], allow_sha1=True)
    signed = signed_request((legacy[0], legacy[1]), algorithm=SignatureAlgorithm.RSA_SHA1)
    assert run(authenticator(db), signed).principal.name == "legacy"


def test_zeep_signed_request_is_accepted(db, svc, tmp_path: Path) -> None:
    message = zeep_sign(rst_root(timestamp=True), svc[0], svc[1], tmp_path)
    result = run(authenticator(db), message)
    assert result.principal.name == "svc"
    assert result.body.findtext(".//{*}Address") == "https://rp.example/"


# --- XML signature wrapping of the signed Body, every classic position ---------------------------------------------

S12 = f"{{{ns.SOAP12}}}"


def _forged_body(like: etree._Element) -> etree._Element:
    """A Body asking for a token for another relying party (no wsu:Id, or the one given)."""
    forged = etree.Element(like.tag)
    forged.append(rst_root(applies_to="https://evil.example/").find(f"{S12}Body")[0])  # type: ignore[index]
    return forged


def _signed_parts(svc: Client) -> tuple[etree._Element, etree._Element, etree._Element]:
    root = signed_request(svc)
    body, header = root.find(f"{S12}Body"), root.find(f"{S12}Header")
    assert body is not None and header is not None
    return root, header, body


def _body_in_a_header_wrapper(root: etree._Element, header: etree._Element, body: etree._Element) -> None:
    body.addnext(_forged_body(body))
    etree.SubElement(header, "{urn:evil}Wrapper").append(body)


def _body_in_the_security_header(root: etree._Element, header: etree._Element, body: etree._Element) -> None:
    body.addnext(_forged_body(body))
    security = header.find(f"{{{ns.WSSE}}}Security")
    assert security is not None
    etree.SubElement(security, "{urn:evil}Wrapper").append(body)


def _body_in_a_wrapper_under_the_envelope(root: etree._Element, header: etree._Element, body: etree._Element) -> None:
    body.addnext(_forged_body(body))
    wrapper = etree.Element("{urn:evil}Wrapper")
    body.addprevious(wrapper)
    wrapper.append(body)


def _second_body_after_the_signed_one(root: etree._Element, header: etree._Element, body: etree._Element) -> None:
    body.addnext(_forged_body(body))


def _forged_body_first_signed_one_second(root: etree._Element, header: etree._Element, body: etree._Element) -> None:
    body.addprevious(_forged_body(body))


def _forged_body_with_the_same_wsu_id(root: etree._Element, header: etree._Element, body: etree._Element) -> None:
    forged = _forged_body(body)
    forged.set(f"{{{ns.WSU}}}Id", body.get(f"{{{ns.WSU}}}Id"))  # type: ignore[arg-type]
    body.addnext(forged)
    etree.SubElement(header, "{urn:evil}Wrapper").append(body)


def _rst_replaced_inside_the_signed_body(root: etree._Element, header: etree._Element, body: etree._Element) -> None:
    """The signed Body element kept (its Id too), its content swapped: the digest must not match."""
    body.remove(body[0])
    body.append(_forged_body(body)[0])


def _signed_rst_moved_into_a_forged_rst(root: etree._Element, header: etree._Element, body: etree._Element) -> None:
    forged = _forged_body(body)[0]
    signed_rst = body[0]
    body.remove(signed_rst)
    etree.SubElement(forged, "{urn:evil}Extension").append(signed_rst)
    body.append(forged)


XSW = {
    "body-in-a-header-wrapper": _body_in_a_header_wrapper,
    "body-in-the-security-header": _body_in_the_security_header,
    "body-in-a-wrapper-under-the-envelope": _body_in_a_wrapper_under_the_envelope,
    "second-body-after-the-signed-one": _second_body_after_the_signed_one,
    "forged-body-first": _forged_body_first_signed_one_second,
    "forged-body-with-the-same-wsu-id": _forged_body_with_the_same_wsu_id,
    "rst-replaced-inside-the-signed-body": _rst_replaced_inside_the_signed_body,
    "signed-rst-inside-a-forged-rst": _signed_rst_moved_into_a_forged_rst,
}
#: What each position gets. A second Body or an element beside Header and Body is a malformed envelope
#: (InvalidRequest, before any signature is looked at); everything else, a duplicate wsu:Id included, fails the
#: signature check (FailedCheck).
XSW_OUTCOME: dict[str, type[Exception]] = {
    "second-body-after-the-signed-one": InvalidRequest,
    "forged-body-first": InvalidRequest,
    "body-in-a-wrapper-under-the-envelope": InvalidRequest,
}


@pytest.mark.parametrize("name", list(XSW))
def test_signature_wrapping(db, svc, name) -> None:
    root, header, body = _signed_parts(svc)
    XSW[name](root, header, body)
    with pytest.raises(XSW_OUTCOME.get(name, FailedCheck)):
        run(authenticator(db), reparse(root))


def test_signature_over_the_timestamp_only(db, svc) -> None:
    with pytest.raises(AuthenticationBadElements):
        run(authenticator(db), signed_request(svc, sign_body=False, sign_timestamp=True))


def test_signature_over_the_body_only(db, svc) -> None:
    with pytest.raises(AuthenticationBadElements):
        run(authenticator(db), signed_request(svc, sign_body=True, sign_timestamp=False))


@pytest.mark.parametrize("method,digest_name", [
    ("http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", "sha256"),
    ("http://www.w3.org/2000/09/xmldsig#hmac-sha1", "sha1"),
])
def test_hmac_keyed_with_the_client_certificate(db, svc, method, digest_name) -> None:
    """Algorithm confusion: the SignatureValue an HMAC keyed with the (public) registered certificate."""
    import base64
    import hmac

    root = signed_request(svc)
    signed_info = root.find(f".//{{{ns.DS}}}SignedInfo")
    assert signed_info is not None
    signed_info.find(f"{{{ns.DS}}}SignatureMethod").set("Algorithm", method)  # type: ignore[union-attr]
    key = svc[1].public_bytes(Encoding.PEM)
    value = hmac.new(key, etree.tostring(signed_info, method="c14n", exclusive=True), digest_name).digest()
    root.find(f".//{{{ns.DS}}}SignatureValue").text = base64.b64encode(value).decode()  # type: ignore[union-attr]
    with pytest.raises(UnsupportedAlgorithm):
        run(authenticator(db), reparse(root))


def test_sha1_digest_under_rsa_sha256(db, svc) -> None:
    with pytest.raises(UnsupportedAlgorithm):
        run(authenticator(db), signed_request(svc, digest=DigestAlgorithm.SHA1))


def test_rsa_sha1_for_a_client_not_allowed_sha1(db, svc) -> None:
    with pytest.raises(UnsupportedAlgorithm):
        run(authenticator(db), signed_request(svc, algorithm=SignatureAlgorithm.RSA_SHA1))


def test_certificate_in_the_bst_swapped_for_a_registered_one(db, svc) -> None:
    """A stranger signs but names the registered client's certificate: the signature does not verify with it."""
    stranger = make_client("stranger")
    root = signed_request((stranger[0], stranger[1]))
    token = root.find(f".//{{{ns.WSSE}}}BinarySecurityToken")
    assert token is not None
    import base64
    token.text = base64.b64encode(svc[1].public_bytes(Encoding.DER)).decode()
    with pytest.raises((FailedCheck, FailedAuthentication)):
        run(authenticator(db), reparse(root))
