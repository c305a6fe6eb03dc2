"""Token providers: assertion content in, a signed (and, for the relying party, encrypted) token out.

Holder-of-key: when the content carries a proof key, its ds:KeyInfo (a symmetric key encrypted for the relying
party's certificate, or the requester's public key) confirms the subject (WSS SAML Token Profile 1.1 §3.5).

One provider serves both SAML versions; what differs per version (builder, Signature position, encrypted
wrapper) is looked up in a table keyed by token type (WSS SAML Token Profile 1.1 §3, SAML 2.0 core §2.3.4).
Each builder gives the assertion in canonical form split at the Signature's place, so signing hashes bytes and
encryption takes them as they are; only a token sent unencrypted is parsed into the element the RSTR carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from datetime import datetime
from typing import Final

from cryptography import x509
from lxml import etree

from sts import ns
from sts.tokens.crypto.canonical import SignableParts
from sts.tokens.crypto.encryption import encrypt_token
from sts.tokens.crypto.keys import load_certificate
from sts.tokens.crypto.proof import proof_key_info
from sts.tokens.crypto.signing import XmlSigner, algorithm_fits_key
from sts.errors import BadRequest
from sts.interfaces import SigningKeys
from sts.model import AssertionContent, IssuedToken, RelyingParty
from sts.tokens.saml import saml11, saml20
from sts.uris import DigestAlgorithm, SignatureAlgorithm, TokenType

#: Legacy relying parties that need RSA-SHA1 signatures need SHA-1 digests too; all others get SHA-256.
_DIGEST_FOR: Final = {
    SignatureAlgorithm.RSA_SHA256: DigestAlgorithm.SHA256,
    SignatureAlgorithm.RSA_SHA1: DigestAlgorithm.SHA1,
    SignatureAlgorithm.ECDSA_SHA256: DigestAlgorithm.SHA256,
}


@dataclass(frozen=True)
class _TokenForm:
    """What one SAML version does differently."""

    canonical: Callable[[AssertionContent, etree._Element | None], SignableParts]
    wrap_encrypted: Callable[[etree._Element], etree._Element]


def _bare(encrypted_data: etree._Element) -> etree._Element:
    """SAML 1.1 has no EncryptedAssertion: the token is the xenc:EncryptedData itself."""
    return encrypted_data


def _encrypted_assertion(encrypted_data: etree._Element) -> etree._Element:
    """SAML 2.0 core §2.3.4, unprefixed like the assertion."""
    wrapper = etree.Element(ns.qn(ns.SAML2, "EncryptedAssertion"), nsmap={None: ns.SAML2})
    wrapper.append(encrypted_data)
    return wrapper


_FORMS: Final[dict[TokenType, _TokenForm]] = {
    TokenType.SAML20: _TokenForm(saml20.canonical_assertion, _encrypted_assertion),
    TokenType.SAML11: _TokenForm(saml11.canonical_assertion, _bare),
}


@lru_cache(maxsize=256)
def _relying_party_certificate(pem: bytes) -> x509.Certificate:
    """Parsed once per certificate: relying parties are few and their certificates change rarely."""
    return load_certificate(pem)


class SamlTokenProvider:
    """Issues SAML 1.1 and 2.0 bearer and holder-of-key tokens signed by the STS key."""

    token_types: Final = frozenset(_FORMS)

    def __init__(self, signer: XmlSigner, issuer: str, keyring: SigningKeys | None = None) -> None:
        self.issuer = issuer
        self._default = signer
        self._keyring = keyring
        # One signer per algorithm the key can make, built up front: nothing is built per request.
        self._signers = _signers_for(signer)
        # Keyring keys: their signers, built once per key the first time it signs.
        self._by_key: dict[bytes, tuple[XmlSigner, dict[SignatureAlgorithm, XmlSigner]]] = {
            signer.key.cert_der: (signer, self._signers)
        }

    def issue(self, content: AssertionContent, rp: RelyingParty, token_type: TokenType) -> IssuedToken:
        form = _FORMS.get(token_type)
        if form is None:
            raise BadRequest(f"no provider for {token_type}", detail=token_type.value)
        if not content.issuer:
            content = replace(content, issuer=self.issuer)
        parts = form.canonical(content, self._key_info(content, rp))
        signer = self.signer_for(rp.signature_algorithm, content.issue_instant)
        signed = parts.signed(signer.signature_for(parts, content.assertion_id))
        rp_cert = rp.encryption_cert_pem(content.issue_instant)
        if rp.encrypt and rp_cert:
            # The token and its hash together, as bytes: both come from parts cached per certificate.
            xml, digest = encrypt_token(
                signed,
                _relying_party_certificate(rp_cert),
                form.wrap_encrypted,
                data=rp.data_encryption,
                key_transport=rp.key_transport,
            )
            encrypted = True
        else:
            # The signed assertion is written in exclusive canonical form (sts.tokens.saml): it is its own c14n,
            # so its hash is token_hash's without a parse (tests/service/test_providers.py checks the premise).
            xml, encrypted, digest = signed, False, hashlib.sha256(signed).hexdigest()
        return IssuedToken(
            token_id=content.assertion_id,
            token_type=token_type,
            xml=xml,
            encrypted=encrypted,
            created=content.not_before,
            expires=content.not_on_or_after,
            applies_to=content.audience,
            subject=content.subject_name,
            claims=content.claims,
            token_hash=digest,
        )

    @staticmethod
    def _key_info(content: AssertionContent, rp: RelyingParty) -> etree._Element | None:
        """The holder-of-key ds:KeyInfo, or None for a bearer token."""
        proof = content.proof_key
        if proof is None:
            return None
        if proof.symmetric_key is None:
            return proof_key_info(proof)
        rp_cert = rp.encryption_cert_pem(content.issue_instant)
        if not rp_cert:
            raise BadRequest("a symmetric proof key needs the relying party's certificate", detail="KeyType")
        return proof_key_info(proof, _relying_party_certificate(rp_cert), rp.key_transport)

    def signer_for(self, algorithm: SignatureAlgorithm, now: datetime | None = None) -> XmlSigner:
        """The signer of ``algorithm``; the configured one when the key cannot make it (e.g. RSA-SHA256 asked
        of an EC key): the relying party's algorithm is a preference, the key's family is fixed.

        With a keyring and ``now``, the key is the keyring's current one at ``now``."""
        if self._keyring is None or now is None:
            return self._signers.get(algorithm, self._default)
        key = self._keyring.current(now)
        known = self._by_key.get(key.cert_der)
        if known is None:
            chosen = self._default.algorithm if algorithm_fits_key(self._default.algorithm, key) else next(
                a for a in SignatureAlgorithm if algorithm_fits_key(a, key))
            base = XmlSigner(key, chosen, _DIGEST_FOR[chosen])
            known = (base, _signers_for(base))
            self._by_key[key.cert_der] = known
        return known[1].get(algorithm, known[0])


def _signers_for(signer: XmlSigner) -> dict[SignatureAlgorithm, XmlSigner]:
    signers = {
        algorithm: XmlSigner(signer.key, algorithm, _DIGEST_FOR[algorithm])
        for algorithm in SignatureAlgorithm
        if algorithm_fits_key(algorithm, signer.key)
    }
    signers[signer.algorithm] = signer
    return signers
