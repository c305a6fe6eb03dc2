"""pysaml2 as an independent relying party: SAML 2.0 only, through its SP security context (Debian's xmlsec1).

The STS is configured as the IdP in inline metadata (its signing certificate only) with
``only_use_keys_in_metadata``: ``SecurityContext.correctly_signed_message(..., "assertion", must=True)`` then runs
pysaml2's XSD validation, the SAML signature-profile checks (one Reference to ``#ID``, enveloped + exc-c14n only, no
``ds:Object``) and xmlsec1. EncryptedAssertion is decrypted with ``SecurityContext.decrypt_keys`` and the relying
party's key. (pysaml2's Web-SSO ``AuthnResponse`` is not used: it demands ``SubjectConfirmationData/@Recipient``,
which the Web-SSO profile needs and WS-Trust tokens do not carry.)
"""

from __future__ import annotations

import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from lxml import etree

from sts.protocol.xmlsafe import parse

from ..model import TokenCase, Verdict
from .reading import Read, judge

SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


def _version() -> str | None:
    try:
        return metadata.version("pysaml2")
    except metadata.PackageNotFoundError:
        return None


def _idp_metadata(issuer: str, cert_pem: bytes) -> str:
    """The STS as a SAML 2.0 IdP whose only signing key is its certificate."""
    body = "".join(line for line in cert_pem.decode().strip().splitlines() if "-----" not in line)
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{_attr(issuer)}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f"<ds:X509Certificate>{body}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        f'<md:SingleSignOnService Binding="{_REDIRECT}" Location="https://sts.invalid/sso"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _context(audience: str, key_file: Path | None, idp_metadata: str | None) -> Any:
    """pysaml2's SP security context, built from an SP configuration as a real relying party builds it."""
    from saml2.config import SPConfig
    from saml2.sigver import security_context

    settings: dict[str, Any] = {
        "entityid": audience,
        "xmlsec_binary": shutil.which("xmlsec1"),
        "service": {"sp": {"endpoints": {"assertion_consumer_service": [(audience, _POST)]},
                           "want_assertions_signed": True, "only_use_keys_in_metadata": True}},
    }
    if key_file is not None:
        settings["key_file"] = str(key_file)
    if idp_metadata is not None:
        settings["metadata"] = {"inline": [idp_metadata]}
    config = SPConfig()
    config.load(settings)
    return security_context(config)


def _decrypt(case: TokenCase, key_file: Path) -> str:
    """The Assertion inside a saml2:EncryptedAssertion, decrypted by pysaml2 (xmlsec1 --decrypt)."""
    if case.rp_key_pem is None:
        raise ValueError("encrypted token but no relying-party key")
    context = _context(case.expected.audience, key_file, None)
    decrypted = context.decrypt_keys(case.token.decode(), keys=[case.rp_key_pem.decode()])
    root = parse(decrypted.encode())
    assertions = root.findall(f"{{{SAML2}}}Assertion")
    if root.tag != f"{{{SAML2}}}EncryptedAssertion" or len(assertions) != 1:
        raise ValueError(f"decryption gave no single Assertion: {root.tag}")
    return str(etree.tostring(assertions[0]).decode())


def _issuer(assertion_xml: str) -> str:
    from saml2 import saml

    assertion = saml.assertion_from_string(assertion_xml)
    if assertion is None or assertion.issuer is None:
        raise ValueError("not a SAML 2.0 assertion with an Issuer")
    return str(assertion.issuer.text).strip()


def _read(assertion: Any) -> Read:
    subject = assertion.subject.name_id.text if assertion.subject and assertion.subject.name_id else None
    audiences: list[str] = []
    if assertion.conditions is not None:
        for restriction in assertion.conditions.audience_restriction:
            audiences.extend(str(a.text).strip() for a in restriction.audience)
    claims: dict[str, tuple[str, ...]] = {}
    for statement in assertion.attribute_statement:
        for attribute in statement.attribute:
            values = tuple(str(v.text) for v in attribute.attribute_value if v.text is not None)
            claims[attribute.name] = claims.get(attribute.name, ()) + values
    return Read(str(subject).strip() if subject is not None else None, tuple(audiences), claims)


def _verify(case: TokenCase) -> Read:
    with tempfile.TemporaryDirectory(prefix="pysaml2-peer-") as folder:
        key_file = None
        if case.rp_key_pem is not None:
            key_file = Path(folder) / "rp.key"
            key_file.write_bytes(case.rp_key_pem)
        assertion_xml = _decrypt(case, key_file) if case.encrypted and key_file else case.token.decode()
        context = _context(case.expected.audience, key_file,
                           _idp_metadata(_issuer(assertion_xml), case.sts_cert_pem))
        assertion = context.correctly_signed_message(assertion_xml, "assertion", must=True)
        return _read(assertion)


class Pysaml2Peer:
    """pysaml2: SAML 2.0 verified with the STS certificate from IdP metadata only."""

    about = ("pysaml2 (PyPI) with Debian's xmlsec1: SP SecurityContext from IdP metadata holding only the STS "
             "certificate; XSD + SAML signature profile + xmlsec1; decrypts with the RP key; SAML 2.0 only")

    def __init__(self) -> None:
        version = _version()
        self.name = f"pysaml2 {version}" if version else "pysaml2"

    def unavailable(self) -> str | None:
        try:
            import saml2.sigver  # noqa: F401
        except ImportError as err:
            return f"pysaml2 is not installed ({err}): pip install -r interop/requirements.txt"
        if shutil.which("xmlsec1") is None:
            return "pysaml2 needs the xmlsec1 binary (apt-get install xmlsec1)"
        return None

    def check(self, case: TokenCase) -> Verdict:
        reason = self.unavailable()
        if reason:
            return Verdict.skipped(reason)
        if case.saml != "2.0":
            return Verdict.not_applicable("pysaml2 reads SAML 2.0 only (no SAML 1.1 assertions)")
        try:
            read = _verify(case)
        except Exception as err:  # the library's own refusal is the verdict
            return Verdict.failed(f"{type(err).__name__}: {err}")
        return judge(read, case.expected, "signature verified with the STS certificate from IdP metadata by "
                       "SecurityContext.correctly_signed_message (XSD + signature profile)")


PEER = Pysaml2Peer()
