"""WS-MetadataExchange for the AD FS-compatible endpoints (``{base}/adfs/services/trust/mex``, ``/services/sts/mex``).

Specs: WS-MetadataExchange 2004/09 (``wsx:Metadata``/``wsx:MetadataSection``), WS-Transfer 2004/09 (Get /
GetResponse), WSDL 1.1 + SOAP 1.2 binding, WS-SecurityPolicy 1.2 and 2005/07.

The shape copies what AD FS publishes (see the adal-python and apache-cxf fixtures), because clients such as msal
read it with fixed paths rather than a policy engine (``msal/mex.py``):

* ``wsp:Policy`` elements are direct children of ``wsdl:definitions``, with
  ``ExactlyOne/All/sp:SignedEncryptedSupportingTokens/.../sp:WssUsernameToken10`` (SP 1.2) or
  ``sp2005:SignedSupportingTokens/...`` (SP 2005/07) and a ``TransportBinding`` somewhere inside;
* every ``wsdl:binding`` has a ``soap12:binding`` (msal dereferences it without a check: a SOAP 1.1 binding
  here would crash it), its first operation's ``soapAction`` is the Issue action, and it references the policy;
* every port has a ``wsa10:EndpointReference/wsa10:Address``, which msal keeps only when it is ``https://``.

When the server asks TLS clients for a certificate (``certificate_transport=True``, https bases only), the
``certificatetransport`` endpoints follow the usernamemixed ones: same portTypes, a policy that is a bare
``sp:TransportBinding`` whose ``sp:HttpsToken`` requires a client certificate (SP 1.2 §5.4.10 nests
``sp:RequireClientCertificate``; SP 2005/07 sets ``RequireClientCertificate="true"``, as AD FS publishes) and
no supporting token, so msal's username lookup never picks them.

``GET`` on the MEX URL returns the bare ``wsdl:definitions`` (:func:`render_mex_wsdl`), as AD FS does and as msal
expects; a WS-Transfer Get returns it wrapped in ``wsx:Metadata`` inside a SOAP envelope
(:func:`render_mex_response`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lxml import etree
from lxml.builder import ElementMaker

from sts import ns
from sts.uris import RequestType, TrustVersion
from sts.web.metadata import base, xsd_url
from sts.web.metadata.wsdl import (
    TRUST_XSD,
    WSP,
    W,
    build_message,
    build_operation_io,
    build_port,
    build_soap_binding,
    build_client_policy,
    build_types,
    is_https,
    tidy_namespaces,
)

#: AD FS's WSDL namespace; kept so that tools which compare names with AD FS's see the familiar ones.
MEX_TNS = "http://schemas.microsoft.com/ws/2008/06/identity/securitytokenservice"

TRANSFER_GET = f"{ns.WXF}/Get"
TRANSFER_GET_RESPONSE = f"{ns.WXF}/GetResponse"
DIALECT_WSDL = ns.WSDL
DIALECT_XSD = ns.XSD

ADFS_TRUST_PATH = "/adfs/services/trust"

_MEX_NSMAP = {
    "wsdl": ns.WSDL,
    "soap12": ns.WSDL_SOAP12,
    "xsd": ns.XSD,
    "tns": MEX_TNS,
    "trust": ns.WST13,
    "t": ns.WST2005,
    "wsp": ns.WSP12,
    "wsu": ns.WSU,
    "sp": ns.SP12,
    "sp2005": ns.SP2005,
    "wsam": ns.WSAM,
    "wsaw": ns.WSAW,
    "wsa10": ns.WSA,
}

WSX = ElementMaker(namespace=ns.MEX, nsmap={"wsx": ns.MEX})


@dataclass(frozen=True)
class _UsernameMixed:
    """One AD FS ``usernamemixed`` endpoint: its contract names follow AD FS's WSDL."""

    version: TrustVersion
    contract: str  # AD FS portType name
    operation: str
    path: str  # under {base}/adfs/services/trust
    input_element: str
    output_element: str
    binding_prefix: str = "UserNameWSTrustBinding"

    @property
    def binding(self) -> str:
        return f"{self.binding_prefix}_{self.contract}"

    @property
    def policy_id(self) -> str:
        return f"{self.binding}_policy"

    @property
    def certificate_transport(self) -> _UsernameMixed:
        """The ``certificatetransport`` endpoint of the same contract (the TLS client certificate authenticates)."""
        return replace(self, path=self.path.replace("/usernamemixed", "/certificatetransport"),
                       binding_prefix="CertificateTransportWSTrustBinding")


_ENDPOINTS = (
    # 1.3 first: msal prefers it anyway, and other clients take the first usable port.
    _UsernameMixed(
        TrustVersion.WST13,
        "IWSTrust13Async",
        "Trust13IssueAsync",
        "/13/usernamemixed",
        "trust:RequestSecurityToken",
        "trust:RequestSecurityTokenResponseCollection",
    ),
    _UsernameMixed(
        TrustVersion.WST2005,
        "IWSTrustFeb2005Async",
        "TrustFeb2005IssueAsync",
        "/2005/usernamemixed",
        "t:RequestSecurityToken",
        "t:RequestSecurityTokenResponse",
    ),
)


def usernamemixed_url(base_url: str, version: TrustVersion) -> str:
    """``{base}/adfs/services/trust/13/usernamemixed`` or ``.../2005/usernamemixed``."""
    endpoint = next(e for e in _ENDPOINTS if e.version is version)
    return base(base_url) + ADFS_TRUST_PATH + endpoint.path


def certificatetransport_url(base_url: str, version: TrustVersion) -> str:
    """``{base}/adfs/services/trust/13/certificatetransport`` or ``.../2005/certificatetransport``."""
    endpoint = next(e for e in _ENDPOINTS if e.version is version)
    return base(base_url) + ADFS_TRUST_PATH + endpoint.certificate_transport.path


def build_certificate_transport_policy(policy_id: str, version: TrustVersion) -> etree._Element:
    """``wsp:Policy``: HTTPS with a client certificate, nothing at the message level (AD FS's certificatetransport)."""
    sp_ns = ns.SP12 if version is TrustVersion.WST13 else ns.SP2005

    def nested(local: str, *children: etree._Element) -> etree._Element:
        element = etree.Element(ns.qn(sp_ns, local))
        element.append(WSP.Policy(*children))
        return element

    if sp_ns == ns.SP12:
        https_token = nested("HttpsToken", etree.Element(ns.qn(sp_ns, "RequireClientCertificate")))
    else:
        https_token = etree.Element(ns.qn(sp_ns, "HttpsToken"), RequireClientCertificate="true")
    binding = nested(
        "TransportBinding",
        nested("TransportToken", https_token),
        nested("AlgorithmSuite", etree.Element(ns.qn(sp_ns, "Basic256Sha256"))),
        nested("Layout", etree.Element(ns.qn(sp_ns, "Strict"))),
    )
    policy = WSP.Policy(WSP.ExactlyOne(WSP.All(binding, etree.Element(ns.qn(ns.WSAW, "UsingAddressing")))))
    policy.set(ns.qn(ns.WSU, "Id"), policy_id)
    return policy


def _messages(e: _UsernameMixed) -> list[etree._Element]:
    return [
        build_message(f"{e.contract}_{e.operation}_InputMessage", "request", e.input_element),
        build_message(f"{e.contract}_{e.operation}_OutputMessage", f"{e.operation}Result", e.output_element),
    ]


def _port_type(e: _UsernameMixed) -> etree._Element:
    issue = RequestType.ISSUE
    return W.portType(
        build_operation_io(
            e.operation,
            issue.request_action(e.version),
            issue.response_action(e.version),
            f"tns:{e.contract}_{e.operation}_InputMessage",
            f"tns:{e.contract}_{e.operation}_OutputMessage",
        ),
        name=e.contract,
    )


def render_mex_wsdl(
    base_url: str,
    versions: tuple[TrustVersion, ...] = (TrustVersion.WST13, TrustVersion.WST2005),
    client_proof: str = "username",
    *,
    certificate_transport: bool = False,
) -> etree._Element:
    """The AD FS-shaped ``wsdl:definitions`` describing the ``usernamemixed`` endpoints (the HTTP GET body).

    ``versions`` selects which endpoints are described (both by default, 1.3 first). ``client_proof`` (setting
    of that name) adds the X.509 signature alternative ("either") or replaces the UsernameToken ("signature",
    which msal then rightly finds no username endpoint in). ``certificate_transport`` adds the
    ``certificatetransport`` endpoints after them (https bases only: the client certificate is TLS's).
    """
    endpoints = [e for e in _ENDPOINTS if e.version in versions]
    https = is_https(base_url)
    transport = [e.certificate_transport for e in endpoints] if certificate_transport and https else []
    definitions = etree.Element(
        ns.qn(ns.WSDL, "definitions"), nsmap=_MEX_NSMAP, name="SecurityTokenService", targetNamespace=MEX_TNS
    )
    for e in endpoints:
        # SP 1.2's SignedEncryptedSupportingTokens is the exact assertion msal looks for (AD FS publishes it).
        definitions.append(
            build_client_policy(e.policy_id, e.version, https=https, client_proof=client_proof, encrypted_tokens=True)
        )
    definitions.extend(build_certificate_transport_policy(e.policy_id, e.version) for e in transport)
    definitions.append(build_types(base_url, tuple(e.version for e in endpoints)))
    for e in endpoints:
        definitions.extend(_messages(e))
    definitions.extend(_port_type(e) for e in endpoints)
    for e in endpoints + transport:
        operations = [(e.operation, RequestType.ISSUE.request_action(e.version))]
        definitions.append(
            build_soap_binding(e.binding, f"tns:{e.contract}", ns.WSDL_SOAP12, operations, e.policy_id)
        )
    service = etree.SubElement(definitions, ns.qn(ns.WSDL, "service"), name="SecurityTokenService")
    for e in endpoints + transport:
        address = base(base_url) + ADFS_TRUST_PATH + e.path
        service.append(build_port(e.binding, f"tns:{e.binding}", ns.WSDL_SOAP12, address))
    return tidy_namespaces(definitions)


def _schema_section(base_url: str, version: TrustVersion) -> etree._Element:
    # By reference (wsx:Location) rather than inline: the STS serves every XSD at ?xsd=NAME anyway.
    return WSX.MetadataSection(
        WSX.Location(xsd_url(base_url, TRUST_XSD[version])), Dialect=DIALECT_XSD, Identifier=version.ns
    )


def render_mex(base_url: str, client_proof: str = "username", *, certificate_transport: bool = False) -> etree._Element:
    """``wsx:Metadata``: the WSDL section plus one XML Schema section per WS-Trust version (by location)."""
    wsdl = render_mex_wsdl(base_url, client_proof=client_proof, certificate_transport=certificate_transport)
    metadata = WSX.Metadata(WSX.MetadataSection(wsdl, Dialect=DIALECT_WSDL, Identifier=MEX_TNS))
    for version in (TrustVersion.WST13, TrustVersion.WST2005):
        metadata.append(_schema_section(base_url, version))
    return metadata


def render_mex_response(base_url: str, soap_ns: str, relates_to: str | None, client_proof: str = "username", *,
                        certificate_transport: bool = False) -> bytes:
    """The WS-Transfer GetResponse envelope (SOAP 1.1 or 1.2 by ``soap_ns``) carrying :func:`render_mex`."""
    if soap_ns not in (ns.SOAP11, ns.SOAP12):
        raise ValueError(f"not a SOAP envelope namespace: {soap_ns!r}")
    s = ElementMaker(namespace=soap_ns, nsmap={"s": soap_ns, "a": ns.WSA})
    a = ElementMaker(namespace=ns.WSA)
    action = a.Action(TRANSFER_GET_RESPONSE)
    # SOAP 1.1 spells mustUnderstand "1" only; SOAP 1.2 accepts "1" too, so one value serves both (as AD FS does).
    action.set(ns.qn(soap_ns, "mustUnderstand"), "1")
    header = s.Header(action)
    if relates_to is not None:
        header.append(a.RelatesTo(relates_to))
    envelope = s.Envelope(header, s.Body(render_mex(base_url, client_proof,
                                                    certificate_transport=certificate_transport)))
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


class MetadataExchange:
    """The one MEX answer behind every route: ``GET`` and WS-Transfer Get on ``/services/sts/mex`` and
    ``/adfs/services/trust/mex``, and a WS-Transfer Get posted to any SOAP endpoint.

    Built once per process; each document is rendered once per variant. ``certificate_transport`` (the TLS layer
    asks clients for a certificate) adds the ``certificatetransport`` endpoints, whichever route is asked.
    """

    def __init__(self, base_url: str, client_proof: str = "username") -> None:
        self.base_url = base_url
        self.client_proof = client_proof
        self._wsdl: dict[bool, bytes] = {}

    def wsdl(self, *, certificate_transport: bool) -> bytes:
        """The bare ``wsdl:definitions`` (the answer to ``GET``, as AD FS gives it and msal expects)."""
        document = self._wsdl.get(certificate_transport)
        if document is None:
            root = render_mex_wsdl(self.base_url, client_proof=self.client_proof,
                                   certificate_transport=certificate_transport)
            document = self._wsdl[certificate_transport] = bytes(
                etree.tostring(root, encoding="utf-8", xml_declaration=True))
        return document

    def get_response(self, soap_ns: str, relates_to: str | None, *, certificate_transport: bool) -> bytes:
        """The WS-Transfer GetResponse envelope (the answer to a WS-Transfer Get, whichever path it was sent to)."""
        return render_mex_response(self.base_url, soap_ns, relates_to, self.client_proof,
                                   certificate_transport=certificate_transport)
