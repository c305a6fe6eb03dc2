"""A generator of X.509-signed WS-Trust (1.3 and 2005) RSTs in the layouts real WS-Security stacks send (issue 13 item 1).

The XML-DSig is written here by hand (lxml's C14N and ``cryptography``), so that every layout can be produced,
including the ones no single library writes: each ``Layout`` is one point of the product of ``DIMENSIONS``.
What is signed always covers the Body and the Timestamp; WS-Addressing headers are signed or not.
``tamper`` gives the variants every verifier must refuse.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from sts import ns
from sts.protocol.wstrust.render import render_rst
from sts.uris import RequestType, TrustVersion

RP = "https://rp.example/"
DS = ns.DS
EC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XML_NS = "http://www.w3.org/XML/1998/namespace"
X509_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
X509V3 = f"{X509_PROFILE}#X509v3"
SKI = f"{X509_PROFILE}#X509SubjectKeyIdentifier"
THUMBPRINT = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
BASE64 = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
          "#Base64Binary")
SOAP_NS = {"1.1": ns.SOAP11, "1.2": ns.SOAP12}
#: (SignatureMethod, DigestMethod, hash) per algorithm value.
ALGORITHMS = {
    "rsa-sha256": ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256"),
    "ecdsa-sha256": ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
                     "http://www.w3.org/2001/04/xmlenc#sha256"),
    "rsa-sha1": ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#sha1"),
}

#: The dimensions of issue 13 item 1 and their values (the first value of each is zeep's/our own layout).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "id_attr": ("wsu:Id", "Id", "xml:id"),
    "key": ("bst", "bst-after", "ski", "thumbprint", "x509v3", "issuer-serial", "x509-certificate"),
    "c14n": ("exc", "exc-prefixes-signedinfo", "exc-prefixes-transforms", "exc-prefixes-both", "c14n10"),
    "enveloped": ("absent", "present"),
    "position": ("after-timestamp", "before-timestamp"),
    "wsa": ("unsigned", "signed"),
    "soap": ("1.2", "1.1"),
    "algorithm": ("rsa-sha256", "ecdsa-sha256", "rsa-sha1"),
    "prefix": ("ds", "dsig", "default"),
    "trust": ("1.3", "2005"),
}


@dataclass(frozen=True)
class Layout:
    id_attr: str
    key: str
    c14n: str
    enveloped: str
    position: str
    wsa: str
    soap: str
    algorithm: str
    prefix: str
    trust: str

    def label(self) -> str:
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def full_product() -> list[Layout]:
    return [Layout(*values) for values in itertools.product(*DIMENSIONS.values())]


def pairwise() -> list[Layout]:
    """A deterministic cover in which every pair of values of two dimensions meets at least once.

    Greedy (AETG-like): each new row starts from the first uncovered pair and fills the other dimensions, in a
    fixed order, with the value that covers most uncovered pairs (ties: the first value).
    """
    names = list(DIMENSIONS)
    uncovered = {((a, va), (b, vb)) for a, b in itertools.combinations(range(len(names)), 2)
                 for va in DIMENSIONS[names[a]] for vb in DIMENSIONS[names[b]]}
    rows: list[Layout] = []
    while uncovered:
        (a, va), (b, vb) = min(uncovered)
        row: dict[int, str] = {a: va, b: vb}
        for dim in range(len(names)):
            if dim in row:
                continue
            row[dim] = max(DIMENSIONS[names[dim]], key=lambda value, dim=dim: sum(  # type: ignore[misc]
                (min((dim, value), (o, v)), max((dim, value), (o, v))) in uncovered for o, v in row.items()))
        values = [row[i] for i in range(len(names))]
        uncovered -= {((i, values[i]), (j, values[j])) for i, j in itertools.combinations(range(len(names)), 2)}
        rows.append(Layout(*values))
    return rows


@dataclass(frozen=True)
class Signer:
    """A client's key and certificate (its name is the registered client name)."""

    name: str
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def sign(self, data: bytes, algorithm: str) -> bytes:
        digest: hashes.HashAlgorithm = hashes.SHA1() if algorithm == "rsa-sha1" else hashes.SHA256()
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(digest)))
            size = (self.key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # XML-DSig 1.1: r || s
        return self.key.sign(data, padding.PKCS1v15(), digest)


def _q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def _id_qname(id_attr: str) -> str:
    return {"wsu:Id": _q(ns.WSU, "Id"), "Id": "Id", "xml:id": _q(XML_NS, "id")}[id_attr]


def _set_id(element: etree._Element, layout: Layout, value: str) -> None:
    element.set(_id_qname(layout.id_attr), value)


def _c14n(element: etree._Element, exclusive: bool, prefixes: Sequence[str]) -> bytes:
    return etree.tostring(_standalone(element), method="c14n", exclusive=exclusive,
                          inclusive_ns_prefixes=list(prefixes) if exclusive and prefixes else None)


def _standalone(element: etree._Element) -> etree._Element:
    """``element`` as the root of its own document, declaring every namespace in scope where it was.

    lxml canonicalises a sub-element through a borrowed root whose children still point at their ancestors'
    declarations: under C14N 1.0 a default namespace declared above (``<Signature xmlns="...dsig#">``) then comes
    out as ``xmlns=""`` on the children. Re-parsed from a root that declares everything, C14N sees the document
    subset as XML-DSig defines it (the generated layouts set no xml:* attribute on an ancestor).
    """
    clone = etree.Element(element.tag, attrib=dict(element.attrib), nsmap=element.nsmap)
    clone.text = element.text
    clone.extend(copy.deepcopy(child) for child in element)
    return etree.fromstring(etree.tostring(clone))


@dataclass
class Built:
    """One signed message and the handles tamper() needs."""

    layout: Layout
    root: etree._Element

    def serialize(self) -> bytes:
        return etree.tostring(self.root)


def build(layout: Layout, signer: Signer, *, now: datetime | None = None, applies_to: str = RP) -> Built:
    """A signed Issue RST in ``layout``, signed by ``signer`` (ECDSA layouts need an EC signer)."""
    soap = SOAP_NS[layout.soap]
    soap_prefix = "soap" if layout.soap == "1.1" else "env"
    java = layout.position == "before-timestamp"  # WSS4J: Signature first, wsu declared on the Body itself
    envelope = etree.Element(_q(soap, "Envelope"), nsmap={soap_prefix: soap, "wsa": ns.WSA})
    header = etree.SubElement(envelope, _q(soap, "Header"))
    targets: list[etree._Element] = []
    trust = TrustVersion.WST13 if layout.trust == "1.3" else TrustVersion.WST2005
    for local, text in (("Action", RequestType.ISSUE.request_action(trust)),
                        ("MessageID", f"urn:uuid:{uuid.uuid4()}"), ("To", "https://sts.example/services/sts")):
        element = etree.SubElement(header, _q(ns.WSA, local))
        element.text = text
        if layout.wsa == "signed":
            _set_id(element, layout, f"wsa-{local}")
            targets.append(element)
    security = etree.SubElement(header, _q(ns.WSSE, "Security"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    security.set(_q(soap, "mustUnderstand"), "1" if layout.soap == "1.1" else "true")
    body = etree.SubElement(envelope, _q(soap, "Body"), nsmap={"wsu": ns.WSU} if java else None)
    _set_id(body, layout, "id-body")
    body.append(render_rst(trust, applies_to=applies_to))

    created = (now or datetime.now(UTC)).replace(tzinfo=None)
    timestamp = etree.Element(_q(ns.WSU, "Timestamp"), nsmap={"wsu": ns.WSU})
    _set_id(timestamp, layout, "id-ts")
    etree.SubElement(timestamp, _q(ns.WSU, "Created")).text = created.isoformat(timespec="milliseconds") + "Z"
    etree.SubElement(timestamp, _q(ns.WSU, "Expires")).text = (
        (created + timedelta(minutes=5)).isoformat(timespec="milliseconds") + "Z")
    bst = _bst(signer) if layout.key in ("bst", "bst-after") else None
    signature = _signature_skeleton(layout, signer, [body, timestamp, *targets])
    parts = [timestamp, signature] if not java else [signature, timestamp]
    if bst is not None:
        parts.insert(len(parts) if layout.key == "bst-after" else 0, bst)
    security.extend(parts)
    # Signed after a round trip: lxml's C14N of a grafted subtree misses the namespaces declared above it.
    root = etree.fromstring(etree.tostring(envelope))
    _fill(layout, signer, next(root.iter(_q(DS, "Signature"))), root)
    return Built(layout, root)


def _bst(signer: Signer) -> etree._Element:
    bst = etree.Element(_q(ns.WSSE, "BinarySecurityToken"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU},
                        ValueType=X509V3, EncodingType=BASE64)
    bst.set(_q(ns.WSU, "Id"), "X509-token")
    bst.text = base64.b64encode(signer.cert.public_bytes(Encoding.DER)).decode()
    return bst


def _dsig_prefix(layout: Layout) -> str | None:
    return None if layout.prefix == "default" else layout.prefix


def _signature_skeleton(layout: Layout, signer: Signer, targets: list[etree._Element]) -> etree._Element:
    ds = _dsig_prefix(layout)
    signature = etree.Element(_q(DS, "Signature"), nsmap={ds: DS})
    signed_info = etree.SubElement(signature, _q(DS, "SignedInfo"))
    exclusive = layout.c14n != "c14n10"
    method = etree.SubElement(signed_info, _q(DS, "CanonicalizationMethod"), Algorithm=EC14N if exclusive else C14N10)
    if layout.c14n in ("exc-prefixes-signedinfo", "exc-prefixes-both"):
        _inclusive_namespaces(method, _signed_info_prefixes(layout))
    signature_method, digest_method = ALGORITHMS[layout.algorithm]
    etree.SubElement(signed_info, _q(DS, "SignatureMethod"), Algorithm=signature_method)
    for target in targets:
        reference = etree.SubElement(signed_info, _q(DS, "Reference"), URI="#" + str(target.get(_id_qname(
            layout.id_attr))))
        transforms = etree.SubElement(reference, _q(DS, "Transforms"))
        if layout.enveloped == "present":  # node soap: enveloped-signature first, a no-op outside the Signature
            etree.SubElement(transforms, _q(DS, "Transform"), Algorithm=ENVELOPED)
        transform = etree.SubElement(transforms, _q(DS, "Transform"), Algorithm=EC14N if exclusive else C14N10)
        if layout.c14n in ("exc-prefixes-transforms", "exc-prefixes-both"):
            _inclusive_namespaces(transform, _transform_prefixes(layout))
        etree.SubElement(reference, _q(DS, "DigestMethod"), Algorithm=digest_method)
        etree.SubElement(reference, _q(DS, "DigestValue"))
    etree.SubElement(signature, _q(DS, "SignatureValue"))
    key_info = etree.SubElement(signature, _q(DS, "KeyInfo"))
    _key_info(layout, signer, key_info)
    return signature


def _soap_prefix(layout: Layout) -> str:
    return "soap" if layout.soap == "1.1" else "env"


def _signed_info_prefixes(layout: Layout) -> list[str]:
    # WSS4J lists the prefixes in scope of the Security header; wsse and wsa are not visibly used in SignedInfo.
    return ["wsse", _soap_prefix(layout), "wsa"]


def _transform_prefixes(layout: Layout) -> list[str]:
    return [_soap_prefix(layout), "wsa"]


def _inclusive_namespaces(parent: etree._Element, prefixes: list[str]) -> None:
    etree.SubElement(parent, _q(EC14N, "InclusiveNamespaces"), nsmap={"ec": EC14N}, PrefixList=" ".join(prefixes))


def _key_info(layout: Layout, signer: Signer, key_info: etree._Element) -> None:
    der = signer.cert.public_bytes(Encoding.DER)
    if layout.key == "x509-certificate":
        data = etree.SubElement(key_info, _q(DS, "X509Data"))
        etree.SubElement(data, _q(DS, "X509Certificate")).text = base64.b64encode(der).decode()
        return
    token_reference = etree.SubElement(key_info, _q(ns.WSSE, "SecurityTokenReference"), nsmap={"wsse": ns.WSSE})
    if layout.key in ("bst", "bst-after"):
        etree.SubElement(token_reference, _q(ns.WSSE, "Reference"), URI="#X509-token", ValueType=X509V3)
    elif layout.key == "issuer-serial":
        data = etree.SubElement(token_reference, _q(DS, "X509Data"))
        issuer_serial = etree.SubElement(data, _q(DS, "X509IssuerSerial"))
        etree.SubElement(issuer_serial, _q(DS, "X509IssuerName")).text = signer.cert.issuer.rfc4514_string()
        etree.SubElement(issuer_serial, _q(DS, "X509SerialNumber")).text = str(signer.cert.serial_number)
    else:
        value_type, value = {
            "ski": (SKI, x509.SubjectKeyIdentifier.from_public_key(signer.cert.public_key()).digest),
            "thumbprint": (THUMBPRINT, hashlib.sha1(der).digest()),
            "x509v3": (X509V3, der),
        }[layout.key]
        identifier = etree.SubElement(token_reference, _q(ns.WSSE, "KeyIdentifier"), ValueType=value_type,
                                      EncodingType=BASE64)
        identifier.text = base64.b64encode(value).decode()


def _fill(layout: Layout, signer: Signer, signature: etree._Element, envelope: etree._Element) -> None:
    """Digests of the targets, then the SignatureValue over SignedInfo, both canonicalized in place."""
    exclusive = layout.c14n != "c14n10"
    transform_prefixes = _transform_prefixes(layout) if layout.c14n in ("exc-prefixes-transforms",
                                                                        "exc-prefixes-both") else []
    hash_name = "sha1" if layout.algorithm == "rsa-sha1" else "sha256"
    ids = {element.get(_id_qname(layout.id_attr)): element for element in envelope.iter()
           if element.get(_id_qname(layout.id_attr))}
    signed_info = signature[0]
    for reference in signed_info.iter(_q(DS, "Reference")):
        target = ids[reference.get("URI", "")[1:]]
        digest = hashlib.new(hash_name, _c14n(target, exclusive, transform_prefixes)).digest()
        reference.find(_q(DS, "DigestValue")).text = base64.b64encode(digest).decode()  # type: ignore[union-attr]
    si_prefixes = _signed_info_prefixes(layout) if layout.c14n in ("exc-prefixes-signedinfo",
                                                                   "exc-prefixes-both") else []
    value = signer.sign(_c14n(signed_info, exclusive, si_prefixes), layout.algorithm)
    signature.find(_q(DS, "SignatureValue")).text = base64.b64encode(value).decode()  # type: ignore[union-attr]


# --- tampered variants: every verifier must refuse each -----------------------------------------------------------

def _find(root: etree._Element, local: str, namespace: str) -> etree._Element:
    found = next(root.iter(_q(namespace, local)), None)
    assert found is not None, local
    return found


def _body(root: etree._Element) -> etree._Element:
    return root[1]


def _applies_to(body: etree._Element) -> etree._Element:
    return _find(body, "Address", ns.WSA)


def _change_body_byte(root: etree._Element) -> None:
    address = _applies_to(_body(root))
    address.text = (address.text or "").replace("://", ":/")


def _change_timestamp_byte(root: etree._Element) -> None:
    created = _find(root, "Created", ns.WSU)
    text = created.text or ""
    created.text = text[:-2] + ("1" if text[-2] != "1" else "2") + "Z"  # one millisecond digit


def _change_signed_info_byte(root: etree._Element) -> None:
    digest = _find(root, "DigestValue", DS)  # the Body's: a byte of SignedInfo itself
    text = digest.text or ""
    digest.text = ("B" if text[0] != "B" else "C") + text[1:]


def _repoint_reference(root: etree._Element) -> None:
    reference = _find(root, "Reference", DS)  # Body -> Timestamp
    reference.set("URI", "#id-ts")


def _repoint_with_new_id(root: etree._Element) -> None:
    """The Body's Reference and the Body's Id both renamed: digests still match, SignedInfo no longer does."""
    reference = _find(root, "Reference", DS)
    body = _body(root)
    name = next(attribute for attribute in body.attrib if body.get(attribute) == "id-body")
    body.set(name, "id-body2")
    reference.set("URI", "#id-body2")


def _move_body(root: etree._Element) -> None:
    """XSW: the signed Body goes into a wrapper header, an unsigned Body with another RST takes its place."""
    body = _body(root)
    wrapper = etree.SubElement(root[0], "{urn:attacker}Wrapper")
    forged = copy.deepcopy(body)
    for name in list(forged.attrib):
        del forged.attrib[name]
    _applies_to(forged).text = "https://evil.example/"
    root.replace(body, forged)
    wrapper.append(body)


def _duplicate_body(root: etree._Element) -> None:
    """XSW with a duplicate ID: the signed Body kept in a wrapper header, the envelope's Body (same Id) changed."""
    body = _body(root)
    wrapper = etree.SubElement(root[0], "{urn:attacker}Wrapper")
    wrapper.append(copy.deepcopy(body))
    _applies_to(body).text = "https://evil.example/"


TAMPERS: dict[str, Callable[[etree._Element], None]] = {
    "body-byte": _change_body_byte,
    "timestamp-byte": _change_timestamp_byte,
    "signedinfo-byte": _change_signed_info_byte,
    "reference-repointed": _repoint_reference,
    "reference-renamed": _repoint_with_new_id,
    "body-moved": _move_body,
    "body-duplicated": _duplicate_body,
}


def tamper(built: Built, how: str) -> bytes:
    root = copy.deepcopy(built.root)
    TAMPERS[how](root)
    return etree.tostring(root)


def layouts(full: bool) -> Iterator[Layout]:
    yield from (full_product() if full else pairwise())
