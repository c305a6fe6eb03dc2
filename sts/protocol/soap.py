"""SOAP 1.1 and 1.2 envelopes in and out, and SOAP faults (SOAP 1.1 §4.4, SOAP 1.2 Part 1 §5.4).

SOAP 1.1 puts the fault QName in ``faultcode``; SOAP 1.2 uses ``env:Sender``/``env:Receiver`` with the QName as
Subcode. Faults of SOAP itself (VersionMismatch, MustUnderstand) carry the envelope's own code.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sts import ns
from sts.errors import InvalidRequest, MustUnderstand, SoapError, StsError, VersionMismatch
from sts.uris import SoapVersion

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
WSA_FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"

#: Header blocks this STS processes; any other with mustUnderstand="1"/"true" is a MustUnderstand fault.
UNDERSTOOD_HEADER_NS = frozenset({ns.WSA, ns.WSA2004, ns.WSSE})
_TRUE = frozenset({"1", "true"})


@dataclass(frozen=True)
class Envelope:
    version: SoapVersion
    headers: tuple[etree._Element, ...]
    body: etree._Element | None  # the single child of soap:Body; None when empty (a WS-Transfer Get)

    def header(self, namespace: str, local: str) -> etree._Element | None:
        tag = ns.qn(namespace, local)
        for block in self.headers:
            if block.tag == tag:
                return block
        return None


_SOAP_BY_NAMESPACE = {version.value: version for version in SoapVersion}


def envelope_version(root: etree._Element) -> SoapVersion:
    """The SOAP version of an Envelope root element; ``InvalidRequest`` for another root, ``VersionMismatch`` for an
    Envelope in an unknown namespace."""
    namespace, local = ns.split_qn(root.tag) if isinstance(root.tag, str) else ("", "")
    if local != "Envelope":
        raise InvalidRequest("root element is not a SOAP Envelope", detail=local or "?")
    version = _SOAP_BY_NAMESPACE.get(namespace)
    if version is None:
        raise VersionMismatch(f"envelope namespace {namespace!r}")
    return version


def parse_envelope(root: etree._Element) -> Envelope:
    """Check an envelope's shape and return its parts; raise a SOAP or ``InvalidRequest`` fault."""
    version = envelope_version(root)
    namespace = version.value
    header, body = _header_and_body(root, namespace)
    headers = tuple(child for child in header if isinstance(child.tag, str)) if header is not None else ()
    _check_must_understand(headers, version)
    children = [child for child in body if isinstance(child.tag, str)]
    if len(children) > 1:
        raise InvalidRequest(f"soap:Body has {len(children)} elements, expected 1")
    return Envelope(version=version, headers=headers, body=children[0] if children else None)


def _header_and_body(root: etree._Element, namespace: str) -> tuple[etree._Element | None, etree._Element]:
    header_tag, body_tag = ns.qn(namespace, "Header"), ns.qn(namespace, "Body")
    header: etree._Element | None = None
    body: etree._Element | None = None
    for child in root:
        if child.tag == header_tag and header is None and body is None:
            header = child
        elif child.tag == body_tag and body is None:
            body = child
        elif isinstance(child.tag, str):
            raise InvalidRequest("unexpected element in soap:Envelope", detail=ns.split_qn(child.tag)[1])
    if body is None:
        raise InvalidRequest("soap:Body is missing")
    return header, body


def _check_must_understand(headers: tuple[etree._Element, ...], version: SoapVersion) -> None:
    attr = ns.qn(version.value, "mustUnderstand")
    for block in headers:
        if block.get(attr, "0").strip() in _TRUE and ns.split_qn(block.tag)[0] not in UNDERSTOOD_HEADER_NS:
            raise MustUnderstand(f"header {block.tag}", detail=ns.split_qn(block.tag)[1])


def build_envelope(
    version: SoapVersion, body: etree._Element, headers: list[etree._Element] | tuple[etree._Element, ...] = ()
) -> bytes:
    """Serialize an envelope with the given header blocks and body content."""
    env_ns = version.value
    envelope = etree.Element(ns.qn(env_ns, "Envelope"), nsmap={"s": env_ns})
    if headers:
        header = etree.SubElement(envelope, ns.qn(env_ns, "Header"))
        header.extend(headers)
    etree.SubElement(envelope, ns.qn(env_ns, "Body")).append(body)
    return bytes(etree.tostring(envelope, xml_declaration=False, encoding="utf-8"))


def envelope_bytes(version: SoapVersion, headers: bytes, body: bytes) -> bytes:
    """``build_envelope`` for header blocks and body content serialised already (each declaring its namespaces):
    the same bytes."""
    before_headers, before_body, after_body = _ENVELOPE_PARTS[version]
    if not headers:
        return b"".join((before_body[1], body, after_body))
    return b"".join((before_headers, headers, before_body[0], body, after_body))


def _envelope_parts(version: SoapVersion) -> tuple[bytes, tuple[bytes, bytes], bytes]:
    """(up to the header blocks, (between them and the body, up to the body without headers), after the body),
    from ``build_envelope`` itself."""
    marks = (b"<sts-slot-header/>", b"<sts-slot-body/>")
    with_headers = build_envelope(version, etree.Element("sts-slot-body"), [etree.Element("sts-slot-header")])
    before_headers, rest = with_headers.split(marks[0])
    between, after_body = rest.split(marks[1])
    before_body = build_envelope(version, etree.Element("sts-slot-body")).split(marks[1])[0]
    return before_headers, (between, before_body), after_body


_ENVELOPE_PARTS = {version: _envelope_parts(version) for version in SoapVersion}


def upgrade_header(version: SoapVersion) -> etree._Element:
    """The env:Upgrade header block of a VersionMismatch fault in an envelope of ``version`` (SOAP 1.2 Part 1 §5.4.7;
    a SOAP 1.1 reply carries it too, Appendix A): the envelopes this node supports, SOAP 1.2 first.

    The qname attributes are QNames in text, which lxml does not rewrite when it merges namespace declarations
    into the envelope's: the envelope's own namespace is therefore named by the envelope's prefix ``s`` (see
    ``build_envelope``), the other by a prefix of its own.
    """
    other = SoapVersion.SOAP11 if version is SoapVersion.SOAP12 else SoapVersion.SOAP12
    prefixes = {version: "s", other: "s11" if other is SoapVersion.SOAP11 else "s12"}
    upgrade = etree.Element(ns.qn(ns.SOAP12, "Upgrade"), nsmap={prefixes[v]: v.value for v in SoapVersion})
    for supported_version in (SoapVersion.SOAP12, SoapVersion.SOAP11):
        supported = etree.SubElement(upgrade, ns.qn(ns.SOAP12, "SupportedEnvelope"))
        supported.set("qname", f"{prefixes[supported_version]}:Envelope")
    return upgrade


def render_fault(err: StsError, version: SoapVersion, trust_ns: str | None) -> etree._Element:
    """The soap:Fault element for an error (public reason only, never internal detail)."""
    env_ns = version.value
    if isinstance(err, SoapError):
        code_ns, code = env_ns, (err.code if err.code != "Sender" else _sender(version, True))
    else:
        code_ns, code = err.fault_qname(trust_ns)
    prefix = "s" if code_ns == env_ns else _prefix_for(code_ns)
    nsmap = {"s": env_ns} if prefix == "s" else {"s": env_ns, prefix: code_ns}
    fault = etree.Element(ns.qn(env_ns, "Fault"), nsmap=nsmap)
    if version is SoapVersion.SOAP11:
        code_text = f"{prefix}:{code}"
        if isinstance(err, SoapError) and err.code == "Sender":
            code_text = "s:Client"
        etree.SubElement(fault, "faultcode").text = code_text
        # SOAP 1.1's faultstring is a plain xs:string: no xml:lang (its schema refuses the attribute).
        etree.SubElement(fault, "faultstring").text = err.public_reason
        return fault
    code_el = etree.SubElement(fault, ns.qn(env_ns, "Code"))
    value = etree.SubElement(code_el, ns.qn(env_ns, "Value"))
    if code_ns == env_ns:
        value.text = f"s:{code}"
    else:
        value.text = f"s:{_sender(version, err.sender)}"
        sub = etree.SubElement(code_el, ns.qn(env_ns, "Subcode"))
        etree.SubElement(sub, ns.qn(env_ns, "Value")).text = f"{prefix}:{code}"
    reason = etree.SubElement(fault, ns.qn(env_ns, "Reason"))
    text = etree.SubElement(reason, ns.qn(env_ns, "Text"))
    text.set(XML_LANG, "en")
    text.text = err.public_reason
    return fault


def fault_http_status(err: StsError, version: SoapVersion) -> int:
    """SOAP 1.2 Part 2 §7.5.2.2: 400 only for an env:Sender fault; env:Receiver, env:MustUnderstand and
    env:VersionMismatch are 500. SOAP 1.1 (§6.2) is always 500."""
    if version is SoapVersion.SOAP12 and err.sender and not isinstance(err, (VersionMismatch, MustUnderstand)):
        return 400
    return 500


def _sender(version: SoapVersion, sender: bool) -> str:
    if version is SoapVersion.SOAP11:
        return "Client" if sender else "Server"
    return "Sender" if sender else "Receiver"


def _prefix_for(namespace: str) -> str:
    if namespace == ns.WSSE:
        return "wsse"
    if namespace == ns.WSA:
        return "wsa"  # wsa:ActionNotSupported (WS-Addressing 1.0 SOAP Binding §6.4.4)
    if namespace == ns.WST2005:
        return "t"
    return "trust"
