"""The shape of a WS-Trust answer, to compare a recorded answer with ours to the equivalent request.

Not bytes: the element paths from the envelope down to the RSTR's children and their children, the token's
root element with the names of its attributes and its direct children, token and key types read as their
meaning (SAML 1.1 / 2.0, bearer), reference ValueTypes, and fault codes. The recording's shape (less what the
sidecar's ``ignore`` lists, with its reason) must be contained in ours; we may say more. Order is not compared:
WS-Trust's RSTR is an open ``xs:any`` sequence, and AD FS and PingFederate order its children differently.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from sts import ns

from .expect import token_type_name
from .xmlread import read_xml

__all__ = ["shape", "shape_problems"]

_TOKENS: Final = frozenset({"Assertion", "EncryptedAssertion", "EncryptedData"})
_SOAP_VERSIONS: Final = {ns.SOAP11: "1.1", ns.SOAP12: "1.2"}
_VALUE_ATTRIBUTES: Final = frozenset({"ValueType", "TokenType"})


def shape(data: bytes) -> set[str]:
    """The answer's paths from the Body's child down (a bare RSTRC, as PicketLink's are, reads the same)."""
    root = read_xml(data)
    paths: set[str] = set()
    if etree.QName(root).localname == "Envelope":
        paths.add(f"soap={_SOAP_VERSIONS.get(etree.QName(root).namespace or '', '?')}")
        body = root.find(ns.qn(etree.QName(root).namespace or "", "Body"))
        root = next((c for c in body if isinstance(c.tag, str)), root) if body is not None else root
    if etree.QName(root).localname == "RequestSecurityTokenResponseCollection":
        # Whether a collection wraps the RSTR is its own fact ("collection"), so that a sidecar can excuse it
        # (WS-Trust 1.3 answers Renew/Validate/Cancel with a bare RSTR) without excusing what is inside.
        paths.add("collection")
        root = next((c for c in root if isinstance(c.tag, str)), root)
    _walk(root, "", paths, depth=0)
    return paths


def shape_problems(recorded: bytes, ours: bytes, ignore: tuple[str, ...] = ()) -> list[str]:
    """What the recorded answer has that ours lacks (paths naming an ignored element are left out)."""
    missing = sorted(p for p in shape(recorded) - shape(ours) if not _ignored(p, ignore))
    return [f"ours lacks {p}" for p in missing]


def _ignored(path: str, ignore: tuple[str, ...]) -> bool:
    parts = {part.split("=")[0].split("@")[0] for part in path.split("/")}
    return any(name in parts for name in ignore)


def _walk(element: etree._Element, prefix: str, paths: set[str], depth: int) -> None:
    local = etree.QName(element).localname
    path = f"{prefix}/{local}" if prefix else local
    value = _value(element, local)
    paths.add(f"{path}={value}" if value else path)
    if local in _TOKENS:
        _token(element, path, paths)
        return
    for name in _VALUE_ATTRIBUTES & set(element.attrib):
        paths.add(f"{path}@{name}={element.get(name)}")
    if depth < 8:
        for child in element:
            if isinstance(child.tag, str):
                _walk(child, path, paths, depth + 1)


def _value(element: etree._Element, local: str) -> str | None:
    text = (element.text or "").strip()
    if local == "TokenType":
        return token_type_name(text) or text
    if local in {"KeyType", "RequestType", "Code"}:
        return text.rsplit("/", 1)[-1]
    if local == "Value" and ":" in text:  # SOAP 1.2 fault (sub)code: compare the local name
        return text.rsplit(":", 1)[-1]
    if local == "faultcode":
        return text.rsplit(":", 1)[-1]
    return None


def _token(element: etree._Element, path: str, paths: set[str]) -> None:
    namespace = etree.QName(element).namespace
    kind = {ns.SAML1: "saml11", ns.SAML2: "saml20"}.get(namespace or "", "encrypted")
    paths.add(f"{path}:{kind}")
    for name in element.attrib:
        paths.add(f"{path}@{etree.QName(name).localname}")
    for child in element:
        if isinstance(child.tag, str):
            paths.add(f"{path}/{etree.QName(child).localname}")
