import pytest
from lxml import etree

from sts import ns
from sts.errors import FailedAuthentication, InvalidRequest, MessageExpired, MustUnderstand, VersionMismatch
from sts.protocol.soap import build_envelope, envelope_bytes, fault_http_status, parse_envelope, render_fault
from sts.protocol.xmlbytes import serialised
from sts.uris import SoapVersion
from sts.protocol.xmlsafe import parse


def _env(version: str, header: str = "", body: str = "<x:a xmlns:x='urn:x'/>") -> bytes:
    return f"<s:Envelope xmlns:s='{version}'><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>".encode()


@pytest.mark.parametrize("version", [SoapVersion.SOAP11, SoapVersion.SOAP12])
def test_parse_envelope(version: SoapVersion) -> None:
    env = parse_envelope(parse(_env(version.value, "<h:x xmlns:h='urn:h'/>")))
    assert env.version is version
    assert env.body.tag == "{urn:x}a"
    assert len(env.headers) == 1


def test_unknown_envelope_namespace_is_version_mismatch() -> None:
    with pytest.raises(VersionMismatch):
        parse_envelope(parse(_env("urn:not-soap")))


def test_not_an_envelope() -> None:
    with pytest.raises(InvalidRequest):
        parse_envelope(parse(b"<a/>"))


def test_body_must_hold_at_most_one_element() -> None:
    with pytest.raises(InvalidRequest):
        parse_envelope(parse(_env(ns.SOAP12, body="<a/><b/>")))
    assert parse_envelope(parse(_env(ns.SOAP12, body=""))).body is None


@pytest.mark.parametrize("value", ["1", "true"])
def test_must_understand_unknown_header(value: str) -> None:
    header = f"<h:x xmlns:h='urn:h' s:mustUnderstand='{value}'/>"
    with pytest.raises(MustUnderstand):
        parse_envelope(parse(_env(ns.SOAP12, header)))


def test_must_understand_known_headers_pass() -> None:
    header = f"<wsa:Action xmlns:wsa='{ns.WSA}' s:mustUnderstand='true'>a</wsa:Action>"
    assert parse_envelope(parse(_env(ns.SOAP12, header))).headers


def test_soap11_fault_shape() -> None:
    fault = render_fault(FailedAuthentication("internal detail"), SoapVersion.SOAP11, ns.WST13)
    code = fault.findtext("faultcode")
    prefix, local = code.split(":")
    assert local == "FailedAuthentication"
    assert fault.nsmap[prefix] == ns.WST13
    assert fault.findtext("faultstring") == "Authentication failed"
    assert b"internal detail" not in etree.tostring(fault)


def test_soap12_fault_uses_subcode() -> None:
    fault = render_fault(MessageExpired("x"), SoapVersion.SOAP12, ns.WST2005)
    values = fault.findall(f".//{{{ns.SOAP12}}}Value")
    assert values[0].text == "s:Sender"
    prefix, local = values[1].text.split(":")
    assert (fault.nsmap[prefix], local) == (ns.WSSE, "MessageExpired")
    assert fault_http_status(MessageExpired(), SoapVersion.SOAP12) == 400


def test_version_mismatch_fault_has_no_subcode() -> None:
    fault = render_fault(VersionMismatch(), SoapVersion.SOAP12, None)
    assert fault.findtext(f".//{{{ns.SOAP12}}}Value") == "s:VersionMismatch"
    assert fault.find(f".//{{{ns.SOAP12}}}Subcode") is None


def test_fault_reason_names_one_value() -> None:
    fault = render_fault(InvalidRequest("x", detail="AppliesTo"), SoapVersion.SOAP12, ns.WST13)
    assert fault.findtext(f".//{{{ns.SOAP12}}}Text") == "The request was invalid or malformed: AppliesTo"


def test_build_envelope_roundtrip() -> None:
    data = build_envelope(SoapVersion.SOAP11, etree.Element("{urn:x}a"))
    assert parse_envelope(parse(data)).body.tag == "{urn:x}a"


@pytest.mark.parametrize("version", list(SoapVersion))
def test_an_envelope_of_serialised_parts_is_the_one_build_envelope_makes(version: SoapVersion) -> None:
    body = etree.Element(ns.qn(ns.WST13, "RequestSecurityTokenResponseCollection"), nsmap={"trust": ns.WST13})
    header = etree.Element(ns.qn(ns.WSA, "Action"), nsmap={"wsa": ns.WSA})
    header.text = "urn:action"
    assert envelope_bytes(version, serialised(header), serialised(body)) == build_envelope(
        version, body.__copy__(), [header.__copy__()])
    assert envelope_bytes(version, b"", serialised(body)) == build_envelope(version, body.__copy__())
