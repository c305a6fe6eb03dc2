"""A WS-Trust client (WS-Trust 1.3 §3-§7 and 2005/02) built on zeep: Issue, Validate, Renew, Cancel.

``TrustClient(wsdl_url, ...)`` loads an STS's WSDL with zeep and picks the port of the requested WS-Trust and
SOAP versions (``TrustClient.for_endpoint(url, ...)`` works without a WSDL, e.g. AD FS's usernamemixed). The
RST is built by ``sts.protocol.wstrust.render.render_rst`` and sent through zeep as the xs:any content of the operation
(``_value_1``), with WS-Addressing from the WSDL's ``wsam:Action`` and WS-Security from ``zeep.wsse``:
UsernameToken (text or digest; digest ``Created`` in the ``Z`` form) or an X.509 BinarySecurityToken signature
(RSA-SHA256/SHA-256 over Body and a wsu:Timestamp that this module adds, since zeep signs only what is there).

This module is the transport side. Replies are read by ``sts.protocol.wstrust.response``: the results
(``IssuedTokenResult``, ``ValidationResult``, ``TokenReference``), the errors (``TrustClientError`` and its
``TrustFault``, ``TransportError``, ``ResponseError``; the tree is in that module's docstring), ``read_reply``,
``parse_fault`` and ``parse_response(data, ...)`` (a recorded RSTR to an ``IssuedTokenResult`` without any
HTTP), all re-exported here.
"""

from __future__ import annotations

import base64
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Union

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from sts import ns
from sts.protocol.addressing import render_request_headers
from sts.tokens.crypto.keys import PrivateKey, load_certificate, load_private_key
from sts.protocol.soap import build_envelope
from sts.uris import KeyType, RequestType, SoapVersion, TokenType, TrustVersion
from sts.protocol.wstrust.render import render_rst
from sts.protocol.wstrust.response import (
    IssuedTokenResult,
    ResponseError,
    TokenReference,
    TransportError,
    TrustClientError,
    TrustFault,
    ValidationResult,
    check_cancelled,
    fault_error,
    parse_fault,
    parse_issued_token,
    parse_response,
    parse_validation,
    read_reply,
)
from sts.client.policy import IssuedTokenPolicy, read_service_policy
from sts.client.transport import make_transport
from sts.protocol.xmlsafe import parse as safe_parse
from sts.xmltime import format_datetime, utcnow

__all__ = [
    "IssuedTokenResult", "ResponseError", "TokenReference", "TransportError", "TrustClient", "TrustClientError",
    "TrustFault", "UsernameCredentials", "ValidationResult", "X509Credentials", "fault_error", "parse_fault",
    "parse_response", "read_reply",
]

_NO_PROOF_KEY = f"{ns.IDENTITY}/NoProofKey"


def _module(name: str) -> Any:
    """zeep and xmlsec, typed as Any: their public callables carry no annotations (mypy --strict)."""
    return importlib.import_module(name)


# --- credentials ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsernameCredentials:
    """A WSS UsernameToken: PasswordText, or PasswordDigest (Nonce + Created) with ``digest=True``."""

    username: str
    password: str = field(repr=False)
    digest: bool = False


@dataclass(frozen=True)
class X509Credentials:
    """A private key and its certificate: the request is signed (BinarySecurityToken, RSA-SHA256)."""

    private_key: PrivateKey = field(repr=False)
    certificate: x509.Certificate

    @classmethod
    def from_files(cls, key_path: str | os.PathLike[str], cert_path: str | os.PathLike[str],
                   password: bytes | None = None) -> X509Credentials:
        with open(key_path, "rb") as key_file, open(cert_path, "rb") as cert_file:
            return cls(load_private_key(key_file.read(), password), load_certificate(cert_file.read()))


Credentials = Union[UsernameCredentials, X509Credentials]
TokenInput = Union[IssuedTokenResult, bytes, str, etree._Element]

# --- the client -----------------------------------------------------------------------------------------------


class TrustClient:
    """A WS-Trust client bound to one STS endpoint (see the module docstring)."""

    def __init__(
        self,
        wsdl_url: str,
        *,
        version: TrustVersion = TrustVersion.WST13,
        soap: SoapVersion | None = None,
        credentials: Credentials | None = None,
        endpoint: str | None = None,
        transport: Any = None,
        verify: bool | str = True,
        timeout: float = 30,
    ) -> None:
        zeep = _module("zeep")
        self.version = version
        self.credentials = credentials
        self.transport = transport if transport is not None else make_transport(verify=verify, timeout=timeout)
        try:
            zeep_client: Any = zeep.Client(wsdl_url, transport=self.transport, wsse=_wsse(credentials))
        except requests.RequestException as err:
            raise TransportError(f"cannot load the WSDL {wsdl_url}: {_plain(err)}") from None
        except (_module("zeep.exceptions").Error, etree.XMLSyntaxError, ValueError) as err:
            raise TransportError(f"{wsdl_url} did not give a usable WSDL: {err}") from None
        self._zeep = zeep_client
        port_name, service_name, soap_version = _pick_port(zeep_client, version, soap)
        self._service: Any = zeep_client.bind(service_name, port_name)
        self.soap = soap_version
        self.port_name = port_name
        self.endpoint = endpoint or self._service._binding_options["address"]
        if endpoint:
            self._service = zeep_client.create_service(self._service._binding.name, endpoint)

    @classmethod
    def for_endpoint(
        cls,
        url: str,
        *,
        version: TrustVersion = TrustVersion.WST13,
        soap: SoapVersion | None = None,
        credentials: Credentials | None = None,
        transport: Any = None,
        verify: bool | str = True,
        timeout: float = 30,
    ) -> TrustClient:
        """A client for a SOAP endpoint without a WSDL (AD FS's ``/adfs/services/trust/13/usernamemixed``)."""
        client = cls.__new__(cls)
        client.version = version
        client.credentials = credentials
        client.transport = transport if transport is not None else make_transport(verify=verify, timeout=timeout)
        client._zeep = None
        client._service = None
        client.soap = soap or SoapVersion.SOAP12
        client.port_name = ""
        client.endpoint = url
        return client

    # --- the four bindings ------------------------------------------------------------------------------------

    def issue(
        self,
        applies_to: str | None,
        token_type: TokenType | str | None = None,
        claims: Sequence[str | tuple[str, bool]] = (),
        key_type: KeyType | str | None = None,
        lifetime: timedelta | tuple[datetime | None, datetime | None] | None = None,
        *,
        key_size: int | None = None,
        entropy: bool = True,
        act_as: TokenInput | None = None,
        on_behalf_of: TokenInput | None = None,
        claims_dialect: str = ns.IDENTITY,
        extra: Sequence[etree._Element] = (),
    ) -> IssuedTokenResult:
        """Issue: a token for ``applies_to``. SymmetricKey with ``entropy`` sends client entropy (CK/PSHA1)."""
        version = self.version
        kind = _key_type(key_type)
        parts = list(extra)
        client_entropy: bytes | None = None
        if kind is KeyType.SYMMETRIC:
            size = key_size or 256
            if entropy:
                client_entropy = os.urandom(size // 8)
                parts += [_entropy_element(version, client_entropy),
                          _element(version, "ComputedKeyAlgorithm", version.uri("CK/PSHA1"))]
            parts.append(_element(version, "KeySize", str(size)))
        elif key_size is not None:
            parts.append(_element(version, "KeySize", str(key_size)))
        if kind is KeyType.PUBLIC_KEY:
            parts.append(self._use_key())
        targets: dict[str, etree._Element | str] = {}
        if act_as is not None:
            targets["ActAs"] = _target(act_as)
        if on_behalf_of is not None:
            targets["OnBehalfOf"] = _target(on_behalf_of)
        rst = render_rst(
            version,
            applies_to=applies_to,
            token_type_uri=_token_type_uri(token_type),
            key_type_uri=_key_type_uri(version, kind) if kind is not None else None,
            claims=tuple((c, False) if isinstance(c, str) else c for c in claims),
            claims_dialect=claims_dialect,
            lifetime=_lifetime(lifetime),
            targets=targets or None,
            extra=tuple(parts),
        )
        root = self._call(RequestType.ISSUE, rst)
        return parse_issued_token(root, version, client_entropy=client_entropy, private_key=self._private_key(),
                                  key_type=kind, raw=etree.tostring(root))

    def issue_for_service(self, service_wsdl: str | bytes, *, applies_to: str | None = None) -> IssuedTokenResult:
        """Issue what a service's WSDL policy (sp:IssuedToken template) demands, from this STS."""
        policy = read_service_policy(service_wsdl, transport=self.transport)
        return self.issue_for_policy(policy, applies_to=applies_to)

    def issue_for_policy(self, policy: IssuedTokenPolicy, *, applies_to: str | None = None) -> IssuedTokenResult:
        """Issue the token ``policy`` demands from its issuer, with this client's credentials and transport."""
        issuer = self._for_issuer(policy)
        template = policy.template
        extra: list[etree._Element] = []
        if issuer.version is TrustVersion.WST13 and template.elements:
            # WS-Trust 1.3 §3.1: the template goes into SecondaryParameters; explicit elements set the same values.
            secondary = etree.Element(ns.qn(ns.WST13, "SecondaryParameters"))
            secondary.extend(safe_parse(element) for element in template.elements)
            extra.append(secondary)
        return issuer.issue(
            applies_to or policy.service_endpoint,
            token_type=template.token_type,
            claims=tuple((claim.uri, claim.optional) for claim in template.claims),
            key_type=template.key_type,
            key_size=template.key_size,
            claims_dialect=template.claims_dialect or ns.IDENTITY,
            extra=extra,
        )

    def _for_issuer(self, policy: IssuedTokenPolicy) -> TrustClient:
        """This client when the policy names no issuer or names it; else a client for the named issuer."""
        version = policy.trust_version
        if policy.issuer is None or (_same_url(policy.issuer, self.endpoint) and version is self.version):
            return self
        options: dict[str, Any] = {"version": version, "credentials": self.credentials, "transport": self.transport}
        candidates = [f"{policy.issuer}?wsdl"] + ([policy.issuer_metadata] if policy.issuer_metadata else [])
        for wsdl_url in candidates:
            try:
                return TrustClient(wsdl_url, endpoint=policy.issuer, **options)
            except TransportError:
                continue
        return TrustClient.for_endpoint(policy.issuer, **options)

    def validate(self, token: TokenInput, *, token_type: str | None = None,
                 applies_to: str | None = None) -> ValidationResult:
        """Validate a token (or its id); with ``token_type`` + ``applies_to``, validate-and-exchange."""
        version = self.version
        rst = render_rst(version, applies_to=applies_to, token_type_uri=token_type or version.uri("RSTR/Status"),
                         request_type="Validate", targets={"ValidateTarget": _target(token)})
        return parse_validation(self._call(RequestType.VALIDATE, rst), version, private_key=self._private_key())

    def renew(self, token: TokenInput,
              lifetime: timedelta | tuple[datetime | None, datetime | None] | None = None) -> IssuedTokenResult:
        """Renew a token (or its id): a fresh token with a new lifetime."""
        rst = render_rst(self.version, applies_to=None, request_type="Renew", lifetime=_lifetime(lifetime),
                         targets={"RenewTarget": _target(token)})
        root = self._call(RequestType.RENEW, rst)
        return parse_issued_token(root, self.version, client_entropy=None, private_key=self._private_key(),
                                  key_type=None, raw=etree.tostring(root))

    def cancel(self, token: TokenInput) -> None:
        """Cancel a token (or its id); returns when the STS answers RequestedTokenCancelled."""
        rst = render_rst(self.version, applies_to=None, request_type="Cancel",
                         targets={"CancelTarget": _target(token)})
        check_cancelled(self._call(RequestType.CANCEL, rst), self.version)

    # --- plumbing ---------------------------------------------------------------------------------------------

    def _private_key(self) -> PrivateKey | None:
        return self.credentials.private_key if isinstance(self.credentials, X509Credentials) else None

    def _use_key(self) -> etree._Element:
        if not isinstance(self.credentials, X509Credentials):
            raise ValueError("a PublicKey token needs X509Credentials (the certificate goes into UseKey)")
        der = self.credentials.certificate.public_bytes(serialization.Encoding.DER)
        use_key = etree.Element(ns.qn(self.version.ns, "UseKey"))
        key_info = etree.SubElement(use_key, ns.qn(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
        data = etree.SubElement(key_info, ns.qn(ns.DS, "X509Data"))
        etree.SubElement(data, ns.qn(ns.DS, "X509Certificate")).text = base64.b64encode(der).decode("ascii")
        return use_key

    def _call(self, request_type: RequestType, rst: etree._Element) -> etree._Element:
        """Send one RST; return the body's child of a non-fault answer (faults and transport errors raise)."""
        if self._service is None:
            envelope, headers = self._envelope_without_wsdl(request_type, rst)
        else:
            envelope, headers = self._envelope_from_wsdl(request_type, rst)
        try:
            response = self.transport.post_xml(self.endpoint, envelope, headers)
        except requests.RequestException as err:
            raise TransportError(f"cannot reach the STS at {self.endpoint}: {_plain(err)}") from None
        return read_reply(response.status_code, response.headers.get("content-type", ""), response.content,
                          self.endpoint)

    def _envelope_from_wsdl(self, request_type: RequestType, rst: etree._Element) -> tuple[Any, dict[str, str]]:
        binding = self._service._binding
        operation = _operation_name(binding, self.version, request_type)
        kwargs: dict[str, Any] = {"_value_1": list(rst)}
        if rst.get("Context"):
            kwargs["Context"] = rst.get("Context")
        envelope, headers = binding._create(operation, (), kwargs, client=self._zeep,
                                            options=self._service._binding_options)
        return envelope, dict(headers)

    def _envelope_without_wsdl(self, request_type: RequestType, rst: etree._Element) -> tuple[Any, dict[str, str]]:
        action = request_type.request_action(self.version)
        soap_ns = self.soap.value
        addressing = render_request_headers(action, self.endpoint)
        for header in addressing:
            if etree.QName(header).localname == "Action":
                header.set(ns.qn(soap_ns, "mustUnderstand"), "1")
        envelope = etree.fromstring(build_envelope(self.soap, rst, addressing))
        headers = {"Content-Type": self.soap.content_type}
        if self.soap is SoapVersion.SOAP11:
            headers["SOAPAction"] = f'"{action}"'
        else:
            headers["Content-Type"] += f'; action="{action}"'
        for wsse in _as_list(_wsse(self.credentials)):
            envelope, headers = wsse.apply(envelope, headers)
        return envelope, headers


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def _plain(err: Exception) -> str:
    """A one-line reason for a requests error (connection refused, timeout, TLS) without the retry noise."""
    text = str(err)
    for marker in ("Connection refused", "timed out", "Name or service not known", "CERTIFICATE_VERIFY_FAILED"):
        if marker in text:
            return {"CERTIFICATE_VERIFY_FAILED": "TLS certificate verification failed"}.get(marker, marker.lower())
    return f"{type(err).__name__}: {text[:300]}"


# --- WS-Security through zeep.wsse -----------------------------------------------------------------------------


class _Timestamp:
    """A zeep.wsse object adding wsu:Timestamp (zeep's signer signs Body, and the Timestamp only if present)."""

    def __init__(self, ttl: timedelta = timedelta(minutes=5)) -> None:
        self.ttl = ttl

    def apply(self, envelope: Any, headers: Any) -> tuple[Any, Any]:
        security = _module("zeep.wsse.utils").get_security_header(envelope)
        now = utcnow()
        stamp = etree.SubElement(security, ns.qn(ns.WSU, "Timestamp"), nsmap={"wsu": ns.WSU})
        etree.SubElement(stamp, ns.qn(ns.WSU, "Created")).text = format_datetime(now)
        etree.SubElement(stamp, ns.qn(ns.WSU, "Expires")).text = format_datetime(now + self.ttl)
        return envelope, headers

    def verify(self, envelope: Any) -> Any:
        return envelope


def _wsse(credentials: Credentials | None) -> Any:
    """The zeep.wsse object(s) for the credentials (None: no Security header)."""
    if credentials is None:
        return None
    if isinstance(credentials, UsernameCredentials):
        return _module("zeep.wsse.username").UsernameToken(credentials.username, credentials.password, use_digest=credentials.digest,
                             zulu_timestamp=True)
    xmlsec = _module("xmlsec")
    signature = _module("zeep.wsse.signature")

    key_pem = credentials.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())
    cert_pem = credentials.certificate.public_bytes(serialization.Encoding.PEM)
    signer = signature.BinarySignature.__new__(signature.BinarySignature)
    # BinarySignature reads files; MemorySignature's initialiser takes the PEM bytes it then uses.
    signature.MemorySignature.__init__(signer, key_pem, cert_pem, None, xmlsec.Transform.RSA_SHA256, xmlsec.Transform.SHA256)
    return [_Timestamp(), signer]


def _as_list(wsse: Any) -> list[Any]:
    if wsse is None:
        return []
    return list(wsse) if isinstance(wsse, list) else [wsse]


# --- WSDL port and operation ------------------------------------------------------------------------------------

_OUR_PORTS = {
    (TrustVersion.WST13, SoapVersion.SOAP12): "STS13_Soap12Port",
    (TrustVersion.WST13, SoapVersion.SOAP11): "STS13_Soap11Port",
    (TrustVersion.WST2005, SoapVersion.SOAP12): "STS2005_Soap12Port",
    (TrustVersion.WST2005, SoapVersion.SOAP11): "STS2005_Soap11Port",
}


def _binding_soap(binding: Any) -> SoapVersion | None:
    name = type(binding).__name__
    return SoapVersion.SOAP12 if name == "Soap12Binding" else SoapVersion.SOAP11 if name == "Soap11Binding" else None


def _pick_port(client: Any, version: TrustVersion, soap: SoapVersion | None) -> tuple[str, str, SoapVersion]:
    """(port, service, SOAP version): our port names first, else the first port whose binding fits."""
    wanted = [soap] if soap is not None else [SoapVersion.SOAP12, SoapVersion.SOAP11]
    ports = [(service_name, port_name, port) for service_name, service in client.wsdl.services.items()
             for port_name, port in service.ports.items()]
    for soap_version in wanted:
        for service_name, port_name, port in ports:
            if port_name == _OUR_PORTS[(version, soap_version)] and _binding_soap(port.binding) is soap_version:
                return port_name, service_name, soap_version
    for soap_version in wanted:
        for service_name, port_name, port in ports:
            if _binding_soap(port.binding) is soap_version and _issue_operation(port.binding, version):
                return port_name, service_name, soap_version
    soap_text = soap.name if soap is not None else "SOAP 1.1 or 1.2"
    raise TransportError(f"the WSDL has no {soap_text} port for WS-Trust {version.name}")


def _issue_operation(binding: Any, version: TrustVersion) -> str | None:
    try:
        return _operation_name(binding, version, RequestType.ISSUE)
    except ResponseError:
        return None


def _operation_name(binding: Any, version: TrustVersion, request_type: RequestType) -> str:
    """The binding's operation for a request type: by its WS-Addressing action, else by name."""
    action = request_type.request_action(version)
    operations: dict[str, Any] = binding._operations
    for name, operation in operations.items():
        if action in (operation.abstract.wsa_action, operation.soapaction):
            return name
    for name in operations:
        if name == request_type.value or name.endswith(request_type.value):
            element = getattr(operations[name].input.body, "qname", None)
            if element is None or etree.QName(element).namespace == version.ns:
                return name
    raise ResponseError(f"the WSDL's binding has no {request_type.value} operation for WS-Trust {version.name}")


# --- RST parts ---------------------------------------------------------------------------------------------------


def _element(version: TrustVersion, local: str, text: str) -> etree._Element:
    element = etree.Element(ns.qn(version.ns, local))
    element.text = text
    return element


def _entropy_element(version: TrustVersion, secret: bytes) -> etree._Element:
    entropy = etree.Element(ns.qn(version.ns, "Entropy"))
    binary = etree.SubElement(entropy, ns.qn(version.ns, "BinarySecret"), Type=version.uri("Nonce"))
    binary.text = base64.b64encode(secret).decode("ascii")
    return entropy


def _token_type_uri(token_type: TokenType | str | None) -> str | None:
    if token_type is None or isinstance(token_type, TokenType):
        return token_type.value if token_type else None
    if token_type.lower() in ("saml11", "saml20"):
        return TokenType.from_short(token_type).profile_uri
    return token_type


def _key_type(key_type: KeyType | str | None) -> KeyType | None:
    if key_type is None or isinstance(key_type, KeyType):
        return key_type
    short = {"bearer": KeyType.BEARER, "symmetric": KeyType.SYMMETRIC, "public": KeyType.PUBLIC_KEY}
    return short.get(key_type.lower()) or KeyType(key_type)


def _key_type_uri(version: TrustVersion, key_type: KeyType) -> str:
    if version is TrustVersion.WST13:
        return key_type.value
    # 2005/02 has no Bearer: the identity NoProofKey is what AD FS and WCF send.
    return _NO_PROOF_KEY if key_type is KeyType.BEARER else version.uri(key_type.value.rsplit("/", 1)[1])


def _lifetime(lifetime: timedelta | tuple[datetime | None, datetime | None] | None,
              ) -> tuple[str | None, str | None] | None:
    if lifetime is None:
        return None
    if isinstance(lifetime, timedelta):
        now = utcnow()
        return format_datetime(now), format_datetime(now + lifetime)
    created, expires = lifetime
    return (format_datetime(created) if created else None, format_datetime(expires) if expires else None)


def _target(token: TokenInput) -> etree._Element | str:
    """A Validate/Renew/Cancel/ActAs target: the token element itself, or an id sent as a reference."""
    if isinstance(token, IssuedTokenResult):
        return token.token_element()
    if isinstance(token, bytes):
        return safe_parse(token, max_bytes=len(token) + 1, max_depth=256)
    if isinstance(token, str):
        return token
    return token
