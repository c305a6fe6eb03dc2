"""python3-saml (OneLogin's SAML toolkit) as an independent relying party: it verifies our tokens with the STS
certificate only.

SAML 2.0 goes through the toolkit's real SP code: the assertion (or EncryptedAssertion) is wrapped in an unsigned
Success ``samlp:Response`` and validated by ``OneLogin_Saml2_Response.is_valid`` in strict mode (XSD, conditions,
audience, issuer, bearer confirmation, ``wantAssertionsSigned``) with the STS certificate as the IdP's x509cert and
the relying party's key as the SP key (it decrypts). SAML 1.1 is outside the toolkit's SP flow: its own
``decrypt_element`` and ``validate_node_sign`` are used with ``AssertionID`` registered as the ID attribute.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from sts.protocol.xmlsafe import parse

from ..model import TokenCase, Verdict
from .reading import Read, judge

SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
DS = "http://www.w3.org/2000/09/xmldsig#"
_NS = {"saml": SAML1, "ds": DS}
_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


def _version() -> str | None:
    try:
        return metadata.version("python3-saml")
    except metadata.PackageNotFoundError:
        return None


# --- SAML 2.0: the toolkit's own Response validation ---------------------------------------------------------

def _wrap(token: bytes) -> bytes:
    """An unsigned Success samlp:Response around the assertion, as an IdP would POST it."""
    response = etree.Element(f"{{{SAMLP}}}Response", nsmap={"samlp": SAMLP}, ID="_" + uuid.uuid4().hex,
                             Version="2.0", IssueInstant=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    status = etree.SubElement(response, f"{{{SAMLP}}}Status")
    etree.SubElement(status, f"{{{SAMLP}}}StatusCode", Value=_SUCCESS)
    response.append(parse(token))
    return bytes(etree.tostring(response))


def _settings(case: TokenCase, issuer: str) -> Any:
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    audience = case.expected.audience
    return OneLogin_Saml2_Settings({
        "strict": True,
        "debug": False,
        "sp": {"entityId": audience, "assertionConsumerService": {"url": audience, "binding": _POST},
               "x509cert": "", "privateKey": (case.rp_key_pem or b"").decode()},
        "idp": {"entityId": issuer, "singleSignOnService": {"url": "https://sts.invalid/sso", "binding": _REDIRECT},
                "x509cert": case.sts_cert_pem.decode()},
        "security": {"wantAssertionsSigned": True, "wantAttributeStatement": False},
    })


def _request_data(audience: str) -> dict[str, str]:
    url = urlsplit(audience)
    return {"https": "on" if url.scheme != "http" else "off", "http_host": url.netloc or "rp.invalid",
            "script_name": url.path or "/"}


def _read_saml20(case: TokenCase) -> Read:
    from onelogin.saml2.response import OneLogin_Saml2_Response

    posted = base64.b64encode(_wrap(case.token)).decode()
    # The IdP's entityID is configuration in a real SP; here it is the token's own Issuer (not under test).
    probe = OneLogin_Saml2_Response(_settings(case, "urn:unknown"), posted)
    issuers = probe.get_issuers()
    response = OneLogin_Saml2_Response(_settings(case, issuers[0] if issuers else ""), posted)
    response.is_valid(_request_data(case.expected.audience), raise_exceptions=True)
    attributes: dict[str, list[str]] = response.get_attributes()
    return Read(response.get_nameid(), tuple(response.get_audiences()),
                {name: tuple(values) for name, values in attributes.items()})


# --- SAML 1.1: the toolkit's decrypt and signature primitives ------------------------------------------------

def _saml11_assertion(case: TokenCase) -> Any:
    from onelogin.saml2.utils import OneLogin_Saml2_Utils
    from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

    root = OneLogin_Saml2_XML.to_etree(case.token)
    if case.encrypted:
        if case.rp_key_pem is None:
            raise ValueError("encrypted token but no relying-party key")
        root = OneLogin_Saml2_Utils.decrypt_element(root, case.rp_key_pem.decode())
    if root.tag != f"{{{SAML1}}}Assertion":
        raise ValueError(f"not a SAML 1.1 assertion: {root.tag}")
    return root


def _verify_saml11(assertion: Any, cert_pem: bytes) -> None:
    import xmlsec
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    xmlsec.tree.add_ids(assertion, ["AssertionID"])
    signatures = assertion.findall(f"{{{DS}}}Signature")
    if len(signatures) != 1:
        raise ValueError(f"Expected exactly one signature node; got {len(signatures)}.")
    uris = signatures[0].xpath("ds:SignedInfo/ds:Reference/@URI", namespaces=_NS)
    if uris != ["#" + assertion.get("AssertionID", "")]:
        raise ValueError(f"the signature does not cover the assertion: references {uris}")
    OneLogin_Saml2_Utils.validate_node_sign(signatures[0], assertion, cert_pem.decode(), raise_exceptions=True)


def _read_saml11(case: TokenCase) -> Read:
    assertion = _saml11_assertion(case)
    _verify_saml11(assertion, case.sts_cert_pem)
    subjects = {str(s).strip() for s in assertion.xpath(".//saml:Subject/saml:NameIdentifier/text()", namespaces=_NS)}
    if len(subjects) > 1:
        raise ValueError(f"several subjects: {sorted(subjects)}")
    audiences = assertion.xpath("saml:Conditions/saml:AudienceRestrictionCondition/saml:Audience/text()",
                                namespaces=_NS)
    claims: dict[str, tuple[str, ...]] = {}
    for attribute in assertion.xpath("saml:AttributeStatement/saml:Attribute", namespaces=_NS):
        uri = attribute.get("AttributeNamespace", "") + "/" + attribute.get("AttributeName", "")
        values = attribute.xpath("saml:AttributeValue/text()", namespaces=_NS)
        claims[uri] = claims.get(uri, ()) + tuple(str(v) for v in values)
    return Read(subjects.pop() if subjects else None, tuple(str(a).strip() for a in audiences), claims)


class OneLoginPeer:
    """python3-saml: decrypts with python-xmlsec, verifies with the STS certificate only."""

    about = ("OneLogin python3-saml (PyPI): SAML 2.0 through its strict SP Response validation, "
             "SAML 1.1 through its decrypt_element / validate_node_sign with AssertionID as ID")

    def __init__(self) -> None:
        version = _version()
        self.name = f"python3-saml {version}" if version else "python3-saml"

    def unavailable(self) -> str | None:
        try:
            import onelogin.saml2.response  # noqa: F401
            import xmlsec  # noqa: F401
        except ImportError as err:
            return f"python3-saml is not installed ({err}): pip install -r interop/requirements.txt"
        return None

    def check(self, case: TokenCase) -> Verdict:
        reason = self.unavailable()
        if reason:
            return Verdict.skipped(reason)
        try:
            read = _read_saml11(case) if case.saml == "1.1" else _read_saml20(case)
        except Exception as err:  # the library's own refusal is the verdict
            return Verdict.failed(f"{type(err).__name__}: {err}")
        how = ("OneLogin_Saml2_Response.is_valid (strict)" if case.saml == "2.0"
               else "validate_node_sign with AssertionID")
        return judge(read, case.expected, f"signature verified with the STS certificate by {how}")


PEER = OneLoginPeer()
