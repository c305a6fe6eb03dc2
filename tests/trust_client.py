"""Test-side helpers: build an RST envelope, post it over real HTTP, pull the token out of the RSTR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from lxml import etree

from sts import ns
from sts.protocol.addressing import render_request_headers
from sts.protocol.soap import build_envelope
from sts.uris import RequestType, SoapVersion, TrustVersion
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wstrust.render import render_rst
from sts.protocol.xmlsafe import parse


@dataclass
class Reply:
    status: int
    content_type: str
    root: etree._Element

    def find(self, path: str) -> etree._Element | None:
        return self.root.find(path, namespaces=NSMAP)

    def findtext(self, path: str) -> str | None:
        return self.root.findtext(path, namespaces=NSMAP)

    @property
    def fault_code(self) -> tuple[str, str] | None:
        """(namespace, local name) of the fault's most specific code, or None."""
        fault = self.root.find(f".//{{{ns.SOAP12}}}Fault")
        if fault is not None:
            values = fault.findall(f".//{{{ns.SOAP12}}}Value")
            text, scope = values[-1].text, values[-1]
        else:
            fault = self.root.find(f".//{{{ns.SOAP11}}}Fault")
            if fault is None:
                return None
            scope = fault.find("faultcode")
            text = scope.text
        prefix, _, local = text.partition(":")
        return scope.nsmap[prefix], local

    @property
    def fault_reason(self) -> str | None:
        return (self.root.findtext(f".//{{{ns.SOAP12}}}Text")
                or self.root.findtext(f".//{{{ns.SOAP11}}}Fault/faultstring"))

    def token(self) -> etree._Element:
        (requested,) = self.root.iterfind(".//{*}RequestedSecurityToken")
        return requested[0]


NSMAP = {"s12": ns.SOAP12, "s11": ns.SOAP11, "wsa": ns.WSA, "t": ns.WST2005, "trust": ns.WST13,
         "wsse": ns.WSSE, "wsu": ns.WSU, "saml": ns.SAML1, "saml2": ns.SAML2}


def rst_envelope(
    *,
    user: str,
    password: str,
    applies_to: str | None,
    version: TrustVersion = TrustVersion.WST13,
    soap: SoapVersion = SoapVersion.SOAP12,
    digest: bool = False,
    to: str | None = None,
    **rst_options: object,
) -> bytes:
    rst = render_rst(version, applies_to=applies_to, **rst_options)  # type: ignore[arg-type]
    request_type = RequestType(str(rst_options.get("request_type", "Issue")))
    headers = render_request_headers(request_type.request_action(version), to)
    headers.append(build_security_header(user, password, digest=digest, soap_ns=soap.value))
    return build_envelope(soap, rst, headers)


def post(url: str, body: bytes, soap: SoapVersion = SoapVersion.SOAP12, content_type: str | None = None,
         **kwargs: object) -> Reply:
    response = httpx.post(url, content=body, headers={"content-type": content_type or soap.content_type},
                          timeout=30, **kwargs)  # type: ignore[arg-type]
    return Reply(response.status_code, response.headers.get("content-type", ""), parse(response.content))


def handle_in_process(runtime: Any, body: bytes) -> Reply:
    """``body`` through ``runtime.endpoint.handle`` (the pipeline without HTTP), read back as a Reply."""
    from sts.model import RequestContext  # noqa: PLC0415
    from sts.xmltime import utcnow  # noqa: PLC0415

    ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=utcnow())
    response = runtime.endpoint.handle(body, ctx)
    return Reply(response.status, response.content_type, etree.fromstring(response.body))


def valid_digest_issue(demo: dict[str, str]) -> bytes:
    """A valid Issue for the demo relying party with a fresh PasswordDigest (never a replay)."""
    return bytes(rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], digest=True))
