"""``sts token show``: what a token or an RSTR/RSTRC from any STS says, decoded WITHOUT verifying anything.

Reads SAML 1.1 and 2.0 assertions, EncryptedAssertion / xenc:EncryptedData (then only the algorithms and the
recipient), and WS-Trust 2005/1.3 responses (TokenType, Lifetime, AppliesTo, references, KeyType, proof). The
hardened parser (``xmlsafe``) reads the input; nothing here may be used to make a trust decision: every value is
named ``unverified`` and every printed line is marked UNVERIFIED.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from lxml import etree

from sts import ns
from sts.protocol import xmlsafe
from sts.rp.verifier import claim_uri_11

Info = dict[str, Any]
MARK = "UNVERIFIED"
_TRUST = (ns.WST13, ns.WST2005, ns.WST14)


def _local(element: etree._Element) -> str:
    return ns.split_qn(element.tag)[1] if isinstance(element.tag, str) else ""


def _text(element: etree._Element | None) -> str | None:
    return None if element is None else "".join(element.itertext()).strip()


def _drop_none(info: Info) -> Info:
    return {k: v for k, v in info.items() if v not in (None, [], {}, "")}


def describe(data: bytes) -> Info:
    """The unverified content of a token, RSTR, RSTRC or SOAP envelope around one."""
    root = xmlsafe.parse(data)
    if _local(root) == "Envelope":
        body = root.find(f"{{{ns.split_qn(root.tag)[0]}}}Body")
        children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
        if not children:
            raise ValueError("the SOAP Body is empty")
        root = children[0]
    info: Info = {"verified": False}
    local = _local(root)
    if local in ("RequestSecurityTokenResponseCollection", "RequestSecurityTokenResponse"):
        rstrs = [root] if local == "RequestSecurityTokenResponse" else [
            c for c in root if _local(c) == "RequestSecurityTokenResponse"]
        info["container"] = "RSTRC" if local != "RequestSecurityTokenResponse" else "RSTR"
        info["trust_namespace"] = ns.split_qn(root.tag)[0]
        info["responses"] = [describe_rstr(r) for r in rstrs]
    elif local == "Fault":
        info["fault"] = _text(root)
    else:
        info["container"] = "token"
        info["token"] = describe_token(root)
    return info


def describe_rstr(rstr: etree._Element) -> Info:
    wst = ns.split_qn(rstr.tag)[0]

    def find(local: str) -> etree._Element | None:
        return rstr.find(ns.qn(wst, local))

    lifetime = find("Lifetime")
    requested = find("RequestedSecurityToken")
    token_children = [c for c in requested if isinstance(c.tag, str)] if requested is not None else []
    proof = find("RequestedProofToken")
    return _drop_none({
        "token_type": _text(find("TokenType")),
        "key_type": _text(find("KeyType")),
        "lifetime": _drop_none({
            "created": _text(lifetime.find(ns.qn(ns.WSU, "Created"))) if lifetime is not None else None,
            "expires": _text(lifetime.find(ns.qn(ns.WSU, "Expires"))) if lifetime is not None else None,
        }),
        "applies_to": _text(rstr.find(".//{*}AppliesTo//{*}Address")) or _text(rstr.find("{*}AppliesTo")),
        "attached_reference": _text(rstr.find(f"{ns.qn(wst, 'RequestedAttachedReference')}//{{*}}KeyIdentifier")),
        "unattached_reference": _text(rstr.find(f"{ns.qn(wst, 'RequestedUnattachedReference')}//{{*}}KeyIdentifier")),
        "proof": (("computed key " + (_text(proof.find(ns.qn(wst, "ComputedKey"))) or ""))
                  if proof is not None and proof.find(ns.qn(wst, "ComputedKey")) is not None
                  else ("binary secret (not shown)" if proof is not None else None)),
        "context": rstr.get("Context"),
        "token": describe_token(token_children[0]) if token_children else None,
    })


def describe_token(token: etree._Element) -> Info:
    tag = token.tag
    if tag == ns.qn(ns.SAML2, "EncryptedAssertion"):
        inner = token.find(ns.qn(ns.XENC, "EncryptedData"))
        return _encrypted(inner if inner is not None else token, "SAML 2.0 EncryptedAssertion")
    if tag == ns.qn(ns.XENC, "EncryptedData"):
        return _encrypted(token, "xenc:EncryptedData (an encrypted token, e.g. a SAML 1.1 assertion)")
    if tag == ns.qn(ns.SAML2, "Assertion"):
        return _saml20(token)
    if tag == ns.qn(ns.SAML1, "Assertion"):
        return _saml11(token)
    return {"format": f"unknown token {etree.QName(token).text if isinstance(tag, str) else '?'}"}


def _encrypted(data: etree._Element, what: str) -> Info:
    method = data.find(ns.qn(ns.XENC, "EncryptionMethod"))
    key = data.find(f".//{{{ns.XENC}}}EncryptedKey")
    key_method = key.find(ns.qn(ns.XENC, "EncryptionMethod")) if key is not None else None
    return _drop_none({
        "format": what,
        "encrypted": True,
        "note": "encrypted for the relying party: only its private key decrypts it (sts token verify --rp-key)",
        "data_encryption": method.get("Algorithm") if method is not None else None,
        "key_transport": key_method.get("Algorithm") if key_method is not None else None,
        "recipient": _recipient(key) if key is not None else None,
    })


def _recipient(key: etree._Element) -> str | None:
    cert_text = key.findtext(f".//{{{ns.DS}}}X509Certificate")
    if cert_text:
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode("".join(cert_text.split())))
            return f"certificate {cert.subject.rfc4514_string()} (serial {cert.serial_number})"
        except ValueError:
            return "an unreadable certificate"
    issuer = key.findtext(f".//{{{ns.DS}}}X509IssuerName")
    serial = key.findtext(f".//{{{ns.DS}}}X509SerialNumber")
    if issuer:
        return f"issuer {issuer.strip()} serial {(serial or '').strip()}"
    return _text(key.find(f".//{{{ns.WSSE}}}KeyIdentifier"))


def _signature(assertion: etree._Element) -> Info | None:
    signature = assertion.find(ns.qn(ns.DS, "Signature"))
    if signature is None:
        return {"present": False}
    ds = f"{{{ns.DS}}}"
    references = signature.findall(f"{ds}SignedInfo/{ds}Reference")
    cert_text = signature.findtext(f"{ds}KeyInfo/{ds}X509Data/{ds}X509Certificate")
    signer = None
    if cert_text:
        try:
            signer = x509.load_der_x509_certificate(base64.b64decode("".join(cert_text.split()))).subject.rfc4514_string()
        except ValueError:
            signer = "unreadable certificate"
    method = signature.find(f"{ds}SignedInfo/{ds}SignatureMethod")
    c14n = signature.find(f"{ds}SignedInfo/{ds}CanonicalizationMethod")
    return _drop_none({
        "present": True,
        "signature_method": method.get("Algorithm") if method is not None else None,
        "canonicalization": c14n.get("Algorithm") if c14n is not None else None,
        "references": [_drop_none({
            "uri": r.get("URI"),
            "digest_method": (r.find(f"{ds}DigestMethod").get("Algorithm")
                              if r.find(f"{ds}DigestMethod") is not None else None),
            "transforms": [t.get("Algorithm") for t in r.iterfind(f"{ds}Transforms/{ds}Transform")],
        }) for r in references],
        "key_info_certificate": signer,
    })


def _saml20(a: etree._Element) -> Info:
    s = f"{{{ns.SAML2}}}"
    conditions = a.find(f"{s}Conditions")
    authn = a.find(f"{s}AuthnStatement")
    name_id = a.find(f"{s}Subject/{s}NameID")
    claims: dict[str, list[str]] = {}
    for attribute in a.iterfind(f"{s}AttributeStatement/{s}Attribute"):
        claims.setdefault(attribute.get("Name", ""), []).extend(
            _text(v) or "" for v in attribute.iterfind(f"{s}AttributeValue"))
    return _drop_none({
        "format": "SAML 2.0 assertion",
        "id": a.get("ID"),
        "issue_instant": a.get("IssueInstant"),
        "issuer": _text(a.find(f"{s}Issuer")),
        "subject": _text(name_id),
        "subject_format": name_id.get("Format") if name_id is not None else None,
        "confirmation_methods": [c.get("Method") for c in a.iterfind(f"{s}Subject/{s}SubjectConfirmation")],
        "not_before": conditions.get("NotBefore") if conditions is not None else None,
        "not_on_or_after": conditions.get("NotOnOrAfter") if conditions is not None else None,
        "audiences": [_text(x) for x in a.iterfind(f"{s}Conditions/{s}AudienceRestriction/{s}Audience")],
        "authn_method": _text(authn.find(f"{s}AuthnContext/{s}AuthnContextClassRef")) if authn is not None else None,
        "authn_instant": authn.get("AuthnInstant") if authn is not None else None,
        "claims": claims,
        "signature": _signature(a),
    })


def _saml11(a: etree._Element) -> Info:
    s = f"{{{ns.SAML1}}}"
    conditions = a.find(f"{s}Conditions")
    authn = a.find(f"{s}AuthenticationStatement")
    name_id = a.find(f"*/{s}Subject/{s}NameIdentifier")
    claims: dict[str, list[str]] = {}
    for attribute in a.iterfind(f"{s}AttributeStatement/{s}Attribute"):
        uri = claim_uri_11(attribute.get("AttributeNamespace", ""), attribute.get("AttributeName", ""))
        claims.setdefault(uri, []).extend(_text(v) or "" for v in attribute.iterfind(f"{s}AttributeValue"))
    return _drop_none({
        "format": "SAML 1.1 assertion",
        "id": a.get("AssertionID"),
        "issue_instant": a.get("IssueInstant"),
        "issuer": a.get("Issuer"),
        "subject": _text(name_id),
        "subject_format": name_id.get("Format") if name_id is not None else None,
        "confirmation_methods": sorted({_text(m) for m in a.iterfind(f".//{s}ConfirmationMethod") if _text(m)}),
        "not_before": conditions.get("NotBefore") if conditions is not None else None,
        "not_on_or_after": conditions.get("NotOnOrAfter") if conditions is not None else None,
        "audiences": [_text(x) for x in a.iterfind(f"{s}Conditions/{s}AudienceRestrictionCondition/{s}Audience")],
        "authn_method": authn.get("AuthenticationMethod") if authn is not None else None,
        "authn_instant": authn.get("AuthenticationInstant") if authn is not None else None,
        "claims": claims,
        "signature": _signature(a),
    })


def render_text(info: Info) -> str:
    """Readable lines, each marked UNVERIFIED."""
    lines = [f"{MARK}: decoded without checking any signature; trust nothing below"]
    _render(info, "", lines)
    return "\n".join(lines) + "\n"


def _render(value: Any, prefix: str, lines: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "verified":
                continue
            label = f"{prefix}{key}"
            if isinstance(item, (dict, list)) and item:
                if key == "claims" and isinstance(item, dict):
                    for uri, values in item.items():
                        lines.append(f"{MARK}  {prefix}claim {uri} = {', '.join(values)}")
                    continue
                lines.append(f"{MARK}  {label}:")
                _render(item, prefix + "  ", lines)
            else:
                lines.append(f"{MARK}  {label}: {item}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                lines.append(f"{MARK}  {prefix}[{index + 1}]")
                _render(item, prefix + "  ", lines)
            else:
                lines.append(f"{MARK}  {prefix}- {item}")
