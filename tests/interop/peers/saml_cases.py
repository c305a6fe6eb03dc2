"""Tokens of every SAML case from the live test STS, as TokenCases for the Python verifier peers' tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from lxml import etree

from interop.model import Expected, TokenCase
from sts.client import TrustClient, UsernameCredentials
from sts.config import load_settings
from sts.crypto.keys import SigningKey, generate_key_and_cert
from sts.crypto.signing import XmlSigner
from sts.model import AssertionContent, Claim, RelyingParty
from sts.saml.saml20 import build_assertion, issuer_of
from sts.uris import NAMEID_UNSPECIFIED, AuthnMethod, DataEncryption, SignatureAlgorithm, TokenType
from sts.wiring import open_stores

EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
CLAIMS = {EMAIL: ("alice@example.org",), GIVENNAME: ("Alice",), ROLE: ("reader",)}
# name: (SAML version, encrypted, data encryption)
CASES = {
    "saml11-plain": ("1.1", False, None),
    "saml11-encrypted": ("1.1", True, DataEncryption.AES256_GCM),
    "saml20-plain": ("2.0", False, None),
    "saml20-gcm": ("2.0", True, DataEncryption.AES256_GCM),
    "saml20-cbc": ("2.0", True, DataEncryption.AES256_CBC),
}


def issue_cases(live_sts: Any, sts_home: Path, demo: dict[str, str], prefix: str) -> dict[str, TokenCase]:
    """One token per case for relying parties registered under ``prefix`` (unique per test module)."""
    settings = load_settings(sts_home)
    stores = open_stores(settings)
    rp_cert, rp_key = (sts_home / "demo" / "rp.crt").read_bytes(), (sts_home / "demo" / "rp.key").read_bytes()
    client = TrustClient.for_endpoint(live_sts.sts_url,
                                      credentials=UsernameCredentials(demo["user"], demo["password"]))
    issued = {}
    for name, (saml, encrypted, data_encryption) in CASES.items():
        endpoint = f"{prefix}{name}.example/"
        if stores.relying_parties.lookup(endpoint) is None:
            stores.relying_parties.add(RelyingParty(
                endpoint=endpoint, cert_pem=rp_cert if encrypted else None, encrypt=encrypted,
                token_type=TokenType.SAML11 if saml == "1.1" else TokenType.SAML20,
                data_encryption=data_encryption or DataEncryption.AES256_GCM))
        result = client.issue(endpoint, claims=list(CLAIMS))
        issued[name] = TokenCase(
            name=name, saml=saml, encrypted=encrypted, signature="rsa-sha256",
            data_encryption=data_encryption.name.lower().replace("_", "-") if data_encryption else None,
            key_transport="rsa-oaep-mgf1p" if encrypted else None, token=result.token, rstr=result.raw,
            sts_cert_pem=settings.signing_cert_path.read_bytes(), rp_key_pem=rp_key if encrypted else None,
            expected=Expected(demo["user"], endpoint, CLAIMS))
    return issued


def ecdsa_case(audience: str) -> TokenCase:
    """A SAML 2.0 assertion signed with ECDSA-SHA256 by a throw-away EC key (the live test STS signs with RSA)."""
    key_pem, cert_pem = generate_key_and_cert("sts-ec.test", ec=True)
    now = datetime.now(timezone.utc)
    content = AssertionContent(
        assertion_id="_ec0123456789abcdef", issuer="https://sts-ec.test/", subject_name="alice",
        name_id_format=NAMEID_UNSPECIFIED, audience=audience, issue_instant=now,
        not_before=now, not_on_or_after=now + timedelta(hours=1), authn_method=AuthnMethod.PASSWORD,
        authn_instant=now, claims=(Claim(ROLE, ("reader",)),))
    assertion = build_assertion(content)
    XmlSigner(SigningKey.from_pem(key_pem, cert_pem), SignatureAlgorithm.ECDSA_SHA256).sign(
        assertion, content.assertion_id, after=issuer_of(assertion))
    return TokenCase(name="saml20-ecdsa", saml="2.0", encrypted=False, signature="ecdsa-sha256",
                     data_encryption=None, key_transport=None, token=etree.tostring(assertion), rstr=b"",
                     sts_cert_pem=cert_pem, rp_key_pem=None,
                     expected=Expected("alice", content.audience, {ROLE: ("reader",)}))
