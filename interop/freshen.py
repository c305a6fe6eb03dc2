"""Make a recorded request fit to send again: fresh times, nonces and ids, the target's user and relying party.

What a replay must not change is the recording's own shape: its SOAP and WS-Trust versions, element order,
prefixes and quirks (lowercase ``messageID``, a ``Password`` without ``Type``) go out as recorded. Only values
that are stale or belong to another deployment are rewritten:

- client templates' ``%NAME%`` placeholders (ADAL's) are filled in;
- ``wsu:Timestamp``, ``wsa:MessageID`` / ``messageID`` and ``wsa:To`` get current values;
- the UsernameToken's user and password become the target's (a digest is recomputed with a fresh nonce);
- ``AppliesTo`` names the target's relying party of the sidecar's profile;
- Validate/Renew/Cancel targets get a token the target issued a moment ago (the recording's was another STS's);
- a bare body (PicketLink's hand-written ones) is put into a SOAP 1.2 envelope with our UsernameToken header;
- a signed request (``auth = "x509"``) is signed again, over the same parts, with the target's client key.
"""

from __future__ import annotations

import base64
import copy
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from sts import ns
from sts.protocol.soap import build_envelope
from sts.protocol.addressing import render_request_headers
from sts.uris import PASSWORD_DIGEST, SoapVersion, TrustVersion
from sts.tokens.crypto.keys import load_certificate, load_private_key
from sts.protocol.wsse.build import build_security_header, sign_envelope
from sts.protocol.wsse.username import password_digest
from sts.xmltime import format_datetime, utcnow

from .sidecar import Fixture
from .xmlread import read_xml
from .target import Target

__all__ = ["FreshRequest", "TokenSource", "freshen"]

#: Issues a fresh token for a profile and returns RequestedSecurityToken's first child.
TokenSource = Callable[[str], etree._Element]

_TRUST: Final = {"2005": ns.WST2005, "1.3": ns.WST13, "1.4": ns.WST13}
#: Elements whose content is a token the target must have issued (ActAs is WS-Trust 1.4's, in its namespace).
_TARGETS: Final = ("ValidateTarget", "RenewTarget", "CancelTarget", "OnBehalfOf")


@dataclass(frozen=True)
class FreshRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def freshen(fixture: Fixture, target: Target, tokens: TokenSource, variant: str = "as-recorded") -> FreshRequest:
    """The fixture's request rewritten for ``target`` (see the module docstring).

    ``variant``: ``wrong-password`` sends a password the target must refuse; ``keep-target`` leaves the
    recording's own Validate/Renew/Cancel target token (another STS's) in place.
    """
    if variant == "wrong-password":
        target = replace(target, password=target.password + "-but-wrong")
    data = _fill_placeholders(fixture.data(), fixture, target)
    root = read_xml(data)
    url = target.url(fixture.replay.path)
    trust = _TRUST[fixture.message.wstrust]
    if fixture.message.soap == "none":
        root = _envelope(root, fixture, url, target)
    soap_ns = etree.QName(root).namespace
    _refresh_addressing(root, url)
    _refresh_security(root, target, soap_ns)
    _rewrite_applies_to(root, target.rp(fixture.replay.relying_party), trust)
    if fixture.replay.target_token != "none" and variant != "keep-target":
        _replace_targets(root, trust, tokens(fixture.replay.target_token))
    if fixture.replay.use_key == "fresh-certificate":
        _use_target_certificate(root, target)
    if fixture.message.auth == "x509":
        _resign(root, target)  # last: the signature covers the Body and Timestamp as rewritten
    body = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return FreshRequest(url, _http_headers(root, soap_ns), body)


def _fill_placeholders(data: bytes, fixture: Fixture, target: Target) -> bytes:
    now = utcnow()
    rp = target.rp(fixture.replay.relying_party)
    values = {
        "%MESSAGE_ID%": f"urn:uuid:{uuid.uuid4()}", "%WSTRUST_ENDPOINT%": target.url(fixture.replay.path),
        "%CREATED%": format_datetime(now), "%EXPIRES%": format_datetime(now + timedelta(minutes=10)),
        "%USERNAME%": target.username, "%PASSWORD%": target.password,
        "%APPLIES_TO%": rp.address if rp else "urn:interop:no-such-relying-party",
    }
    for placeholder, value in values.items():
        data = data.replace(placeholder.encode(), escape(value).encode())
    return data


def _envelope(body: etree._Element, fixture: Fixture, url: str, target: Target) -> etree._Element:
    version = TrustVersion(_TRUST[fixture.message.wstrust])
    # "batch-issue" -> RST/BatchIssue (WS-Trust 1.3 section 8.1), "issue" -> RST/Issue
    action = version.uri("RST/" + fixture.message.operation.title().replace("-", ""))
    headers = render_request_headers(action, url)
    headers.append(build_security_header(target.username, target.password))
    return read_xml(build_envelope(SoapVersion.SOAP12, body, headers))


def _refresh_addressing(root: etree._Element, url: str) -> None:
    for wsa in (ns.WSA, ns.WSA2004):
        for element in root.iter(f"{{{wsa}}}MessageID", f"{{{wsa}}}messageID"):
            element.text = f"urn:uuid:{uuid.uuid4()}"
        for element in root.iter(f"{{{wsa}}}To"):
            element.text = url


def _refresh_security(root: etree._Element, target: Target, soap_ns: str) -> None:
    now = utcnow()
    created = format_datetime(now)
    for stamp in root.iter(ns.qn(ns.WSU, "Timestamp")):
        for child, value in (("Created", created), ("Expires", format_datetime(now + timedelta(minutes=5)))):
            element = stamp.find(ns.qn(ns.WSU, child))
            if element is not None:
                element.text = value
    for token in root.iter(ns.qn(ns.WSSE, "UsernameToken")):
        _refresh_username(token, target, created)


def _refresh_username(token: etree._Element, target: Target, created: str) -> None:
    username = token.find(ns.qn(ns.WSSE, "Username"))
    password = token.find(ns.qn(ns.WSSE, "Password"))
    if username is not None:
        username.text = target.username
    if password is None:
        return
    if (password.get("Type") or "").strip() != PASSWORD_DIGEST:
        password.text = target.password
        return
    nonce = os.urandom(16)
    nonce_el, created_el = token.find(ns.qn(ns.WSSE, "Nonce")), token.find(ns.qn(ns.WSU, "Created"))
    if nonce_el is None or created_el is None:
        raise ValueError("a PasswordDigest UsernameToken without Nonce or Created cannot be refreshed")
    nonce_el.text = base64.b64encode(nonce).decode()
    created_el.text = created
    password.text = password_digest(nonce, created, target.password)


def _rewrite_applies_to(root: etree._Element, rp: object, trust: str) -> None:
    address = getattr(rp, "address", None)
    if address is None:
        return
    for policy in (ns.WSP12, ns.WSP15, ns.WSP2006):
        for applies in root.iter(f"{{{policy}}}AppliesTo"):
            for wsa in (ns.WSA, ns.WSA2004):
                for element in applies.iter(f"{{{wsa}}}Address"):
                    element.text = address


def _replace_targets(root: etree._Element, trust: str, token: etree._Element) -> None:
    found = False
    for tag in [ns.qn(trust, local) for local in _TARGETS] + [ns.qn(ns.WST14, "ActAs")]:
        for holder in root.iter(tag):
            for child in list(holder):
                holder.remove(child)
            holder.append(copy.deepcopy(token))
            found = True
    if not found:
        raise ValueError("[replay] target_token is set but the request has no Validate/Renew/CancelTarget, "
                         "OnBehalfOf or ActAs")


def _use_target_certificate(root: etree._Element, target: Target) -> None:
    """UseKey names the key that will sign the request (proof of possession): the target's client certificate."""
    if target.client_cert_pem is None:
        raise ValueError("[replay] use_key = 'fresh-certificate' but the target has no X.509 client certificate")
    der = base64.b64encode(load_certificate(target.client_cert_pem).public_bytes(Encoding.DER)).decode()
    found = [e for wst in (ns.WST13, ns.WST2005) for use_key in root.iter(ns.qn(wst, "UseKey"))
             for e in use_key.iter(ns.qn(ns.DS, "X509Certificate"), ns.qn(ns.WSSE, "BinarySecurityToken"))]
    if not found:
        raise ValueError("[replay] use_key = 'fresh-certificate' but UseKey carries no certificate")
    for element in found:
        element.text = der


def _resign(root: etree._Element, target: Target) -> None:
    """Replace the recording's signature by one with the target's registered client key over the same parts
    (Body and Timestamp, the certificate in a BinarySecurityToken): the old one no longer matches."""
    if target.client_key_pem is None or target.client_cert_pem is None:
        raise ValueError("the request was signed, and the target has no registered X.509 client key to re-sign")
    security = root.find(f".//{{{ns.WSSE}}}Security")
    if security is None:
        raise ValueError("[message] auth = 'x509' but the request has no wsse:Security header")
    for old in [*security.findall(ns.qn(ns.DS, "Signature")), *security.findall(ns.qn(ns.WSSE, "BinarySecurityToken"))]:
        security.remove(old)
    sign_envelope(root, load_private_key(target.client_key_pem), load_certificate(target.client_cert_pem))


def _http_headers(root: etree._Element, soap_ns: str | None) -> dict[str, str]:
    action = ""
    for wsa in (ns.WSA, ns.WSA2004):
        element = root.find(f".//{{{wsa}}}Action")
        if element is not None and element.text:
            action = element.text.strip()
    if soap_ns == ns.SOAP11:
        return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
    # msal/adal's way: SOAP 1.2 content type plus a separate SOAPAction header; the STS routes on wsa:Action.
    return {"Content-Type": "application/soap+xml; charset=utf-8", "SOAPAction": action}
