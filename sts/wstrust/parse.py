"""Parse wst:RequestSecurityToken (WS-Trust 2005/02, 1.3 §3.1, 1.4 additions) into a frozen model.

Tolerant in: the version comes from the RST's namespace; 1.4 (200802) elements may appear inside a 1.3 RST;
AppliesTo in WS-Policy 1.2, 1.5 or 2006/07 with a wsa 1.0 or 2004/08 EndpointReference (or wsp:URI); Claims with
the Dialect attribute qualified or not, in the identity, WS-Federation authorization and WSO2 dialects; the three
Bearer spellings and NoProofKey. Elements the spec lets an STS ignore are ignored; elements it defines that this
STS does not implement yet are refused with ``wst:BadRequest`` naming the element.
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from .. import ns
from ..errors import BadRequest, InvalidRequest
from ..model import ClaimRequest, Lifetime, RequestSecurityToken
from ..uris import KeyType, RequestType, TokenType, TrustVersion
from ..xmltime import parse_datetime

_TRUST_NS = {v.value: v for v in TrustVersion}
_POLICY_NS = frozenset({ns.WSP12, ns.WSP15, ns.WSP2006})
_WSA_NS = (ns.WSA, ns.WSA2004)
_TRUE = frozenset({"1", "true"})

#: WS-Trust elements an STS may ignore for a Bearer Issue (hints, not requirements).
_IGNORABLE = frozenset({
    "KeySize", "SignatureAlgorithm", "EncryptionAlgorithm", "CanonicalizationAlgorithm", "ComputedKeyAlgorithm",
    "KeyWrapAlgorithm", "AuthenticationType", "Entropy", "Renewing", "Forwardable", "Delegatable", "Issuer",
    "AllowPostdating", "SignWith", "EncryptWith", "Encryption", "ProofEncryption",
})
#: Elements defined by WS-Trust that change what is issued and that this STS does not implement yet.
_UNSUPPORTED = frozenset({
    "OnBehalfOf", "ActAs", "UseKey", "RenewTarget", "CancelTarget", "ValidateTarget", "DelegateTo", "Participants",
    "BinaryExchange", "KeyExchangeToken", "Authenticator", "RequestSecurityTokenCollection",
})
_HANDLED = frozenset({
    "TokenType", "RequestType", "Lifetime", "Claims", "KeyType", "SecondaryParameters",
})


def trust_version_of(element: etree._Element) -> TrustVersion:
    """The WS-Trust version an RST (or RSTR) element belongs to; anything else is an invalid request."""
    namespace, local = ns.split_qn(element.tag)
    version = _TRUST_NS.get(namespace)
    if version is None:
        raise InvalidRequest("body is not a WS-Trust message", detail=local)
    return version


def parse_rst(element: etree._Element) -> RequestSecurityToken:
    """Turn an untrusted wst:RequestSecurityToken element into a ``RequestSecurityToken``."""
    version = trust_version_of(element)
    local = ns.split_qn(element.tag)[1]
    if local == "RequestSecurityTokenCollection":
        raise BadRequest("batch requests", detail=local)
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
    if local == "TokenType":
        uri = _text(child, local)
        _set_once(fields, "token_type_uri", uri, local)
        # RSTR/Status (Validate) is not a token type this version issues; kept as a URI only.
        fields["token_type"] = TokenType.parse(uri) if not uri.endswith("/RSTR/Status") else None
    elif local == "RequestType":
        if secondary:
            return
        request_type, request_version = RequestType.parse(_text(child, local))
        if request_version is not version:
            raise InvalidRequest("RequestType of another WS-Trust version", detail=_text(child, local))
        _set_once(fields, "request_type", request_type, local)
    elif local == "Lifetime":
        _set_once(fields, "lifetime", _lifetime(child), local)
    elif local == "Claims":
        dialect, claims = _claims(child, version)
        _set_once(fields, "claims", claims, local)
        fields["claims_dialect"] = dialect
    elif local == "KeyType":
        uri = _text(child, local)
        _set_once(fields, "key_type", KeyType.parse(uri), local)
        fields["key_type_uri"] = uri
    elif local == "SecondaryParameters" and version is TrustVersion.WST13 and not secondary:
        # 1.3 §3.1: parameters the requester copied from the RP's policy; explicit RST elements win.
        secondary_fields.update(_read_children(child, version, secondary=True))
        secondary_fields.pop("applies_to", None)
        secondary_fields.pop("applies_to_ns", None)
    elif local in _UNSUPPORTED:
        raise BadRequest(f"unsupported element {local}", detail=local)
    elif local not in _IGNORABLE and local not in _HANDLED:
        raise BadRequest(f"unknown WS-Trust element {local}", detail=local)


def _elements(parent: etree._Element) -> Iterable[etree._Element]:
    return (child for child in parent if isinstance(child.tag, str))


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
                if address.tag in (ns.qn(n, "Address") for n in _WSA_NS):
                    return _text(address, "Address")
        elif namespace in _POLICY_NS and local == "URI":
            return _text(child, "URI")
    raise InvalidRequest("AppliesTo has no EndpointReference/Address", detail="AppliesTo")


def _lifetime(element: etree._Element) -> Lifetime:
    try:
        created = element.findtext(ns.qn(ns.WSU, "Created"))
        expires = element.findtext(ns.qn(ns.WSU, "Expires"))
        return Lifetime(
            created=parse_datetime(created) if created is not None else None,
            expires=parse_datetime(expires) if expires is not None else None,
        )
    except ValueError:
        raise InvalidRequest("malformed Lifetime", detail="Lifetime") from None


def _claims(element: etree._Element, version: TrustVersion) -> tuple[str | None, tuple[ClaimRequest, ...]]:
    dialect = element.get("Dialect") or element.get(ns.qn(version.value, "Dialect"))
    claims = []
    for child in _elements(element):
        if ns.split_qn(child.tag)[1] != "ClaimType":
            raise BadRequest("unsupported claims dialect content", detail=dialect or ns.split_qn(child.tag)[1])
        uri = (child.get("Uri") or "").strip()
        if not uri:
            raise InvalidRequest("ClaimType without Uri", detail="ClaimType")
        value = child.find(ns.qn(ns.AUTH, "Value"))
        claims.append(ClaimRequest(
            uri=uri,
            optional=(child.get("Optional") or "false").strip().lower() in _TRUE,
            value=(value.text or "").strip() if value is not None else None,
        ))
    return dialect, tuple(claims)
