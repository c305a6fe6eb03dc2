"""Read a service's WSDL policy for an issued token (WS-SecurityPolicy 1.2 §5.4.2 ``sp:IssuedToken``, SP 2005/07).

``read_service_policy(wsdl)`` finds the ``sp:IssuedToken`` a service demands: its issuer (``sp:Issuer/wsa:Address``),
the issuer's metadata (MEX) address, and ``sp:RequestSecurityTokenTemplate`` (TokenType, KeyType, KeySize, Claims;
every template element is kept to be copied into ``wst:SecondaryParameters``, WS-Trust 1.3 §3.1). Policies are
found on the bindings, operations and messages of the service's ports, inline or by ``wsp:PolicyReference
URI="#id"`` (WS-Policy 1.2 and 1.5); when nothing is attached there, any ``sp:IssuedToken`` in the WSDL is used.

``issue_for_policy(client, policy)`` asks the named issuer for exactly that token, with the service's endpoint
(its ``soap:address``) as AppliesTo.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

from sts import ns
from sts.uris import TrustVersion
from sts.client.transport import make_transport
from sts.protocol.xmlsafe import parse as safe_parse

__all__ = ["ClaimTemplate", "IssuedTokenPolicy", "PolicyError", "TokenTemplate", "find_issued_token_policies",
           "read_service_policy"]

_WSP = (ns.WSP12, ns.WSP15)
_SP = (ns.SP12, ns.SP2005)
_WSA = (ns.WSA, ns.WSA2004)
_SOAP_ADDRESS = (ns.qn(ns.WSDL_SOAP11, "address"), ns.qn(ns.WSDL_SOAP12, "address"))
_ID_ATTRIBUTES = (ns.qn(ns.WSU, "Id"), "{http://www.w3.org/XML/1998/namespace}id", "Id", "Name")


class PolicyError(ValueError):
    """The WSDL has no usable sp:IssuedToken policy (or is not a WSDL)."""


@dataclass(frozen=True)
class ClaimTemplate:
    uri: str
    optional: bool = False


@dataclass(frozen=True)
class TokenTemplate:
    """``sp:RequestSecurityTokenTemplate``: the parameters read, and every element (serialized) to copy."""

    trust_version: TrustVersion | None
    token_type: str | None
    key_type: str | None
    key_size: int | None
    claims_dialect: str | None
    claims: tuple[ClaimTemplate, ...]
    elements: tuple[bytes, ...]


@dataclass(frozen=True)
class IssuedTokenPolicy:
    """One ``sp:IssuedToken`` of a service: who issues the token, and what to ask for."""

    sp_namespace: str
    issuer: str | None
    issuer_metadata: str | None
    template: TokenTemplate
    service_endpoint: str | None

    @property
    def trust_version(self) -> TrustVersion:
        """The template's WS-Trust namespace; else 2005/02 for SP 2005/07 and 1.3 for SP 1.2."""
        if self.template.trust_version is not None:
            return self.template.trust_version
        return TrustVersion.WST2005 if self.sp_namespace == ns.SP2005 else TrustVersion.WST13


def read_service_policy(wsdl: str | bytes, *, transport: Any = None) -> IssuedTokenPolicy:
    """The first issued-token policy of a service WSDL (a URL loaded through zeep's transport, or the bytes)."""
    if isinstance(wsdl, str):
        if transport is None:
            transport = make_transport()
        data = bytes(transport.load(wsdl))
    else:
        data = wsdl
    try:
        root = safe_parse(data)
    except Exception as err:
        raise PolicyError(f"the service WSDL does not parse: {err}") from None
    policies = find_issued_token_policies(root)
    if not policies:
        raise PolicyError("the service WSDL has no sp:IssuedToken policy")
    return policies[0]


def find_issued_token_policies(definitions: etree._Element) -> list[IssuedTokenPolicy]:
    """Every sp:IssuedToken the service's ports demand (attached ones first; else any in the document)."""
    if definitions.tag != ns.qn(ns.WSDL, "definitions"):
        raise PolicyError(f"not a WSDL 1.1 document: {etree.QName(definitions).localname}")
    by_id = _policies_by_id(definitions)
    found: list[IssuedTokenPolicy] = []
    for endpoint, binding in _port_bindings(definitions):
        for token in _issued_tokens(_attached(binding, by_id), by_id):
            found.append(_read_issued_token(token, endpoint))
    if not found:
        endpoint = next((e for e, _ in _port_bindings(definitions)), None)
        found = [_read_issued_token(token, endpoint)
                 for token in definitions.iter(*(ns.qn(sp, "IssuedToken") for sp in _SP))]
    return found


# --- finding the policies -------------------------------------------------------------------------------------


def _policies_by_id(root: etree._Element) -> dict[str, etree._Element]:
    found: dict[str, etree._Element] = {}
    for policy in root.iter(*(ns.qn(wsp, "Policy") for wsp in _WSP)):
        for attribute in _ID_ATTRIBUTES:
            value = policy.get(attribute)
            if value:
                found.setdefault(value, policy)
    return found


def _port_bindings(root: etree._Element) -> Iterator[tuple[str | None, etree._Element]]:
    """(soap:address, binding element) for every port of every service."""
    bindings = {b.get("name"): b for b in root.iter(ns.qn(ns.WSDL, "binding"))}
    for port in root.iter(ns.qn(ns.WSDL, "port")):
        binding = bindings.get((port.get("binding") or "").rpartition(":")[2])
        address = next((a.get("location") for a in port if a.tag in _SOAP_ADDRESS), None)
        if binding is not None:
            yield address, binding


def _attached(binding: etree._Element, by_id: dict[str, etree._Element]) -> list[etree._Element]:
    """Policies attached to a binding, its operations and their messages (inline or by reference)."""
    scopes = [binding]
    for operation in binding.iter(ns.qn(ns.WSDL, "operation")):
        scopes.append(operation)
        scopes.extend(child for child in operation if isinstance(child.tag, str))
    policies: list[etree._Element] = []
    for scope in scopes:
        for child in scope:
            if child.tag in (ns.qn(wsp, "Policy") for wsp in _WSP):
                policies.append(child)
            elif child.tag in (ns.qn(wsp, "PolicyReference") for wsp in _WSP):
                target = by_id.get((child.get("URI") or "").removeprefix("#"))
                if target is not None:
                    policies.append(target)
    return policies


def _issued_tokens(policies: Iterable[etree._Element], by_id: dict[str, etree._Element]) -> list[etree._Element]:
    """The sp:IssuedToken elements inside the policies, following nested PolicyReferences once each."""
    tokens: list[etree._Element] = []
    seen: set[int] = set()
    pending = list(policies)
    while pending:
        policy = pending.pop(0)
        if id(policy) in seen:
            continue
        seen.add(id(policy))
        for element in policy.iter():
            if element.tag in (ns.qn(sp, "IssuedToken") for sp in _SP) and element not in tokens:
                tokens.append(element)
            elif element.tag in (ns.qn(wsp, "PolicyReference") for wsp in _WSP):
                target = by_id.get((element.get("URI") or "").removeprefix("#"))
                if target is not None:
                    pending.append(target)
    return tokens


# --- reading one sp:IssuedToken ---------------------------------------------------------------------------------


def _read_issued_token(token: etree._Element, endpoint: str | None) -> IssuedTokenPolicy:
    sp = etree.QName(token).namespace or ns.SP12
    issuer_el = token.find(ns.qn(sp, "Issuer"))
    issuer = issuer_metadata = None
    if issuer_el is not None:
        issuer = next((_text(a) for wsa in _WSA for a in issuer_el.findall(ns.qn(wsa, "Address"))), None)
        references = issuer_el.iter(ns.qn(ns.MEX, "MetadataReference"))
        issuer_metadata = next((_text(a) for ref in references for a in ref if etree.QName(a).localname == "Address"),
                               None)
    template = token.find(ns.qn(sp, "RequestSecurityTokenTemplate"))
    return IssuedTokenPolicy(sp_namespace=sp, issuer=issuer, issuer_metadata=issuer_metadata,
                             template=_read_template(template), service_endpoint=endpoint)


def _read_template(template: etree._Element | None) -> TokenTemplate:
    elements = [child for child in template if isinstance(child.tag, str)] if template is not None else []
    version: TrustVersion | None = None
    values: dict[str, str] = {}
    dialect: str | None = None
    claims: list[ClaimTemplate] = []
    for element in elements:
        namespace, local = etree.QName(element).namespace, etree.QName(element).localname
        if namespace in (ns.WST13, ns.WST2005):
            version = TrustVersion(namespace)
        if local == "Claims":
            dialect = element.get("Dialect")
            claims = [ClaimTemplate(uri=(c.get("Uri") or "").strip(),
                                    optional=(c.get("Optional") or "").strip().lower() in ("1", "true"))
                      for c in element if isinstance(c.tag, str) and (c.get("Uri") or "").strip()]
        elif local in ("TokenType", "KeyType", "KeySize"):
            values[local] = _text(element) or ""
    size = values.get("KeySize", "")
    return TokenTemplate(
        trust_version=version,
        token_type=values.get("TokenType") or None,
        key_type=values.get("KeyType") or None,
        key_size=int(size) if size.isdigit() else None,
        claims_dialect=dialect,
        claims=tuple(claims),
        elements=tuple(etree.tostring(copy.deepcopy(element)) for element in elements),
    )


def _text(element: etree._Element) -> str | None:
    return (element.text or "").strip() or None
