"""Parse wst:RequestSecurityToken (WS-Trust 2005/02, 1.3 §3.1, 1.4 additions) into a frozen model.

Tolerant in: the version comes from the RST's namespace; 1.4 (200802) elements may appear inside a 1.3 RST;
AppliesTo in WS-Policy 1.2, 1.5 or 2006/07 with a wsa 1.0 or 2004/08 EndpointReference (or wsp:URI); Claims with
the Dialect attribute qualified or not, in the identity, WS-Federation authorization and WSO2 dialects; the three
Bearer spellings and NoProofKey. Elements the spec lets an STS ignore are ignored; elements it defines that this
STS does not implement yet are refused with ``wst:BadRequest`` naming the element.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable

from lxml import etree

from sts import ns
from sts.errors import BadRequest, InvalidRequest, UnsupportedClaimsDialect
from sts.model import ClaimRequest, EncryptedSecret, Entropy, Lifetime, Renewing, RequestSecurityToken, TokenTarget, UseKey
from sts.uris import KeyType, RequestType, TokenType, TrustVersion
from sts.xmltime import parse_datetime

_TRUST_NS = {v.value: v for v in TrustVersion}
_POLICY_NS = frozenset({ns.WSP12, ns.WSP15, ns.WSP2006})
_WSA_NS = (ns.WSA, ns.WSA2004)
_TRUE = frozenset({"1", "true"})
#: xs:boolean's lexical forms (case tolerated: "True" is a common slip, not an ambiguity).
_BOOLEAN = frozenset({"1", "true", "0", "false"})
#: Claims dialects this STS reads: the identity dialect (ws/2005/05/identity), the WS-Federation authorization
#: dialect (its namespace, and the ``/authclaims`` URI WS-Federation 1.2 names for it) and WSO2's. A Claims
#: element without a Dialect is read as before (tolerance).
CLAIMS_DIALECTS = frozenset({ns.IDENTITY, ns.AUTH, f"{ns.AUTH}/authclaims", ns.WSO2_CLAIMS})

#: Elements whose absence or "false" value is all this STS can honour: a true value is refused.
_FALSE_ONLY = frozenset({"Forwardable", "Delegatable"})
#: Elements defined by WS-Trust that this STS cannot honour: refused with wst:BadRequest naming them.
_UNSUPPORTED = frozenset({
    "DelegateTo", "Participants", "Encryption", "ProofEncryption", "BinaryExchange", "KeyExchangeToken",
    "Authenticator", "RequestSecurityTokenCollection", "Status", "Code", "Reason",
})
#: Algorithm choices the requester relies on; the service honours them or refuses them by name.
ALGORITHM_ELEMENTS = frozenset({
    "SignatureAlgorithm", "EncryptionAlgorithm", "CanonicalizationAlgorithm", "KeyWrapAlgorithm", "SignWith",
    "EncryptWith",
})
_TARGETS = {
    "RenewTarget": "renew_target", "CancelTarget": "cancel_target", "ValidateTarget": "validate_target",
    "OnBehalfOf": "on_behalf_of", "ActAs": "act_as",
}
_BATCH_PREFIX = "Batch"
#: Every RequestType URI of both versions, plain and Batch*, resolved once: a message names one of these.
_REQUEST_TYPE_URIS: dict[str, tuple[RequestType, TrustVersion, bool]] = {
    version.uri(f"{batch}{request_type.value}"): (request_type, version, bool(batch))
    for version in TrustVersion for request_type in RequestType for batch in ("", _BATCH_PREFIX)
}
_ADDRESS_TAGS = tuple(ns.qn(n, "Address") for n in _WSA_NS)
_XENC_ENCRYPTED_KEY = ns.qn(ns.XENC, "EncryptedKey")
_XENC_ENCRYPTION_METHOD = ns.qn(ns.XENC, "EncryptionMethod")
_DS_DIGEST_METHOD = ns.qn(ns.DS, "DigestMethod")
_DS_KEY_INFO = ns.qn(ns.DS, "KeyInfo")
_WSSE_BINARY_SECURITY_TOKEN = ns.qn(ns.WSSE, "BinarySecurityToken")
_WSSE_SECURITY_TOKEN_REFERENCE = ns.qn(ns.WSSE, "SecurityTokenReference")
_WSSE_REFERENCE = ns.qn(ns.WSSE, "Reference")
_WSSE_KEY_IDENTIFIER = ns.qn(ns.WSSE, "KeyIdentifier")
_WSU_CREATED = ns.qn(ns.WSU, "Created")
_WSU_EXPIRES = ns.qn(ns.WSU, "Expires")
_AUTH_VALUE = ns.qn(ns.AUTH, "Value")


def trust_version_of(element: etree._Element) -> TrustVersion:
    """The WS-Trust version an RST (or RSTR) element belongs to; anything else is an invalid request."""
    return _version_and_local(element)[0]


def _version_and_local(element: etree._Element) -> tuple[TrustVersion, str]:
    namespace, local = ns.split_qn(element.tag)
    version = _TRUST_NS.get(namespace)
    if version is None:
        raise InvalidRequest("body is not a WS-Trust message", detail=local)
    return version, local


def parse_rst_collection(element: etree._Element) -> tuple[RequestSecurityToken, ...]:
    """A wst:RequestSecurityTokenCollection (batch): every RST in it must carry a Batch* RequestType."""
    version = trust_version_of(element)
    requests = tuple(parse_rst(child) for child in _elements(element))
    if not requests:
        raise InvalidRequest("empty RequestSecurityTokenCollection", detail="RequestSecurityTokenCollection")
    for rst in requests:
        if rst.version is not version or not rst.batch:
            raise InvalidRequest("a batch holds only Batch* requests of its version", detail="RequestType")
    return requests


def is_collection(element: etree._Element) -> bool:
    return ns.split_qn(element.tag)[1] == "RequestSecurityTokenCollection"


def parse_rst(element: etree._Element) -> RequestSecurityToken:
    """Turn an untrusted wst:RequestSecurityToken element into a ``RequestSecurityToken``."""
    version, local = _version_and_local(element)
    if local != "RequestSecurityToken":
        raise InvalidRequest("body is not a RequestSecurityToken", detail=local)
    fields = _read_children(element, version, secondary=False)
    if "request_type" not in fields:
        raise InvalidRequest("RequestType is missing", detail="RequestType")
    return RequestSecurityToken(version=version, context=element.get("Context"), **fields)  # type: ignore[arg-type]


def _read_children(parent: etree._Element, version: TrustVersion, *, secondary: bool) -> dict[str, object]:
    """One pass over the children: each recognised element fills one field, once."""
    fields: dict[str, object] = {}
    secondary_fields: dict[str, object] = {}
    for child in _elements(parent):
        namespace, local = ns.split_qn(child.tag)
        if namespace in _POLICY_NS and local == "AppliesTo":
            _set_once(fields, "applies_to", _applies_to(child), local)
            fields["applies_to_ns"] = namespace
        elif namespace == version.value or (namespace == ns.WST14 and version is TrustVersion.WST13):
            _read_trust_child(child, local, version, fields, secondary_fields, secondary)
        elif namespace in _TRUST_NS or namespace == ns.WST14:
            raise InvalidRequest("WS-Trust versions mixed in one request", detail=local)
        # Elements of other namespaces are extensions (xs:any): ignored, as the schema allows.
    for key, value in secondary_fields.items():
        fields.setdefault(key, value)
    return fields


def _read_trust_child(
    child: etree._Element,
    local: str,
    version: TrustVersion,
    fields: dict[str, object],
    secondary_fields: dict[str, object],
    secondary: bool,
) -> None:
    if local == "SecondaryParameters" and version is TrustVersion.WST13 and not secondary:
        # 1.3 §3.1: parameters the requester copied from the RP's policy; explicit RST elements win.
        secondary_fields.update(_read_children(child, version, secondary=True))
        for key in ("applies_to", "applies_to_ns", "request_type", "batch"):
            secondary_fields.pop(key, None)
        return
    if local == "RequestType" and secondary:
        return
    reader = _READERS.get(local)
    if reader is not None:
        for key, value in reader(child).items():
            if key in fields and key not in _COMPANIONS:
                raise InvalidRequest(f"{local} appears twice", detail=local)
            fields[key] = value
        if local == "RequestType" and _request_version(child) is not version:
            raise InvalidRequest("RequestType of another WS-Trust version", detail=_text(child, local))
    elif local in ALGORITHM_ELEMENTS:
        algorithms = fields.get("algorithms", ())
        fields["algorithms"] = (*algorithms, (local, _text(child, local)))  # type: ignore[misc]
    elif local in _FALSE_ONLY:
        if (child.text or "true").strip().lower() in _TRUE:
            raise BadRequest(f"{local} tokens are not issued", detail=local)
    elif local in _UNSUPPORTED:
        raise BadRequest(f"unsupported element {local}", detail=local)
    else:
        raise BadRequest(f"unknown WS-Trust element {local}", detail=local)


#: Fields written together with another one by the same reader (never a duplicate on their own).
_COMPANIONS = frozenset({"token_type", "applies_to_ns", "claims_dialect", "key_type_uri", "batch"})


def _request_version(element: etree._Element) -> TrustVersion:
    return _request_type(_text(element, "RequestType"))[1]


def _request_type(uri: str) -> tuple[RequestType, TrustVersion, bool]:
    """A RequestType URI -> (binding, version, batch?); ``.../BatchIssue`` is an Issue inside a batch."""
    known = _REQUEST_TYPE_URIS.get(uri)
    if known is not None:
        return known
    # Anything else is refused below, with the reason naming the URI as before.
    for version in TrustVersion:
        prefix = f"{version.value}/{_BATCH_PREFIX}"
        if uri.startswith(prefix):
            request_type, _ = RequestType.parse(version.uri(uri[len(prefix):]))
            return request_type, version, True
    request_type, version = RequestType.parse(uri)
    return request_type, version, False


def _read_token_type(child: etree._Element) -> dict[str, object]:
    uri = _text(child, "TokenType")
    # RSTR/Status (Validate) asks for a status, not a token: kept as a URI only.
    return {"token_type_uri": uri, "token_type": None if uri.endswith("/RSTR/Status") else TokenType.parse(uri)}


def _read_request_type(child: etree._Element) -> dict[str, object]:
    request_type, _version, batch = _request_type(_text(child, "RequestType"))
    return {"request_type": request_type, "batch": batch}


def _read_claims(child: etree._Element) -> dict[str, object]:
    dialect, claims = _claims(child)
    return {"claims": claims, "claims_dialect": dialect}


def _read_key_type(child: etree._Element) -> dict[str, object]:
    uri = _text(child, "KeyType")
    return {"key_type": KeyType.parse(uri), "key_type_uri": uri}


def _read_key_size(child: etree._Element) -> dict[str, object]:
    text = _text(child, "KeySize")
    if not text.isdigit() or len(text) > 6:
        raise InvalidRequest("KeySize is not a number of bits", detail="KeySize")
    return {"key_size": int(text)}


def _read_entropy(child: etree._Element) -> dict[str, object]:
    (inner,) = _only_child(child, "Entropy")
    local = ns.split_qn(inner.tag)[1]
    if local == "BinarySecret":
        return {"entropy": Entropy(binary_secret=_base64(inner, "BinarySecret"))}
    if inner.tag == _XENC_ENCRYPTED_KEY:
        return {"entropy": Entropy(encrypted_key=parse_encrypted_key(inner))}
    raise BadRequest("unsupported Entropy content", detail=local)


def parse_encrypted_key(encrypted_key: etree._Element) -> EncryptedSecret:
    """An xenc:EncryptedKey as the service decides on it: algorithms as written, the cipher value's bytes.

    A missing or malformed CipherValue reads as empty: it then fails to decrypt, with the same public answer as
    any other entropy that does not decrypt (no oracle on why).
    """
    method = encrypted_key.find(_XENC_ENCRYPTION_METHOD)
    digest = method.find(_DS_DIGEST_METHOD) if method is not None else None
    value = encrypted_key.findtext(f"{{{ns.XENC}}}CipherData/{{{ns.XENC}}}CipherValue") or ""
    try:
        cipher = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        cipher = b""
    return EncryptedSecret(
        algorithm=(method.get("Algorithm") or "").strip() if method is not None else "",
        cipher_value=cipher,
        digest_algorithm=digest.get("Algorithm") if digest is not None else None,
    )


def _read_use_key(child: etree._Element) -> dict[str, object]:
    (inner,) = _only_child(child, "UseKey")
    if inner.tag == _WSSE_BINARY_SECURITY_TOKEN:
        return {"use_key": UseKey(certificate_der=_base64(inner, "BinarySecurityToken"))}
    if inner.tag == _WSSE_SECURITY_TOKEN_REFERENCE:
        return {"use_key": UseKey(token_reference=_local_reference(inner))}
    key_info = inner if inner.tag == _DS_KEY_INFO else None
    holder = key_info if key_info is not None else child
    cert = holder.find(f"{{{ns.DS}}}X509Data/{{{ns.DS}}}X509Certificate")
    if cert is None:  # PicketLink puts a bare ds:X509Certificate into UseKey
        cert = holder.find(f"{{{ns.DS}}}X509Certificate")
    if cert is not None:
        return {"use_key": UseKey(certificate_der=_base64(cert, "X509Certificate"))}
    rsa = holder.find(f"{{{ns.DS}}}KeyValue/{{{ns.DS}}}RSAKeyValue")
    if rsa is not None:
        modulus, exponent = rsa.find(f"{{{ns.DS}}}Modulus"), rsa.find(f"{{{ns.DS}}}Exponent")
        if modulus is None or exponent is None:
            raise InvalidRequest("RSAKeyValue without Modulus and Exponent", detail="RSAKeyValue")
        return {"use_key": UseKey(
            rsa_modulus=int.from_bytes(_base64(modulus, "Modulus"), "big"),
            rsa_exponent=int.from_bytes(_base64(exponent, "Exponent"), "big"),
        )}
    raise BadRequest("UseKey must carry an X.509 certificate or an RSA KeyValue", detail="UseKey")


def _local_reference(str_element: etree._Element) -> str:
    """The Id a UseKey's SecurityTokenReference names with ``wsse:Reference URI="#Id"`` (as WSS4J sends it).

    Only that form is understood: a KeyIdentifier or an external URI names no token of this request."""
    reference = str_element.find(_WSSE_REFERENCE)
    uri = (reference.get("URI") or "").strip() if reference is not None else ""
    if not uri.startswith("#") or len(uri) < 2:
        raise BadRequest("UseKey's SecurityTokenReference is not a Reference to a token of the request",
                         detail='UseKey SecurityTokenReference: only Reference URI="#Id" is supported')
    return uri[1:]


def _read_renewing(child: etree._Element) -> dict[str, object]:
    allow = (child.get("Allow") or "true").strip().lower() in _TRUE
    ok = (child.get("OK") or "false").strip().lower() in _TRUE
    return {"renewing": Renewing(allow=allow, ok=ok)}


def _read_target(child: etree._Element) -> dict[str, object]:
    local = ns.split_qn(child.tag)[1]
    (inner,) = _only_child(child, local)
    if inner.tag == _WSSE_SECURITY_TOKEN_REFERENCE:
        return {_TARGETS[local]: TokenTarget(reference=_reference(inner))}
    # The element as parsed with the request: validators read it as it is, nothing parses it again.
    return {_TARGETS[local]: TokenTarget(unverified_token=inner)}


def _reference(str_element: etree._Element) -> str:
    """The token id a wsse:SecurityTokenReference names (KeyIdentifier or Reference URI)."""
    key_id = str_element.find(_WSSE_KEY_IDENTIFIER)
    if key_id is not None:
        return _text(key_id, "KeyIdentifier")
    reference = str_element.find(_WSSE_REFERENCE)
    if reference is not None and (reference.get("URI") or "").strip():
        return (reference.get("URI") or "").strip().removeprefix("#")
    raise InvalidRequest("SecurityTokenReference names no token", detail="SecurityTokenReference")


def _read_authentication_type(child: etree._Element) -> dict[str, object]:
    return {"authentication_type": _text(child, "AuthenticationType")}


def _read_issuer(child: etree._Element) -> dict[str, object]:
    for address in child.iter(*_ADDRESS_TAGS):
        return {"issuer": _text(address, "Address")}
    return {"issuer": _text(child, "Issuer")}


def _read_allow_postdating(child: etree._Element) -> dict[str, object]:
    return {"allow_postdating": True}


_READERS: dict[str, Callable[[etree._Element], dict[str, object]]] = {
    "TokenType": _read_token_type,
    "RequestType": _read_request_type,
    "Lifetime": lambda child: {"lifetime": _lifetime(child)},
    "Claims": _read_claims,
    "KeyType": _read_key_type,
    "KeySize": _read_key_size,
    "Entropy": _read_entropy,
    "ComputedKeyAlgorithm": lambda child: {"computed_key_algorithm": _text(child, "ComputedKeyAlgorithm")},
    "UseKey": _read_use_key,
    "Renewing": _read_renewing,
    "AllowPostdating": _read_allow_postdating,
    "AuthenticationType": _read_authentication_type,
    "Issuer": _read_issuer,
    **{local: _read_target for local in _TARGETS},
}


def _only_child(element: etree._Element, local: str) -> list[etree._Element]:
    children = list(_elements(element))
    if len(children) != 1:
        raise InvalidRequest(f"{local} must hold exactly one element", detail=local)
    return children


def _base64(element: etree._Element, local: str) -> bytes:
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{local} is not base64", detail=local) from None


def _elements(parent: etree._Element) -> Iterable[etree._Element]:
    """The element children, in order: comments, processing instructions and entity references are skipped."""
    children: Iterable[etree._Element] = parent.iterchildren(etree.Element)
    return children


def _set_once(fields: dict[str, object], key: str, value: object, local: str) -> None:
    if key in fields:
        raise InvalidRequest(f"{local} appears twice", detail=local)
    fields[key] = value


def _text(element: etree._Element, local: str) -> str:
    text = (element.text or "").strip()
    if not text:
        raise InvalidRequest(f"{local} is empty", detail=local)
    return text


def _applies_to(element: etree._Element) -> str:
    for child in _elements(element):
        namespace, local = ns.split_qn(child.tag)
        if namespace in _WSA_NS and local == "EndpointReference":
            for address in _elements(child):
                if address.tag in _ADDRESS_TAGS:
                    return _text(address, "Address")
        elif namespace in _POLICY_NS and local == "URI":
            return _text(child, "URI")
    raise InvalidRequest("AppliesTo has no EndpointReference/Address", detail="AppliesTo")


def _lifetime(element: etree._Element) -> Lifetime:
    try:
        created = element.findtext(_WSU_CREATED)
        expires = element.findtext(_WSU_EXPIRES)
        return Lifetime(
            created=parse_datetime(created) if created is not None else None,
            expires=parse_datetime(expires) if expires is not None else None,
        )
    except ValueError:
        raise InvalidRequest("malformed Lifetime", detail="Lifetime") from None


def _claims(element: etree._Element) -> tuple[str | None, tuple[ClaimRequest, ...]]:
    dialect = element.get("Dialect") or next(
        (value for name, value in element.attrib.items() if ns.split_qn(name)[1] == "Dialect"), None)
    if dialect is not None and dialect.strip() not in CLAIMS_DIALECTS:
        # Silence here would issue a token without the claims asked for in a dialect we do not read.
        raise UnsupportedClaimsDialect(f"claims dialect {dialect!r}", detail=dialect)
    claims = []
    for child in _elements(element):
        if ns.split_qn(child.tag)[1] != "ClaimType":
            raise BadRequest("unsupported claims dialect content", detail=dialect or ns.split_qn(child.tag)[1])
        uri = (child.get("Uri") or "").strip()
        if not uri:
            raise InvalidRequest("ClaimType without Uri", detail="ClaimType")
        value = child.find(_AUTH_VALUE)
        claims.append(ClaimRequest(
            uri=uri,
            optional=_optional(child.get("Optional")),
            value=(value.text or "").strip() if value is not None else None,
        ))
    return dialect, tuple(claims)


def _optional(value: str | None) -> bool:
    """A ClaimType's Optional attribute as xs:boolean; another value is refused naming it, not read as false."""
    if value is None:
        return False
    word = value.strip().lower()
    if word not in _BOOLEAN:
        raise InvalidRequest(f"ClaimType Optional={value!r}", detail=f"ClaimType Optional={value.strip()}")
    return word in _TRUE
