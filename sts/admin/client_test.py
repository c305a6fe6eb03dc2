"""``sts client test``: one signed Issue request as a registered client sends it, and what became of it.

The request is in our own layout (:func:`sts.protocol.wsse.build.sign_envelope`: a BinarySecurityToken, exclusive
c14n, the Body and the Timestamp signed) and carries a fresh wsa:MessageID. The wire answer stays generic by
design: a fault names its code and fixed reason only. On the STS host, the audit trail holds the refusal's internal
reason under that MessageID (``detail.reason`` and ``detail.message_id``, written by the SOAP pipeline), and that
reason is what tells a client-side problem (a broken signature, an unregistered certificate) from a policy one (an
unknown relying party, SHA-1 from a client not registered with ``--allow-sha1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from cryptography import x509
from lxml import etree

from sts import ns
from sts.protocol.addressing import render_request_headers
from sts.protocol.soap import build_envelope
from sts.protocol.wsse.build import sign_envelope
from sts.protocol.wstrust.render import render_rst
from sts.protocol.wstrust.response import TransportError, TrustFault, read_reply
from sts.protocol.xmlsafe import parse
from sts.store.audit import AuditRecord, AuditTrail
from sts.tokens.crypto.keys import PrivateKey
from sts.tokens.crypto.signing import default_algorithm
from sts.uris import SIGNATURE_NAMES, RequestType, SignatureAlgorithm, SoapVersion, TrustVersion

#: How far the STS's clock (it stamps the audit record) may be from ours: the MessageID does the matching.
CLOCK_SLACK = timedelta(minutes=2)
_SIGNATURE_SHORT = {algorithm: name for name, algorithm in SIGNATURE_NAMES.items()}


@dataclass(frozen=True)
class SignedProbe:
    """One signed Issue request, ready to post."""

    endpoint: str
    body: bytes
    headers: dict[str, str]
    message_id: str
    algorithm: SignatureAlgorithm

    @property
    def algorithm_name(self) -> str:
        return _SIGNATURE_SHORT[self.algorithm]


@dataclass(frozen=True)
class ProbeOutcome:
    """The STS's answer: a token (its type and id), or a fault (its code and the generic wire reason)."""

    status: int
    token_type: str | None = None
    token_name: str | None = None
    fault_code: str | None = None
    fault_reason: str | None = None

    @property
    def issued(self) -> bool:
        return self.fault_code is None


def build_probe(endpoint: str, key: PrivateKey, cert: x509.Certificate, *, applies_to: str,
                soap: SoapVersion = SoapVersion.SOAP12, version: TrustVersion = TrustVersion.WST13,
                algorithm: SignatureAlgorithm | None = None) -> SignedProbe:
    """A signed Issue RST for ``applies_to`` (SHA-1 digests with RSA-SHA1, SHA-256 otherwise)."""
    algorithm = algorithm or default_algorithm(key)
    action = RequestType.ISSUE.request_action(version)
    headers = render_request_headers(action, endpoint)
    message_id = next(h.text or "" for h in headers if etree.QName(h).localname == "MessageID")
    root = parse(build_envelope(soap, render_rst(version, applies_to=applies_to), headers))
    sign_envelope(root, key, cert, algorithm=algorithm)
    http_headers = {"Content-Type": soap.content_type}
    if soap is SoapVersion.SOAP11:
        http_headers["SOAPAction"] = f'"{action}"'
    else:
        http_headers["Content-Type"] += f'; action="{action}"'
    return SignedProbe(endpoint, etree.tostring(root), http_headers, message_id, algorithm)


def send_probe(probe: SignedProbe, *, verify: bool = True, timeout: float = 30, body: bytes | None = None
               ) -> ProbeOutcome:
    """Post the request (or ``body``, a variant of it) and read the answer; TransportError when there is none."""
    try:
        response = requests.post(probe.endpoint, data=probe.body if body is None else body, headers=probe.headers,
                                 verify=verify, timeout=timeout)
    except requests.RequestException as err:
        raise TransportError(f"cannot reach the STS at {probe.endpoint}: {type(err).__name__}") from None
    try:
        answer = read_reply(response.status_code, response.headers.get("content-type", ""), response.content,
                            probe.endpoint)
    except TrustFault as fault:
        return ProbeOutcome(response.status_code, fault_code=fault.code_name, fault_reason=fault.fault_reason)
    token_type = answer.findtext(f".//{{{ns.WST13}}}TokenType") or answer.findtext(f".//{{{ns.WST2005}}}TokenType")
    return ProbeOutcome(response.status_code, token_type=token_type, token_name=_token_name(answer))


def find_record(trail: AuditTrail, message_id: str, started: datetime, finished: datetime) -> AuditRecord | None:
    """The audit record the STS wrote for the refused request ``message_id``, if this database holds it."""
    records = trail.search(outcome="fault", since=started - CLOCK_SLACK, until=finished + CLOCK_SLACK, limit=1000)
    return next((r for r in records if r.detail.get("message_id") == message_id), None)


def _token_name(answer: etree._Element) -> str | None:
    """The issued token as ``Assertion ID=...`` (its element's local name and its identifier)."""
    holder = next(answer.iter(f"{{{ns.WST13}}}RequestedSecurityToken", f"{{{ns.WST2005}}}RequestedSecurityToken"),
                  None)
    token = next((child for child in holder if isinstance(child.tag, str)), None) if holder is not None else None
    if token is None:
        return None
    identifier = str(token.get("ID") or token.get("AssertionID") or token.get(ns.qn(ns.WSU, "Id")) or "")
    return str(etree.QName(token).localname) + (f" {identifier}" if identifier else "")


__all__ = ["CLOCK_SLACK", "ProbeOutcome", "SignedProbe", "build_probe", "find_record", "send_probe"]
