"""verify_message accepts the layouts honest WS-Security stacks send (signed by libxmlsec1, as xmlsec1 would verify).

Every message here is signed by python-xmlsec (libxmlsec1, the library under ``xmlsec1 --verify``), in the layout
of a real stack: WSS4J/CXF (InclusiveNamespaces on SignedInfo and on each Transform, the Signature before the
Timestamp, wsu declared on the Body), node ``soap`` (enveloped-signature before exc-c14n), and one value of each
dimension of issue 13 (Id attributes, key references, c14n, SOAP versions, algorithms, prefixes). Each refusal
names what failed (``str(err)``): which Reference, which transform, which algorithm.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from signing import key_pem, make_client, reparse, rst_root, security_of
from sts import ns
from sts.errors import AuthenticationBadElements, FailedCheck, UnsupportedAlgorithm
from sts.model import RequestContext
from sts.protocol.soap import parse_envelope
from sts.protocol.wsse.header import parse_security_header
from sts.service.auth import X509Authenticator
from sts.store.database import Database, open_database
from sts.store.passwords import PasswordHasher, SecretBox
from sts.protocol.wsse.signature import (
    THUMBPRINT_SHA1,
    X509_SKI,
    X509V3,
    AlgorithmPolicy,
    CertificateReference,
    IssuerSerialReference,
    KeyReference,
    SignedMessage,
    SkiReference,
    ThumbprintReference,
    TrustedKey,
    verify_message,
)
from sts.uris import BASE64_BINARY, ENVELOPED, EXC_C14N, SoapVersion

C14N10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
WSU_ID = f"{{{ns.WSU}}}Id"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
WSA = "http://www.w3.org/2005/08/addressing"
C14N_TRANSFORMS = {EXC_C14N: xmlsec.Transform.EXCL_C14N, C14N10: xmlsec.Transform.C14N,
                   f"{EXC_C14N}WithComments": xmlsec.Transform.EXCL_C14N_COMMENTS,
                   f"{C14N10}#WithComments": xmlsec.Transform.C14N_COMMENTS}
METHODS = {"rsa-sha256": (xmlsec.Transform.RSA_SHA256, xmlsec.Transform.SHA256),
           "ecdsa-sha256": (xmlsec.Transform.ECDSA_SHA256, xmlsec.Transform.SHA256),
           "rsa-sha1": (xmlsec.Transform.RSA_SHA1, xmlsec.Transform.SHA1)}


@dataclass(frozen=True)
class Layout:
    soap: SoapVersion = SoapVersion.SOAP11
    id_attr: str = "wsu"  # wsu | Id | xml
    key: str = "bst"  # bst | bst-after | ski | thumbprint | x509v3 | issuer-serial | certificate
    c14n: str = EXC_C14N  # SignedInfo's and every Reference's
    prefixes: bool = False  # ec:InclusiveNamespaces on SignedInfo's c14n and on each Transform (WSS4J)
    enveloped: bool = False  # enveloped-signature before the c14n (node soap)
    signature_first: bool = False  # ds:Signature before wsu:Timestamp (WSS4J)
    wsu_on_body: bool = False  # xmlns:wsu declared on the Body itself (WSS4J)
    addressing: bool = False  # the WS-Addressing headers signed too
    method: str = "rsa-sha256"
    prefix: str | None = "ds"  # ds | dsig | None (default namespace)
    comments: bool = False  # a comment inside the Body
    xml_lang: bool = False  # xml:lang on the Envelope
    prefix_list: tuple[str, ...] = ()  # the Body Transform's PrefixList instead of WSS4J's


@dataclass(frozen=True)
class Client:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@pytest.fixture(scope="module")
def rsa_client() -> Client:
    key, cert, _ = make_client("layouts")
    return Client(key, cert)


@pytest.fixture(scope="module")
def ec_client() -> Client:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec-layouts")])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Client(key, cert)


def _set_id(element: etree._Element, layout: Layout, value: str) -> None:
    attribute = {"wsu": WSU_ID, "Id": "Id", "xml": XML_ID}[layout.id_attr]
    for old in (WSU_ID, "Id", XML_ID):
        element.attrib.pop(old, None)
    element.set(attribute, value)


def _key_info(layout: Layout, client: Client, security: etree._Element, key_info: etree._Element) -> None:
    der = client.cert.public_bytes(serialization.Encoding.DER)
    if layout.key == "certificate":
        data = etree.SubElement(key_info, f"{{{ns.DS}}}X509Data")
        etree.SubElement(data, f"{{{ns.DS}}}X509Certificate").text = base64.b64encode(der).decode()
        return
    reference = etree.SubElement(key_info, f"{{{ns.WSSE}}}SecurityTokenReference")
    if layout.key in ("bst", "bst-after"):
        token = etree.Element(f"{{{ns.WSSE}}}BinarySecurityToken", ValueType=X509V3, EncodingType=BASE64_BINARY)
        token.set(WSU_ID, "X509-1")
        token.text = base64.b64encode(der).decode()
        security.append(token) if layout.key == "bst-after" else security.insert(0, token)
        etree.SubElement(reference, f"{{{ns.WSSE}}}Reference", URI="#X509-1", ValueType=X509V3)
    elif layout.key == "issuer-serial":
        data = etree.SubElement(reference, f"{{{ns.DS}}}X509Data")
        pair = etree.SubElement(data, f"{{{ns.DS}}}X509IssuerSerial")
        etree.SubElement(pair, f"{{{ns.DS}}}X509IssuerName").text = client.cert.issuer.rfc4514_string()
        etree.SubElement(pair, f"{{{ns.DS}}}X509SerialNumber").text = str(client.cert.serial_number)
    else:
        value_type, value = {
            "ski": (X509_SKI, client.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest),
            "thumbprint": (THUMBPRINT_SHA1, hashlib.sha1(der).digest()),
            "x509v3": (X509V3, der),
        }[layout.key]
        identifier = etree.SubElement(reference, f"{{{ns.WSSE}}}KeyIdentifier", ValueType=value_type,
                                      EncodingType=BASE64_BINARY)
        identifier.text = base64.b64encode(value).decode()


def sign(layout: Layout, client: Client) -> etree._Element:
    """A signed Issue RST in ``layout``, signed by libxmlsec1, as the STS receives it (serialised, re-parsed)."""
    root = rst_root(layout.soap, timestamp=True)
    if layout.xml_lang:
        root.set("{http://www.w3.org/XML/1998/namespace}lang", "en")  # C14N 1.0 renders it on every apex
    if layout.comments:
        root.find(".//{*}RequestType").append(etree.Comment(" a comment in the signed Body "))  # type: ignore[union-attr]
    soap_ns = etree.QName(root).namespace
    body = root.find(f"{{{soap_ns}}}Body")
    security = security_of(root)
    timestamp = security.find(f"{{{ns.WSU}}}Timestamp")
    assert body is not None and timestamp is not None
    if layout.wsu_on_body:
        body.set(WSU_ID, "x")  # declares wsu on the Body; the Id itself is set below
    targets = [(body, "id-body"), (timestamp, "TS-1")]
    if layout.addressing:
        targets += [(header, f"wsa-{i}") for i, header in enumerate(root.iterfind(f"{{{soap_ns}}}Header/{{{WSA}}}*"))]
    for element, value in targets:
        _set_id(element, layout, value)
    method, digest = METHODS[layout.method]
    c14n = C14N_TRANSFORMS[layout.c14n]
    signature = xmlsec.template.create(root, c14n, method, ns=layout.prefix)
    if layout.prefixes:
        si_c14n = signature.find(f"{{{ns.DS}}}SignedInfo/{{{ns.DS}}}CanonicalizationMethod")
        xmlsec.template.transform_add_c14n_inclusive_namespaces(si_c14n, ["wsse", root.prefix or "s"])
    for element, value in targets:
        reference = xmlsec.template.add_reference(signature, digest, uri=f"#{value}")
        if layout.enveloped:
            xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
        transform = xmlsec.template.add_transform(reference, c14n)
        if layout.prefixes:
            prefixes = ["wsu" if element is body else "wsse", root.prefix or "s"]
            prefixes = list(layout.prefix_list) if layout.prefix_list and element is body else prefixes
            xmlsec.template.transform_add_c14n_inclusive_namespaces(transform, prefixes)
    security.insert(0 if layout.signature_first else len(security), signature)
    _key_info(layout, client, security, xmlsec.template.ensure_key_info(signature))
    # Re-parse so that libxml2 knows xml:id as an ID; register the other Id attributes as xmlsec1 --id-attr would.
    root = etree.fromstring(etree.tostring(root))
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(key_pem(client.key), xmlsec.KeyFormat.PEM)
    for element in root.iter(etree.Element):
        if element.get(WSU_ID) is not None:
            context.register_id(element, "Id", ns.WSU)
        if element.get("Id") is not None:
            context.register_id(element, "Id")
    context.sign(root.find(f".//{{{ns.DS}}}Signature"))
    return reparse(root)


def verify(root: etree._Element, client: Client, *, allow_sha1: bool = False) -> SignedMessage:
    seen: list[KeyReference] = []

    def resolve(reference: KeyReference) -> TrustedKey:
        seen.append(reference)
        return TrustedKey(client.cert, allow_sha1)

    result = verify_message(root, security_of(root), resolve=resolve, allowed=AlgorithmPolicy.strict(),
                            now=datetime.now(UTC))
    assert len(seen) == 1
    return result


def _accepted(layout: Layout, client: Client, *, allow_sha1: bool = False) -> SignedMessage:
    result = verify(sign(layout, client), client, allow_sha1=allow_sha1)
    assert result.body_signed and result.timestamp_signed
    assert etree.QName(result.signed_body).localname == "Body"
    assert etree.QName(result.signed_body[0]).localname == "RequestSecurityToken"
    return result


WSS4J = Layout(prefixes=True, signature_first=True, wsu_on_body=True)
NODE_SOAP = Layout(enveloped=True)


# --- the named stacks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("soap", list(SoapVersion))
def test_wss4j_layout_is_accepted(rsa_client: Client, soap: SoapVersion) -> None:
    _accepted(replace(WSS4J, soap=soap), rsa_client)


@pytest.mark.parametrize("soap", list(SoapVersion))
def test_node_soap_enveloped_transform_is_a_no_op_and_accepted(rsa_client: Client, soap: SoapVersion) -> None:
    _accepted(replace(NODE_SOAP, soap=soap), rsa_client)


# --- each dimension ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("id_attr", ["wsu", "Id", "xml"])
def test_reference_id_attributes(rsa_client: Client, id_attr: str) -> None:
    _accepted(Layout(id_attr=id_attr), rsa_client)


@pytest.mark.parametrize("key,kind", [
    ("bst", CertificateReference), ("bst-after", CertificateReference), ("x509v3", CertificateReference),
    ("certificate", CertificateReference), ("ski", SkiReference), ("thumbprint", ThumbprintReference),
    ("issuer-serial", IssuerSerialReference),
])
def test_key_references(rsa_client: Client, key: str, kind: type) -> None:
    seen: list[KeyReference] = []
    root = sign(Layout(key=key), rsa_client)

    def resolve(reference: KeyReference) -> TrustedKey:
        seen.append(reference)
        return TrustedKey(rsa_client.cert)

    verify_message(root, security_of(root), resolve=resolve, allowed=AlgorithmPolicy.strict(), now=datetime.now(UTC))
    assert [type(r) for r in seen] == [kind]


@pytest.mark.parametrize("layout", [
    Layout(c14n=C14N10), Layout(c14n=C14N10, enveloped=True), Layout(prefixes=True), Layout(addressing=True),
    Layout(addressing=True, soap=SoapVersion.SOAP12, prefixes=True), Layout(prefix="dsig"), Layout(prefix=None),
    Layout(prefix=None, prefixes=True, signature_first=True, id_attr="Id"),
    Layout(prefixes=True, prefix_list=("#default", "s", "wsu")), Layout(comments=True),
    Layout(comments=True, c14n=f"{EXC_C14N}WithComments"), Layout(comments=True, c14n=f"{C14N10}#WithComments"),
    Layout(c14n=C14N10, xml_lang=True), Layout(xml_lang=True),
    Layout(c14n=C14N10, prefix=None), Layout(c14n=C14N10, prefix=None, xml_lang=True, soap=SoapVersion.SOAP12),
], ids=["c14n", "c14n-enveloped", "prefixlist", "addressing", "addressing-12-prefixlist", "dsig", "default-ns",
        "default-ns-wss4j-Id", "prefixlist-default", "comment", "exc-with-comments", "c14n-with-comments",
        "c14n-inherited-xml-lang", "exc-xml-lang", "c14n-default-ns", "c14n-default-ns-12-xml-lang"])
def test_canonicalizations_prefixes_and_coverage(rsa_client: Client, layout: Layout) -> None:
    _accepted(layout, rsa_client)


def test_ecdsa_sha256(ec_client: Client) -> None:
    _accepted(replace(WSS4J, method="ecdsa-sha256"), ec_client)


def test_rsa_sha1_only_for_a_client_allowed_sha1(rsa_client: Client) -> None:
    root = sign(replace(NODE_SOAP, method="rsa-sha1"), rsa_client)
    with pytest.raises(UnsupportedAlgorithm, match="rsa-sha1"):
        verify(root, rsa_client)
    verify(root, rsa_client, allow_sha1=True)


# --- refusals name what failed ----------------------------------------------------------------------------------


def _text(root: etree._Element, local: str) -> etree._Element:
    element = next(e for e in root.iter(etree.Element) if etree.QName(e).localname == local)
    return element


@pytest.mark.parametrize("layout", [WSS4J, NODE_SOAP, Layout(c14n=C14N10, id_attr="xml")], ids=["wss4j", "node", "c14n"])
def test_tampered_body_names_the_reference_and_transforms(rsa_client: Client, layout: Layout) -> None:
    root = sign(layout, rsa_client)
    address = root.find(".//{*}Body//{*}Address")
    assert address is not None
    address.text = "https://evil.example/"
    with pytest.raises(FailedCheck, match=r"Reference #id-body \(the soap:Body\): digest mismatch after transforms \["):
        verify(root, rsa_client)


def test_tampered_timestamp_names_it(rsa_client: Client) -> None:
    root = sign(WSS4J, rsa_client)
    _text(root, "Expires").text = "2099-01-01T00:00:00Z"
    with pytest.raises(FailedCheck, match=r"Reference #TS-1 \(the wsu:Timestamp\): digest mismatch after transforms "
                                          r"\[exc-c14n PrefixList='wsse s'\] \(sha256\)"):
        verify(root, rsa_client)


def test_tampered_signed_info_names_the_signature_value(rsa_client: Client) -> None:
    root = sign(WSS4J, rsa_client)
    _text(root, "DigestValue").text = base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(FailedCheck, match=r"SignatureValue over SignedInfo \[exc-c14n PrefixList='wsse s'\] with "
                                          r"rsa-sha256: does not verify"):
        verify(root, rsa_client)


def test_prefix_list_changed_after_signing_fails(rsa_client: Client) -> None:
    root = sign(WSS4J, rsa_client)
    inclusive = _text(_text(root, "Reference"), "InclusiveNamespaces")
    inclusive.set("PrefixList", "wsu")
    with pytest.raises(FailedCheck):
        verify(root, rsa_client)


def test_enveloped_transform_is_refused_where_it_is_not_a_no_op(rsa_client: Client) -> None:
    """A Reference to the Security header itself (which holds the Signature): the transform would do something."""
    root = sign(NODE_SOAP, rsa_client)
    security = security_of(root)
    security.set(WSU_ID, "sec-1")
    signed_info = _text(root, "SignedInfo")
    extra = etree.fromstring(etree.tostring(_text(root, "Reference")))
    extra.set("URI", "#sec-1")
    signed_info.append(extra)
    with pytest.raises(UnsupportedAlgorithm, match=r"Reference #sec-1 \(a Security\): the enveloped-signature "
                                                   r"transform on an element that contains the Signature"):
        verify(reparse(root), rsa_client)


@pytest.mark.parametrize("transforms", [
    [EXC_C14N, ENVELOPED], [ENVELOPED, ENVELOPED, EXC_C14N], [EXC_C14N, EXC_C14N],
    ["http://www.w3.org/2000/09/xmldsig#base64", EXC_C14N],
])
def test_other_transform_chains_are_refused_by_name(rsa_client: Client, transforms: list[str]) -> None:
    root = sign(Layout(), rsa_client)
    holder = _text(_text(root, "Reference"), "Transforms")
    for child in list(holder):
        holder.remove(child)
    for algorithm in transforms:
        etree.SubElement(holder, f"{{{ns.DS}}}Transform", Algorithm=algorithm)
    with pytest.raises(UnsupportedAlgorithm, match=r"Reference #id-body: transforms \["):
        verify(root, rsa_client)


def test_ecdsa_value_of_the_wrong_length_fails(ec_client: Client) -> None:
    root = sign(Layout(method="ecdsa-sha256"), ec_client)
    value = _text(root, "SignatureValue")
    value.text = base64.b64encode(base64.b64decode(value.text or "") + b"\0").decode()
    with pytest.raises(FailedCheck, match="65 bytes, expected 64"):
        verify(root, ec_client)


def test_duplicate_xml_id_is_a_failed_check(rsa_client: Client) -> None:
    root = sign(Layout(id_attr="xml"), rsa_client)
    etree.SubElement(security_of(root), "{urn:x}Other").set(XML_ID, "id-body")
    with pytest.raises(FailedCheck, match="duplicate Id"):
        verify(root, rsa_client)


# --- through X509Authenticator and the real client store (SQLite): every key reference finds the client ----------


@pytest.fixture(scope="module")
def registered(rsa_client: Client, ec_client: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path_factory.mktemp('layouts') / 'sts.db'}",
                             hasher=PasswordHasher(n=2**4), secret_box=SecretBox(bytes(range(32))))
    database.clients.add("rsa-client", rsa_client.cert.public_bytes(serialization.Encoding.PEM))
    database.clients.add("ec-client", ec_client.cert.public_bytes(serialization.Encoding.PEM))
    yield database
    database.close()


def _authenticate(database: Database, root: etree._Element) -> str:
    soap = SoapVersion(etree.QName(root).namespace)
    envelope = parse_envelope(root)
    header = parse_security_header(envelope)
    context = RequestContext(remote="127.0.0.1", tls=True, loopback_bind=True, received_at=datetime.now(UTC),
                             soap_version=soap)
    authenticator = X509Authenticator(database.clients, database.nonces)
    return authenticator.authenticate(root, security_of(root), header, context).client.name


@pytest.mark.parametrize("key", ["bst", "bst-after", "x509v3", "certificate", "ski", "thumbprint", "issuer-serial"])
def test_every_key_reference_finds_the_registered_client(registered: Database, rsa_client: Client, key: str) -> None:
    assert _authenticate(registered, sign(replace(WSS4J, key=key), rsa_client)) == "rsa-client"


def test_ecdsa_client_through_the_store(registered: Database, ec_client: Client) -> None:
    assert _authenticate(registered, sign(replace(NODE_SOAP, method="ecdsa-sha256", key="ski"), ec_client)) == "ec-client"


@pytest.mark.parametrize("spelling", [
    "O=Example\\, Inc.,CN=layouts",  # RFC 2253 (Java's getName(), xmlsec)
    "O=Example\\, Inc., CN=layouts",  # OpenSSL
    'O="Example, Inc.", CN=layouts',  # RFC 1779 / .NET
    "o=Example\\, Inc.,cn=layouts",
])
def test_issuer_name_spellings_find_the_client(registered: Database, rsa_client: Client, spelling: str) -> None:
    root = sign(Layout(key="issuer-serial"), rsa_client)
    _text(root, "X509IssuerName").text = spelling  # KeyInfo is not signed here: the key lookup reads it
    assert _authenticate(registered, root) == "rsa-client"


def test_c14n_lends_inherited_xml_attributes_only_for_the_call(rsa_client: Client) -> None:
    root = sign(Layout(c14n=C14N10, xml_lang=True), rsa_client)
    before = etree.tostring(root)
    result = verify(root, rsa_client)
    assert etree.tostring(root) == before
    assert result.signed_body.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"  # as it was digested


@pytest.mark.parametrize("c14n", [EXC_C14N, C14N10])
def test_a_relative_namespace_uri_in_the_body_is_a_failed_check(rsa_client: Client, c14n: str) -> None:
    """libxml2's C14N (and so xmlsec1) refuses relative namespace URIs: a clear FailedCheck, not a crash."""
    root = sign(Layout(c14n=c14n), rsa_client)
    request = root.find(".//{*}Body/{*}RequestSecurityToken")
    assert request is not None
    etree.SubElement(request, "{relative/uri}Extra")
    with pytest.raises(FailedCheck, match=r"Reference #id-body \(the soap:Body\): \[c14n|\[exc-c14n"):
        verify(reparse(root), rsa_client)


def test_an_uncovered_body_names_what_the_references_cover(rsa_client: Client) -> None:
    root = sign(Layout(), rsa_client)
    body = root.find(".//{*}Body")
    assert body is not None
    body.attrib.pop(WSU_ID)
    body.set(WSU_ID, "other")  # the Body's Reference now names nothing: re-point it to the Timestamp's Id
    _text(root, "Reference").set("URI", "#TS-1")
    with pytest.raises(AuthenticationBadElements, match=r"the soap:Body is not signed \(the References: "
                                                         r"#TS-1 \(the wsu:Timestamp\), #TS-1 \(the wsu:Timestamp\)\)"):
        verify(root, rsa_client)
