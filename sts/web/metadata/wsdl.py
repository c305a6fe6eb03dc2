"""The WSDL 1.1 of the STS endpoint ``{base}/services/sts``, and the WS-SecurityPolicy blocks it and MEX share.

Specs: WSDL 1.1 with the SOAP 1.1 and SOAP 1.2 bindings; WS-Trust 1.3 (its WSDL's ``SecurityTokenService``
portType: Issue/Renew/Cancel/Validate with ``wsam:Action``) and WS-Trust 2005/02; WS-Policy 1.2 (2004/09, the
version WS-Trust and WCF/AD FS use) with WS-SecurityPolicy 1.2 (and 2005/07 for the 2005 bindings);
WS-Addressing Metadata (``wsam:Action``) and the WSDL binding (``wsaw:UsingAddressing``).

Message schemas are imported from ``{base}/services/sts?xsd=NAME`` so that a client can load everything from the
STS itself, offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from lxml.builder import ElementMaker

from sts import ns
from sts.uris import RequestType, TrustVersion
from sts.web.metadata import sts_url, xsd_url

#: Our own namespace for the WSDL's messages, portTypes, bindings and service (independent of the base URL).
TNS = "urn:sts:wsdl"

SOAP_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"

_OPERATIONS = (RequestType.ISSUE, RequestType.RENEW, RequestType.CANCEL, RequestType.VALIDATE)

_WSDL_NSMAP = {
    "wsdl": ns.WSDL,
    "soap": ns.WSDL_SOAP11,
    "soap12": ns.WSDL_SOAP12,
    "xs": ns.XSD,
    "tns": TNS,
    "wst": ns.WST13,
    "t": ns.WST2005,
    "wsp": ns.WSP12,
    "wsu": ns.WSU,
    "sp": ns.SP12,
    "sp2005": ns.SP2005,
    "wsam": ns.WSAM,
    "wsaw": ns.WSAW,
    "wsa10": ns.WSA,
}

# No nsmap on the makers: parts take their prefixes from the root they are appended to (QName-valued
# attributes such as message="tns:..." rely on the root's declarations).
W = ElementMaker(namespace=ns.WSDL)
WSP = ElementMaker(namespace=ns.WSP12)


# --- WS-SecurityPolicy -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PolicyDialect:
    """The SP namespace and the Trust assertion that go with one WS-Trust version (WCF/AD FS pairing)."""

    namespace: str
    trust_assertion: str

    def q(self, local: str) -> str:
        return ns.qn(self.namespace, local)

    @property
    def always_to_recipient(self) -> str:
        return f"{self.namespace}/IncludeToken/AlwaysToRecipient"


_DIALECTS = {
    TrustVersion.WST13: _PolicyDialect(ns.SP12, "Trust13"),
    TrustVersion.WST2005: _PolicyDialect(ns.SP2005, "Trust10"),
}


def _nested(sp: _PolicyDialect, local: str, *children: etree._Element) -> etree._Element:
    """``<sp:local><wsp:Policy>children</wsp:Policy></sp:local>``: SP assertions carry a nested policy."""
    element = etree.Element(sp.q(local))
    element.append(WSP.Policy(*children))
    return element


def _transport_binding(sp: _PolicyDialect) -> etree._Element:
    https_token = etree.Element(sp.q("HttpsToken"))
    if sp.namespace == ns.SP2005:
        # SP 2005/07 spells the client-certificate choice as an attribute; WCF writes it explicitly.
        https_token.set("RequireClientCertificate", "false")
    return _nested(
        sp,
        "TransportBinding",
        _nested(sp, "TransportToken", https_token),
        # Our default signature suite is RSA-SHA256; only message-level (endorsing) signatures are affected.
        _nested(sp, "AlgorithmSuite", etree.Element(sp.q("Basic256Sha256"))),
        _nested(sp, "Layout", etree.Element(sp.q("Strict"))),
        etree.Element(sp.q("IncludeTimestamp")),
    )


def _username_token(sp: _PolicyDialect) -> etree._Element:
    token = _nested(sp, "UsernameToken", etree.Element(sp.q("WssUsernameToken10")))
    token.set(sp.q("IncludeToken"), sp.always_to_recipient)
    return token


def _supporting_tokens_name(sp: _PolicyDialect, https: bool, encrypted: bool) -> str:
    if not https:
        # Without TLS nothing signs or encrypts the token: claiming "Signed" would be a lie.
        return "SupportingTokens"
    if encrypted and sp.namespace == ns.SP12:
        # AD FS's shape, and the one msal's MEX parser looks for (SP 2005/07 has no such assertion).
        return "SignedEncryptedSupportingTokens"
    return "SignedSupportingTokens"


def build_username_policy(
    policy_id: str, trust: TrustVersion, *, https: bool, encrypted_tokens: bool = False
) -> etree._Element:
    """A ``wsp:Policy`` (with ``wsu:Id``) demanding a WSS 1.0 UsernameToken, over TLS when ``https``.

    The shape is WCF/AD FS's ``UserNameWSTrustBinding`` policy: TransportBinding, the UsernameToken as a
    supporting token, Wss11, Trust13/Trust10, UsingAddressing.
    """
    return build_client_policy(policy_id, trust, https=https, client_proof="username", encrypted_tokens=encrypted_tokens)


def build_client_policy(
    policy_id: str, trust: TrustVersion, *, https: bool, client_proof: str = "username", encrypted_tokens: bool = False
) -> etree._Element:
    """A ``wsp:Policy`` with one alternative per proof the STS accepts (setting ``client_proof``).

    ``username``: the UsernameToken alternative; ``signature``: the X.509 signature alternative; ``either``: both
    under ``wsp:ExactlyOne``, the UsernameToken first (msal looks for it along a fixed path, which still matches).
    """
    alternatives = {
        "username": [_username_alternative],
        "signature": [_signature_alternative],
        "either": [_username_alternative, _signature_alternative],
    }[client_proof]
    sp = _DIALECTS[trust]
    policy = WSP.Policy(WSP.ExactlyOne(*(WSP.All(*make(sp, https, encrypted_tokens)) for make in alternatives)))
    policy.set(ns.qn(ns.WSU, "Id"), policy_id)
    return policy


def _common_assertions(sp: _PolicyDialect) -> list[etree._Element]:
    return [
        _nested(
            sp,
            "Wss11",
            etree.Element(sp.q("MustSupportRefKeyIdentifier")),
            etree.Element(sp.q("MustSupportRefIssuerSerial")),
            etree.Element(sp.q("MustSupportRefThumbprint")),
        ),
        _nested(sp, sp.trust_assertion, *_trust_properties(sp)),
        etree.Element(ns.qn(ns.WSAW, "UsingAddressing")),
    ]


def _trust_properties(sp: _PolicyDialect) -> list[etree._Element]:
    """What the Trust assertion says: issued tokens are supported; 1.3 also says AppliesTo is required."""
    properties = [etree.Element(sp.q("MustSupportIssuedTokens"))]
    if sp.trust_assertion == "Trust13":
        properties.append(etree.Element(sp.q("RequireAppliesTo")))
    return properties


def _username_alternative(sp: _PolicyDialect, https: bool, encrypted_tokens: bool) -> list[etree._Element]:
    assertions: list[etree._Element] = []
    if https:
        assertions.append(_transport_binding(sp))
    assertions.append(_nested(sp, _supporting_tokens_name(sp, https, encrypted_tokens), _username_token(sp)))
    return assertions + _common_assertions(sp)


def _x509_token(sp: _PolicyDialect, include: str | None = None) -> etree._Element:
    token = _nested(sp, "X509Token", etree.Element(sp.q("WssX509V3Token10")))
    token.set(sp.q("IncludeToken"), include or sp.always_to_recipient)
    return token


def _signed_body(sp: _PolicyDialect) -> etree._Element:
    # What verify_message demands: the Body signed (the Timestamp is covered by IncludeTimestamp).
    parts = etree.Element(sp.q("SignedParts"))
    etree.SubElement(parts, sp.q("Body"))
    return parts


def _signature_alternative(sp: _PolicyDialect, https: bool, encrypted_tokens: bool) -> list[etree._Element]:
    """The client signs Body and Timestamp with its registered X.509 certificate (WS-SecurityPolicy 1.2 §7.4, §8.4).

    Over TLS: TransportBinding with the certificate as an endorsing supporting token (WCF's
    ``CertificateOverTransport``); over plain HTTP: an AsymmetricBinding whose initiator token is the client's
    certificate. The STS does not sign or encrypt its response at the message level, so the recipient token is
    never included.
    """
    if https:
        binding = _transport_binding(sp)
        supporting = _nested(sp, "EndorsingSupportingTokens", _x509_token(sp))
        return [binding, supporting, _signed_body(sp), *_common_assertions(sp)]
    binding = _nested(
        sp,
        "AsymmetricBinding",
        _nested(sp, "InitiatorToken", _x509_token(sp)),
        _nested(sp, "RecipientToken", _x509_token(sp, f"{sp.namespace}/IncludeToken/Never")),
        _nested(sp, "AlgorithmSuite", etree.Element(sp.q("Basic256Sha256"))),
        _nested(sp, "Layout", etree.Element(sp.q("Strict"))),
        etree.Element(sp.q("IncludeTimestamp")),
        etree.Element(sp.q("OnlySignEntireHeadersAndBody")),
    )
    return [binding, _signed_body(sp), *_common_assertions(sp)]


def policy_reference(policy_id: str) -> etree._Element:
    return WSP.PolicyReference(URI=f"#{policy_id}")


def tidy_namespaces(root: etree._Element) -> etree._Element:
    """Declare every prefix once on the root and keep them all: QName values in attributes use them."""
    nsmap = {prefix: uri for prefix, uri in root.nsmap.items() if prefix is not None}
    etree.cleanup_namespaces(root, top_nsmap=nsmap, keep_ns_prefixes=list(nsmap))
    return root


def is_https(base_url: str) -> bool:
    return base_url.lower().startswith("https://")


# --- WSDL building blocks (shared with MEX) ---------------------------------------------------------------------


def build_types(base_url: str, versions: tuple[TrustVersion, ...]) -> etree._Element:
    """``wsdl:types`` importing the WS-Trust schemas from the STS's own ``?xsd=`` URLs."""
    schema = etree.Element(ns.qn(ns.XSD, "schema"))
    for version in versions:
        etree.SubElement(
            schema,
            ns.qn(ns.XSD, "import"),
            namespace=version.ns,
            schemaLocation=xsd_url(base_url, TRUST_XSD[version]),
        )
    return W.types(schema)


TRUST_XSD = {TrustVersion.WST13: "ws-trust-1.3.xsd", TrustVersion.WST2005: "ws-trust-200502.xsd"}


def build_message(name: str, part: str, element: str) -> etree._Element:
    return W.message(W.part(name=part, element=element), name=name)


def build_operation_io(
    operation: str, input_action: str, output_action: str, input_message: str, output_message: str
) -> etree._Element:
    """A portType operation; ``wsam:Action`` carries the WS-Addressing actions (WS-Trust 1.3 WSDL style)."""
    op = W.operation(W.input(message=input_message), W.output(message=output_message), name=operation)
    op[0].set(ns.qn(ns.WSAM, "Action"), input_action)
    op[1].set(ns.qn(ns.WSAM, "Action"), output_action)
    return op


def build_soap_binding(
    name: str, port_type: str, soap_wsdl_ns: str, operations: list[tuple[str, str]], policy_id: str
) -> etree._Element:
    """A document/literal binding (SOAP 1.1 or 1.2 by ``soap_wsdl_ns``) with a policy reference first."""
    binding = W.binding(policy_reference(policy_id), name=name, type=port_type)
    etree.SubElement(binding, ns.qn(soap_wsdl_ns, "binding"), transport=SOAP_HTTP_TRANSPORT, style="document")
    for operation, soap_action in operations:
        op = etree.SubElement(binding, ns.qn(ns.WSDL, "operation"), name=operation)
        etree.SubElement(op, ns.qn(soap_wsdl_ns, "operation"), soapAction=soap_action, style="document")
        for direction in ("input", "output"):
            io = etree.SubElement(op, ns.qn(ns.WSDL, direction))
            etree.SubElement(io, ns.qn(soap_wsdl_ns, "body"), use="literal")
    return binding


def build_port(name: str, binding: str, soap_wsdl_ns: str, address: str) -> etree._Element:
    """A port with its SOAP address and a WS-Addressing EndpointReference (what WCF and msal read)."""
    port = W.port(name=name, binding=binding)
    etree.SubElement(port, ns.qn(soap_wsdl_ns, "address"), location=address)
    epr = etree.SubElement(port, ns.qn(ns.WSA, "EndpointReference"))
    etree.SubElement(epr, ns.qn(ns.WSA, "Address")).text = address
    return port


# --- our WSDL ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Contract:
    """Names of one WS-Trust version's portType, messages and policy in our WSDL."""

    version: TrustVersion
    port_type: str
    policy_id: str
    label: str


_CONTRACTS = (
    _Contract(TrustVersion.WST13, "SecurityTokenService", "STS13_policy", "STS13"),
    _Contract(TrustVersion.WST2005, "SecurityTokenService2005", "STS2005_policy", "STS2005"),
)

_SOAP_BINDINGS = (("Soap12", ns.WSDL_SOAP12), ("Soap11", ns.WSDL_SOAP11))


def _message_names(c: _Contract) -> dict[str, str]:
    return {
        "rst": f"{c.label}_RequestSecurityTokenMsg",
        "rstr": f"{c.label}_RequestSecurityTokenResponseMsg",
        "rstrc": f"{c.label}_RequestSecurityTokenResponseCollectionMsg",
    }


def _messages(c: _Contract) -> list[etree._Element]:
    names = _message_names(c)
    prefix = "wst" if c.version is TrustVersion.WST13 else "t"
    messages = [
        build_message(names["rst"], "request", f"{prefix}:RequestSecurityToken"),
        build_message(names["rstr"], "response", f"{prefix}:RequestSecurityTokenResponse"),
    ]
    if c.version is TrustVersion.WST13:
        messages.append(build_message(names["rstrc"], "responseCollection", "wst:RequestSecurityTokenResponseCollection"))
    return messages


def _output_message(c: _Contract, operation: RequestType) -> str:
    names = _message_names(c)
    # WS-Trust 1.3 answers Issue with a collection (adal-node requires it); everything else is a bare RSTR.
    if c.version is TrustVersion.WST13 and operation is RequestType.ISSUE:
        return f"tns:{names['rstrc']}"
    return f"tns:{names['rstr']}"


def _port_type(c: _Contract) -> etree._Element:
    rst = f"tns:{_message_names(c)['rst']}"
    return W.portType(
        *(
            build_operation_io(
                op.value, op.request_action(c.version), op.response_action(c.version), rst, _output_message(c, op)
            )
            for op in _OPERATIONS
        ),
        name=c.port_type,
    )


def _bindings(c: _Contract) -> list[etree._Element]:
    operations = [(op.value, op.request_action(c.version)) for op in _OPERATIONS]
    return [
        build_soap_binding(f"{c.label}_{soap}Binding", f"tns:{c.port_type}", soap_ns, operations, c.policy_id)
        for soap, soap_ns in _SOAP_BINDINGS
    ]


def _service(base_url: str) -> etree._Element:
    # Every binding lives at the one address: the endpoint routes on wsa:Action and the SOAP namespace.
    address = sts_url(base_url)
    return W.service(
        *(
            build_port(f"{c.label}_{soap}Port", f"tns:{c.label}_{soap}Binding", soap_ns, address)
            for c in _CONTRACTS
            for soap, soap_ns in _SOAP_BINDINGS
        ),
        name="SecurityTokenService",
    )


#: Said in the WSDL when users come from a directory too (``user_store``): WS-SecurityPolicy cannot say "digest for
#: some users only", and the UsernameToken assertion (no sp:HashPassword) already allows PasswordText.
DIRECTORY_NOTE = ("Users of the directory authenticate with a PasswordText UsernameToken over TLS only: the directory "
                  "keeps password hashes, so PasswordDigest works for the STS's own users only.")


def build_wsdl(base_url: str, client_proof: str = "username", *, directory: bool = False) -> etree._Element:
    """The ``wsdl:definitions`` element of ``{base}/services/sts?wsdl``; its policies demand ``client_proof``;
    ``directory``: a ``wsdl:documentation`` says what directory users must send (:data:`DIRECTORY_NOTE`)."""
    https = is_https(base_url)
    definitions = etree.Element(
        ns.qn(ns.WSDL, "definitions"), nsmap=_WSDL_NSMAP, name="SecurityTokenService", targetNamespace=TNS
    )
    if directory:
        definitions.append(W.documentation(DIRECTORY_NOTE))  # WSDL 1.1 §2.1.4: the first child
    for c in _CONTRACTS:
        definitions.append(build_client_policy(c.policy_id, c.version, https=https, client_proof=client_proof))
    definitions.append(build_types(base_url, tuple(c.version for c in _CONTRACTS)))
    for c in _CONTRACTS:
        definitions.extend(_messages(c))
    definitions.extend(_port_type(c) for c in _CONTRACTS)
    for c in _CONTRACTS:
        definitions.extend(_bindings(c))
    definitions.append(_service(base_url))
    return tidy_namespaces(definitions)


def render_wsdl(base_url: str, client_proof: str = "username", *, directory: bool = False) -> bytes:
    """The WSDL document served at ``GET {base}/services/sts?wsdl`` (``client_proof``: username|signature|either;
    ``directory``: users come from a directory too)."""
    return bytes(etree.tostring(build_wsdl(base_url, client_proof, directory=directory), xml_declaration=True,
                                encoding="UTF-8"))
