"""The answer to every optional RST element a requester may rely on (WS-Trust 1.3 §4.2, §4.4, §9).

Honoured when this STS does what it asks (the value names what we would do anyway, or a choice the relying
party's policy allows); otherwise refused with ``wst:BadRequest`` naming the element, never silently ignored.
"""

from __future__ import annotations

from sts.errors import BadRequest
from sts.model import Principal, RelyingParty, RequestSecurityToken
from sts.uris import EXC_C14N

_HMAC = frozenset({"http://www.w3.org/2000/09/xmldsig#hmac-sha1", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"})
_RSA_SIGN = frozenset({"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"})
_ENCRYPT_WITH = frozenset({
    "http://www.w3.org/2009/xmlenc11#aes256-gcm", "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc", "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
})


def check_request_options(rst: RequestSecurityToken, rp: RelyingParty, principal: Principal, issuer: str) -> None:
    """Raise ``BadRequest`` naming the first element whose request this STS cannot honour."""
    for local, value in rst.algorithms:
        if value not in _acceptable(local, rp):
            raise BadRequest(f"{local} {value!r} cannot be honoured", detail=local)
    if rst.authentication_type is not None and rst.authentication_type not in (
        principal.authn_method.saml20, principal.authn_method.saml11
    ):
        raise BadRequest(f"AuthenticationType {rst.authentication_type!r}", detail="AuthenticationType")
    if rst.issuer is not None and rst.issuer.rstrip("/") != issuer.rstrip("/"):
        raise BadRequest(f"Issuer {rst.issuer!r} is not this STS", detail="Issuer")


def _acceptable(local: str, rp: RelyingParty) -> frozenset[str]:
    """What each algorithm element may name, given the relying party's policy."""
    if local == "SignatureAlgorithm":
        return frozenset({rp.signature_algorithm.value})
    if local == "EncryptionAlgorithm":
        return frozenset({rp.data_encryption.value}) if rp.encrypt else frozenset()
    if local == "KeyWrapAlgorithm":
        return frozenset({rp.key_transport.value}) if rp.encrypt else frozenset()
    if local == "CanonicalizationAlgorithm":
        return frozenset({EXC_C14N})
    if local == "SignWith":
        return _HMAC | _RSA_SIGN
    return _ENCRYPT_WITH  # EncryptWith
