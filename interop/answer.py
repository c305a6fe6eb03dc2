"""Read a WS-Trust answer structurally: fault or RSTR(C), and what each RSTR says.

Independent of ``sts.protocol.wstrust.response`` on purpose: the suite must be able to judge our STS (and another one)
without trusting our own client's reading of it. Only lxml, with a parser that loads nothing external.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lxml import etree

from sts import ns
from sts.xmltime import parse_datetime

from .xmlread import XmlError, read_xml

__all__ = ["Answer", "AnswerError", "Rstr", "describe", "read_answer"]

_TRUST: Final = (ns.WST13, ns.WST2005, ns.WST14)
_SOAP: Final = (ns.SOAP12, ns.SOAP11)


class AnswerError(ValueError):
    """The answer is not a SOAP envelope with a Body (or not XML at all)."""


@dataclass(frozen=True)
class Rstr:
    element: etree._Element

    @property
    def trust_ns(self) -> str:
        return etree.QName(self.element).namespace or ""

    def children(self) -> list[str]:
        return [etree.QName(c).localname for c in self.element if isinstance(c.tag, str)]

    def child(self, local: str) -> etree._Element | None:
        return self.element.find(ns.qn(self.trust_ns, local))

    def text(self, local: str) -> str | None:
        element = self.child(local)
        return element.text.strip() if element is not None and element.text else None

    @property
    def token(self) -> etree._Element | None:
        holder = self.child("RequestedSecurityToken")
        if holder is None:
            return None
        return next((c for c in holder if isinstance(c.tag, str)), None)

    def lifetime(self) -> tuple[datetime, datetime] | None:
        lifetime = self.child("Lifetime")
        if lifetime is None:
            return None
        created, expires = lifetime.findtext(ns.qn(ns.WSU, "Created")), lifetime.findtext(ns.qn(ns.WSU, "Expires"))
        if not created or not expires:
            return None
        return parse_datetime(created), parse_datetime(expires)

    def status_code(self) -> str | None:
        status = self.child("Status")
        code = status.findtext(ns.qn(self.trust_ns, "Code")) if status is not None else None
        return code.strip() if code else None

    def proof(self) -> str:
        proof = self.child("RequestedProofToken")
        if proof is None:
            return "none"
        inner = next((c for c in proof if isinstance(c.tag, str)), None)
        local = etree.QName(inner).localname if inner is not None else ""
        return {"BinarySecret": "binary-secret", "ComputedKey": "computed-key",
                "EncryptedKey": "encrypted-key"}.get(local, local or "empty")


@dataclass(frozen=True)
class Answer:
    root: etree._Element
    soap_ns: str
    fault_code: str | None          # local name of the most specific fault code
    fault_code_ns: str | None
    fault_reason: str | None
    collection: bool                # RSTRC (or RSTC of a batch) around the RSTRs
    rstrs: tuple[Rstr, ...]
    body_child: str | None


def describe(answer: Answer) -> str:
    """One line on what the answer was, for the report."""
    if answer.fault_code is not None:
        return f"fault {answer.fault_code}: {answer.fault_reason}"
    parts = []
    for rstr in answer.rstrs[:2]:
        token = rstr.token
        what = etree.QName(token).localname if token is not None else None
        status = rstr.status_code()
        parts.append(", ".join(filter(None, [
            rstr.text("TokenType") and f"TokenType {rstr.text('TokenType')}", what and f"token {what}",
            status and f"status {status.rsplit('/', 1)[-1]}",
            "cancelled" if rstr.child("RequestedTokenCancelled") is not None else None])))
    wrapper = "RSTRC" if answer.collection else "RSTR"
    return f"{wrapper}: " + "; ".join(parts)


def read_answer(data: bytes) -> Answer:
    try:
        root = read_xml(data)
    except XmlError as err:
        raise AnswerError(f"not acceptable XML: {err}") from None
    soap_ns = etree.QName(root).namespace or ""
    body = root.find(ns.qn(soap_ns, "Body")) if soap_ns in _SOAP else None
    if body is None:
        raise AnswerError(f"not a SOAP envelope (root {etree.QName(root).text})")
    child = next((c for c in body if isinstance(c.tag, str)), None)
    if child is None:
        return Answer(root, soap_ns, None, None, None, False, (), None)
    local = etree.QName(child).localname
    if local == "Fault":
        code_ns, code, reason = _fault(child, soap_ns)
        return Answer(root, soap_ns, code, code_ns, reason, False, (), local)
    if local == "RequestSecurityTokenResponse":
        return Answer(root, soap_ns, None, None, None, False, (Rstr(child),), local)
    rstrs = tuple(Rstr(c) for c in child if isinstance(c.tag, str)
                  and etree.QName(c).localname == "RequestSecurityTokenResponse")
    return Answer(root, soap_ns, None, None, None, True, rstrs, local)


def _fault(fault: etree._Element, soap_ns: str) -> tuple[str | None, str | None, str | None]:
    if soap_ns == ns.SOAP12:
        values = fault.findall(f".//{{{ns.SOAP12}}}Value")
        qname = values[-1] if values else None
        reason = fault.findtext(f".//{{{ns.SOAP12}}}Text")
    else:
        qname = fault.find("faultcode")
        reason = fault.findtext("faultstring")
    if qname is None or not qname.text:
        return None, None, reason
    prefix, _, local = qname.text.strip().rpartition(":")
    return qname.nsmap.get(prefix or None), local, reason

