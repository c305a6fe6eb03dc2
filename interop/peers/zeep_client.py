"""zeep as a WS-Trust client: a zeep user loads the STS's WSDL and lets zeep build and sign the envelope.

zeep picks the port (SOAP 1.1 or 1.2 binding, WS-Trust 1.3 or 2005 operation) from the WSDL, adds WS-Addressing
because the binding's policy says ``wsaw:UsingAddressing``, and puts its own ``zeep.wsse.username.UsernameToken``
(PasswordText, or PasswordDigest with ``use_digest=True``) into ``wsse:Security``. The RST's content model is
``xs:any``, so the user supplies the children (RequestType, AppliesTo, KeyType, TokenType) as lxml elements;
zeep sends them as they are. The answer is taken raw (``raw_response``) and read with lxml, as a zeep user reads a
body whose schema is ``xs:any``. Nothing from ``sts`` is used: this peer is zeep and the spec.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from lxml import etree

from ..model import ClientCase, ClientOutcome, Verdict
from ..target import Target
from .trust_uris import BEARER, TOKEN_TYPES, TRUST, WSDL_PATH
from .recording import RecordingSession

__all__ = ["PEER", "ZeepClient"]

SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSP: Final = "http://schemas.xmlsoap.org/ws/2004/09/policy"


def _zeep(name: str = "zeep") -> Any:
    """zeep's modules typed as Any: it ships no annotations (mypy --strict)."""
    return importlib.import_module(name)


def _version() -> str | None:
    try:
        return importlib.metadata.version("zeep")
    except importlib.metadata.PackageNotFoundError:
        return None


def _recording_transport(verify: bool | str) -> tuple[Any, RecordingSession]:
    """zeep's own Transport over a requests session that keeps every POST (zeep's envelope and the raw answer)."""
    session = RecordingSession()
    session.verify = verify
    return _zeep("zeep.transports").Transport(session=session, cache=None), session


class ZeepClient:
    """The ``ClientPeer`` for zeep (WSDL-driven envelope, zeep.wsse UsernameToken, lxml reading the RSTR)."""

    def __init__(self) -> None:
        self.name = f"zeep {_version() or '(not installed)'}"
        self.about = ("zeep (PyPI), the Python SOAP client: WSDL from the STS, its own WS-Addressing, "
                      "zeep.wsse UsernameToken (text and digest) and BinarySignature (X.509, python-xmlsec); "
                      "the RSTR is read with lxml")

    def unavailable(self) -> str | None:
        try:
            _zeep("zeep.wsse.username")
        except ImportError as err:
            return f"zeep is not installed ({err}); pip install zeep"
        return None

    def issue(self, target: Target, case: ClientCase) -> ClientOutcome:
        rp = target.rp(case.profile)
        if rp is None:
            return ClientOutcome(Verdict.not_applicable(f"the target has no relying party of profile {case.profile}"))
        if case.wstrust not in TRUST or case.soap not in ("1.1", "1.2"):
            return ClientOutcome(Verdict.not_applicable(f"no WS-Trust {case.wstrust} / SOAP {case.soap} here"))
        if case.act_as or case.key_type != "bearer":
            return ClientOutcome(Verdict.not_applicable("this driver builds bearer requests without ActAs only"))
        if case.auth == "x509" and (target.client_key_pem is None or target.client_cert_pem is None):
            return ClientOutcome(Verdict.not_applicable("no registered X.509 client key for this target"))
        transport, session = _recording_transport(target.verify_tls)
        with session:
            try:
                outcome = _issue(target, case, rp.address, rp.profile.saml, transport)
            except Exception as err:  # zeep, requests and lxml each have their own errors: all are a FAIL here
                outcome = ClientOutcome(Verdict.failed(f"zeep: {type(err).__name__}: {err}"))
        return ClientOutcome(outcome.verdict, outcome.token, outcome.token_type, tuple(session.exchanges))


def _issue(target: Target, case: ClientCase, applies_to: str, saml: str, transport: Any) -> ClientOutcome:
    with tempfile.TemporaryDirectory() as tmp:  # zeep's Signature reads its key files when it is made
        wsse = _wsse(target, case, Path(tmp))
    client = _zeep().Client(target.url(WSDL_PATH), transport=transport, wsse=wsse)
    service = _service(client, case)
    if service is None:
        return ClientOutcome(Verdict.not_applicable(
            f"the target's WSDL has no SOAP {case.soap} port with a WS-Trust {case.wstrust} Issue"))
    proxy, operation = service
    # raw_response: zeep hands back the HTTP answer untouched; the user reads the RSTR (xs:any) with lxml.
    with client.settings(raw_response=True):
        response = getattr(proxy, operation)(_value_1=_rst_children(case.wstrust, applies_to, saml))
    return read_rstr(response.content, response.status_code, case.wstrust)


def _wsse(target: Target, case: ClientCase, tmp: Path) -> Any:
    """zeep's own WS-Security: a UsernameToken, or a Timestamp and zeep's BinarySignature (python-xmlsec) over
    Body and Timestamp with RSA-SHA256, the certificate in a BinarySecurityToken."""
    if case.auth != "x509":
        username = _zeep("zeep.wsse.username")
        return username.UsernameToken(target.username, target.password, use_digest=case.auth == "username-digest")
    assert target.client_key_pem is not None and target.client_cert_pem is not None
    (tmp / "client.key").write_bytes(target.client_key_pem)
    (tmp / "client.crt").write_bytes(target.client_cert_pem)
    xmlsec = importlib.import_module("xmlsec")
    signature = _zeep("zeep.wsse.signature").BinarySignature(
        str(tmp / "client.key"), str(tmp / "client.crt"), signature_method=xmlsec.Transform.RSA_SHA256,
        digest_method=xmlsec.Transform.SHA256)
    return [_Timestamp(), signature]


class _Timestamp:
    """zeep signs the wsu:Timestamp it finds in the Security header; it adds none itself, so this one does,
    with zeep's own element makers."""

    def apply(self, envelope: Any, headers: Any) -> tuple[Any, Any]:
        utils = _zeep("zeep.wsse.utils")
        now = datetime.now(UTC)
        security = utils.get_security_header(envelope)
        security.append(utils.WSU.Timestamp(
            utils.WSU.Created(utils.get_timestamp(now, zulu_timestamp=True)),
            utils.WSU.Expires(utils.get_timestamp(now + timedelta(minutes=5), zulu_timestamp=True))))
        return envelope, headers

    def verify(self, envelope: Any) -> Any:
        return envelope


def _service(client: Any, case: ClientCase) -> tuple[Any, str] | None:
    """The service proxy and operation name of the port whose binding matches the case's SOAP and WS-Trust."""
    bindings = _zeep("zeep.wsdl.bindings")
    soap_class = bindings.Soap11Binding if case.soap == "1.1" else bindings.Soap12Binding
    issue_action = f"{TRUST[case.wstrust]}/RST/Issue"
    for service_name, service in client.wsdl.services.items():
        for port_name, port in service.ports.items():
            binding = port.binding
            if not isinstance(binding, soap_class):
                continue
            for name, operation in binding._operations.items():
                if operation.soapaction == issue_action:
                    return client.bind(service_name, port_name), name
    return None


def _rst_children(wstrust: str, applies_to: str, saml: str) -> list[etree._Element]:
    wst = TRUST[wstrust]
    request_type = etree.Element(f"{{{wst}}}RequestType")
    request_type.text = f"{wst}/Issue"
    applies = etree.Element(f"{{{WSP}}}AppliesTo", nsmap={"wsp": WSP})
    epr = etree.SubElement(applies, f"{{{WSA}}}EndpointReference", nsmap={"wsa": WSA})
    etree.SubElement(epr, f"{{{WSA}}}Address").text = applies_to
    key_type = etree.Element(f"{{{wst}}}KeyType")
    key_type.text = BEARER[wstrust]
    token_type = etree.Element(f"{{{wst}}}TokenType")
    token_type.text = TOKEN_TYPES[saml]
    return [request_type, applies, key_type, token_type]


def read_rstr(data: bytes, status: int, wstrust: str) -> ClientOutcome:
    """What a zeep user reads from the answer: the fault's reason, or TokenType and the token element."""
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as err:
        return ClientOutcome(Verdict.failed(f"HTTP {status}, not XML: {err}: {data[:200]!r}"))
    fault = _fault_reason(root)
    if fault is not None:
        return ClientOutcome(Verdict.failed(f"HTTP {status}, SOAP fault: {fault}"))
    wst = TRUST[wstrust]
    rstr = root.find(f".//{{{wst}}}RequestSecurityTokenResponse")
    if rstr is None:
        return ClientOutcome(Verdict.failed(f"HTTP {status}, no wst:RequestSecurityTokenResponse in the answer"))
    token_type = (rstr.findtext(f"{{{wst}}}TokenType") or "").strip() or None
    holder = rstr.find(f"{{{wst}}}RequestedSecurityToken")
    token = None if holder is None else next(iter(holder.iterchildren(tag=etree.Element)), None)
    if token is None:
        return ClientOutcome(Verdict.failed(f"HTTP {status}, no element in RequestedSecurityToken"),
                             token_type=token_type)
    if token_type is None:
        return ClientOutcome(Verdict.failed("the RSTR has no TokenType"))
    return ClientOutcome(Verdict.passed(f"read a {etree.QName(token).localname} of type {token_type}"),
                         token=etree.tostring(token), token_type=token_type)


def _fault_reason(root: etree._Element) -> str | None:
    """SOAP 1.2 Code/Subcode + Reason/Text, or SOAP 1.1 faultcode + faultstring; None when no fault."""
    fault = root.find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault")
    if fault is not None:
        codes = [v.strip() for v in fault.xpath(".//s:Value/text()", namespaces={"s": SOAP12})]
        reason = fault.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text") or ""
        return f"{' / '.join(codes)}: {reason.strip()}"
    fault = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    if fault is not None:
        return f"{(fault.findtext('faultcode') or '').strip()}: {(fault.findtext('faultstring') or '').strip()}"
    return None


PEER: Final = ZeepClient()
