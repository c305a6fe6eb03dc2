"""Read an STS's WS-MetadataExchange document: which endpoints take which credentials, in which versions.

What msal and ADAL do with AD FS's ``/adfs/services/trust/mex``, done for every endpoint rather than one: a
``wsdl:definitions`` (the GET form) or a WS-Transfer GetResponse envelope whose ``mex:Metadata`` carries the
WSDL in a MetadataSection. Each ``wsdl:port`` is joined to its binding (SOAP version, the Issue action that
names the WS-Trust version) and to the policy the binding references (WS-SecurityPolicy 1.2 or 2005/07), which
says how the requester authenticates and whether the transport or the message is protected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lxml import etree

from sts import ns
from sts.uris import SoapVersion, TrustVersion
from sts.protocol.xmlsafe import parse as safe_parse

__all__ = ["MexEndpoint", "MexError", "read_mex"]

_MAX_BYTES: Final = 4 * 1024 * 1024
_WSDL_DIALECT: Final = "http://schemas.xmlsoap.org/wsdl/"
_SOAP_BINDINGS: Final = {ns.WSDL_SOAP12: SoapVersion.SOAP12, ns.WSDL_SOAP11: SoapVersion.SOAP11}
_POLICY_NS: Final = (ns.WSP12, ns.WSP15)
#: Policy assertions (local names) that name how a requester authenticates, most specific first.
_AUTHENTICATION: Final = (
    ("IssuedToken", "issued-token"), ("UsernameToken", "username"), ("KerberosToken", "windows"),
    ("SpnegoContextToken", "windows"), ("NegotiateAuthentication", "windows"), ("X509Token", "certificate"),
    ("RequireClientCertificate", "certificate"),
)


class MexError(ValueError):
    """The document is not a WSDL or a MetadataExchange answer carrying one."""


@dataclass(frozen=True)
class MexEndpoint:
    address: str
    version: TrustVersion | None           # None: the binding's actions name no WS-Trust version
    soap: SoapVersion
    authentication: str                    # username | certificate | windows | issued-token | anonymous
    security: str                          # transport | message | none

    @property
    def secure_transport(self) -> bool:
        return self.address.lower().startswith("https://")


def read_mex(document: bytes) -> list[MexEndpoint]:
    """Every SOAP endpoint the document describes, in document order."""
    root = safe_parse(document, max_bytes=_MAX_BYTES, max_depth=128)
    definitions = _definitions(root)
    policies = _policies(root)
    bindings = {b.get("name"): b for d in definitions for b in d.findall(ns.qn(ns.WSDL, "binding"))}
    endpoints = []
    for definition in definitions:
        for port in definition.iter(ns.qn(ns.WSDL, "port")):
            binding = bindings.get((port.get("binding") or "").rpartition(":")[2])
            endpoint = _endpoint(port, binding, policies) if binding is not None else None
            if endpoint is not None:
                endpoints.append(endpoint)
    return endpoints


def _definitions(root: etree._Element) -> list[etree._Element]:
    if root.tag == ns.qn(ns.WSDL, "definitions"):
        return [root]
    found = [section.find(ns.qn(ns.WSDL, "definitions"))
             for section in root.iter(ns.qn(ns.MEX, "MetadataSection"))
             if section.get("Dialect") == _WSDL_DIALECT]
    definitions = [d for d in found if d is not None]
    if not definitions:
        raise MexError(f"no WSDL in the document (root {etree.QName(root).localname})")
    return definitions


def _policies(root: etree._Element) -> dict[str, etree._Element]:
    policies: dict[str, etree._Element] = {}
    for policy_ns in _POLICY_NS:
        for policy in root.iter(ns.qn(policy_ns, "Policy")):
            policy_id = policy.get(ns.qn(ns.WSU, "Id")) or policy.get("Id")
            if policy_id:
                policies[policy_id] = policy
    return policies


def _endpoint(port: etree._Element, binding: etree._Element, policies: dict[str, etree._Element]) -> MexEndpoint | None:
    soap = next((version for binding_ns, version in _SOAP_BINDINGS.items()
                 if binding.find(ns.qn(binding_ns, "binding")) is not None), None)
    address = _address(port)
    if soap is None or address is None:
        return None
    policy = _binding_policy(binding, policies)
    return MexEndpoint(address=address, version=_version(binding), soap=soap,
                       authentication=_authentication(policy), security=_security(policy))


def _address(port: etree._Element) -> str | None:
    for wsa in (ns.WSA, ns.WSA2004):
        text: str | None = port.findtext(f"{{{wsa}}}EndpointReference/{{{wsa}}}Address")
        if text and text.strip():
            return text.strip()
    for binding_ns in _SOAP_BINDINGS:
        location = port.find(ns.qn(binding_ns, "address"))
        if location is not None and location.get("location"):
            return str(location.get("location")).strip()
    return None


def _version(binding: etree._Element) -> TrustVersion | None:
    for operation_ns in _SOAP_BINDINGS:
        for operation in binding.iter(ns.qn(operation_ns, "operation")):
            action = operation.get("soapAction") or ""
            for version in TrustVersion:
                if action.startswith(version.value + "/"):
                    return version
    return None


def _binding_policy(binding: etree._Element, policies: dict[str, etree._Element]) -> etree._Element | None:
    for policy_ns in _POLICY_NS:
        reference = binding.find(ns.qn(policy_ns, "PolicyReference"))
        if reference is not None:
            return policies.get((reference.get("URI") or "").lstrip("#"))
        inline = binding.find(ns.qn(policy_ns, "Policy"))
        if inline is not None:
            return inline
    return None


def _authentication(policy: etree._Element | None) -> str:
    if policy is None:
        return "anonymous"
    names = {etree.QName(e).localname for e in policy.iter() if isinstance(e.tag, str)}
    if any(e.get("RequireClientCertificate") == "true" for e in policy.iter()):
        names.add("RequireClientCertificate")  # SP 2005/07 says it as an HttpsToken attribute
    return next((kind for local, kind in _AUTHENTICATION if local in names), "anonymous")


def _security(policy: etree._Element | None) -> str:
    if policy is None:
        return "none"
    names = {etree.QName(e).localname for e in policy.iter() if isinstance(e.tag, str)}
    if "TransportBinding" in names:
        return "transport"
    return "message" if names & {"SymmetricBinding", "AsymmetricBinding"} else "none"
