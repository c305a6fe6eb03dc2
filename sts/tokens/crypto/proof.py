"""Proof keys of holder-of-key tokens (WS-Trust 1.3 §3.3 and §4.4, 2005/02 §5.4; TLS 1.0, RFC 2246 §5).

``ProofKeyFactory.make`` decides, from the request's KeyType, KeySize, Entropy, ComputedKeyAlgorithm and UseKey,
which key the token binds (``ProofKey``, for the SAML builder) and what the RSTR says about it (``ProofResponse``,
for ``wstrust.proof.render_proof``, which only writes it out: a secret for a requester certificate is encrypted
here, in the decision). ``proof_key_info`` builds the ds:KeyInfo of the holder-of-key
SubjectConfirmation. A symmetric key is never logged, stored or put in an exception message.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Callable
from typing import Final, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from sts import ns
from sts.errors import BadRequest, InsecureProofDelivery
from sts.model import EncryptedSecret, ProofKey, ProofResponse, RelyingParty, RequestSecurityToken
from sts.uris import ComputedKey, DigestAlgorithm, KeyTransport, KeyType
from sts.tokens.crypto.encryption import decrypt_key_bytes, encrypt_key_bytes, encrypt_key_for
from sts.tokens.crypto.keys import SigningKey

PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]

_SHA1_SIZE: Final = 20
#: Public keys a PublicKey token may bind: RSA of at least this many bits, or an EC key on a NIST curve.
MIN_RSA_BITS: Final = 2048
_EC_CURVES: Final = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
#: The longest requester entropy read (a KeySize is at most 512 bits; anything far beyond is not entropy).
_MAX_ENTROPY_BYTES: Final = 1024


def p_sha1(secret: bytes, seed: bytes, length: int) -> bytes:
    """P_SHA-1(secret, seed), its first ``length`` bytes (RFC 2246 §5; WS-Trust 1.3 §4.4.4 CK/PSHA1).

    ``A(0) = seed``, ``A(i) = HMAC_SHA1(secret, A(i-1))``; the output is
    ``HMAC_SHA1(secret, A(1) + seed) + HMAC_SHA1(secret, A(2) + seed) + ...``. For a computed key, the secret is
    the requester's entropy and the seed the issuer's.
    """
    if length < 0:
        raise ValueError("length must not be negative")
    blocks: list[bytes] = []
    a = seed
    for _ in range(-(-length // _SHA1_SIZE)):
        a = hmac.digest(secret, a, "sha1")
        blocks.append(hmac.digest(secret, a + seed, "sha1"))
    return b"".join(blocks)[:length]


class ProofKeyFactory:
    """Makes the proof key of one Issue; built once per process around the STS's encryption key pair."""

    def __init__(
        self,
        encryption_key: SigningKey,
        *,
        min_bits: int = 128,
        max_bits: int = 512,
        default_bits: int = 256,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not min_bits <= default_bits <= max_bits or any(b % 8 for b in (min_bits, max_bits, default_bits)):
            raise ValueError("key sizes must be multiples of 8 with min_bits <= default_bits <= max_bits")
        self.encryption_key = encryption_key
        self.min_bits = min_bits
        self.max_bits = max_bits
        self.default_bits = default_bits
        self._random = random_bytes

    def make(
        self,
        rst: RequestSecurityToken,
        rp: RelyingParty,
        *,
        requester_cert: x509.Certificate | None,
        secure_channel: bool,
    ) -> tuple[ProofKey | None, ProofResponse | None]:
        """The proof key of the token and what the RSTR says about it; (None, None) for a bearer token.

        ``secure_channel``: the answer travels over TLS (or a loopback development bind). ``requester_cert``: the
        certificate the requester proved to hold, for which an STS-chosen secret is then encrypted.
        """
        if rst.key_type in (None, KeyType.BEARER):
            return None, None
        if rst.key_type is KeyType.PUBLIC_KEY:
            return public_proof_key(rst), None
        return self._symmetric(rst, rp, requester_cert, secure_channel)

    def _symmetric(
        self,
        rst: RequestSecurityToken,
        rp: RelyingParty,
        requester_cert: x509.Certificate | None,
        secure_channel: bool,
    ) -> tuple[ProofKey, ProofResponse]:
        if not rp.cert_pem:
            # The relying party learns the key from the token, encrypted for its certificate.
            raise BadRequest("a symmetric proof key needs the relying party's certificate", detail="KeyType")
        bits = self._key_bits(rst.key_size)
        size = bits // 8
        recipient = _rsa_recipient(requester_cert)
        if not secure_channel and recipient is None:
            raise InsecureProofDelivery("symmetric proof key requested over plain HTTP without a certificate")
        if _computed_key(rst) is not ComputedKey.PSHA1:
            raise BadRequest("unsupported computed key algorithm", detail=rst.computed_key_algorithm)
        client_entropy = self._client_entropy(rst)
        if client_entropy is None:
            # No requester entropy: the issuer's own key (a ComputedKeyAlgorithm has nothing to compute from).
            key = self._random(size)
            if recipient is not None:
                return ProofKey(symmetric_key=key), ProofResponse(key_size=bits, encrypted=_encrypt(key, recipient))
            return ProofKey(symmetric_key=key), ProofResponse(key_size=bits, binary_secret=key)
        server_entropy = self._random(size)
        key = p_sha1(client_entropy, server_entropy, size)
        algorithm = ComputedKey.PSHA1.uri(rst.version)
        if recipient is not None:
            return ProofKey(symmetric_key=key), ProofResponse(
                key_size=bits, computed_key_algorithm=algorithm, encrypted=_encrypt(server_entropy, recipient))
        return ProofKey(symmetric_key=key), ProofResponse(
            key_size=bits, server_entropy=server_entropy, computed_key_algorithm=algorithm)

    def _key_bits(self, requested: int | None) -> int:
        if requested is None:
            return self.default_bits
        if requested % 8 or not self.min_bits <= requested <= self.max_bits:
            raise BadRequest(f"KeySize {requested} outside {self.min_bits}-{self.max_bits}", detail="KeySize")
        return requested

    def _client_entropy(self, rst: RequestSecurityToken) -> bytes | None:
        entropy = rst.entropy
        if entropy is None:
            return None
        if entropy.encrypted_key is not None:
            secret = self._decrypt_entropy(entropy.encrypted_key)
        elif entropy.binary_secret is not None:
            secret = entropy.binary_secret
        else:
            return None
        if not 0 < len(secret) <= _MAX_ENTROPY_BYTES:
            raise BadRequest("requester entropy is empty or too long", detail="Entropy")
        return secret

    def _decrypt_entropy(self, encrypted: EncryptedSecret) -> bytes:
        if encrypted.algorithm != KeyTransport.RSA_OAEP_MGF1P.value:
            # RSA 1.5 invites padding-oracle attacks on the STS's key: only OAEP is decrypted.
            raise BadRequest("unsupported key transport for requester entropy",
                             detail=encrypted.algorithm or "EncryptedKey")
        try:
            if encrypted.digest_algorithm not in (None, DigestAlgorithm.SHA1.value):
                # rsa-oaep-mgf1p means SHA-1 and MGF1-SHA1: a DigestMethod naming anything else is refused.
                raise ValueError("unsupported RSA-OAEP digest")
            return decrypt_key_bytes(encrypted.cipher_value, self.encryption_key.private_key,
                                     KeyTransport.RSA_OAEP_MGF1P)
        except ValueError:
            # One public answer for every failure: no oracle on why the key did not decrypt.
            raise BadRequest("requester entropy does not decrypt with the STS encryption key", detail="Entropy") from None


def _computed_key(rst: RequestSecurityToken) -> ComputedKey:
    """The requested ComputedKeyAlgorithm; P_SHA1 when none is named (WS-Trust 1.3 §4.4.4)."""
    if rst.computed_key_algorithm is None or not rst.computed_key_algorithm.strip():
        return ComputedKey.PSHA1
    return ComputedKey.parse(rst.computed_key_algorithm)


def _rsa_recipient(cert: x509.Certificate | None) -> x509.Certificate | None:
    """The requester's certificate, if a key can be encrypted for it (RSA only: key transport is RSA-OAEP)."""
    if cert is None or not isinstance(cert.public_key(), rsa.RSAPublicKey):
        return None
    return cert


def _encrypt(secret: bytes, recipient: x509.Certificate) -> EncryptedSecret:
    """``secret`` encrypted for the requester's certificate with RSA-OAEP (WS-Trust 1.3 §4.4.2)."""
    transport = KeyTransport.RSA_OAEP_MGF1P
    return EncryptedSecret(
        algorithm=transport.value,
        cipher_value=encrypt_key_bytes(recipient, secret, transport),
        digest_algorithm=DigestAlgorithm.SHA1.value,
        recipient_der=recipient.public_bytes(serialization.Encoding.DER),
    )


# --- PublicKey (UseKey) ------------------------------------------------------------------------------------


def public_proof_key(rst: RequestSecurityToken) -> ProofKey:
    """The requester's public key from UseKey, checked: a parseable certificate or RSA key, strong enough."""
    use_key = rst.use_key
    if use_key is None:
        raise BadRequest("a PublicKey token needs UseKey", detail="UseKey")
    if use_key.certificate_der is not None:
        try:
            cert = x509.load_der_x509_certificate(use_key.certificate_der)
            public_key = cert.public_key()
        except ValueError:
            raise BadRequest("UseKey certificate does not parse", detail="UseKey") from None
        _check_public_key(public_key)
        return ProofKey(certificate_der=cert.public_bytes(serialization.Encoding.DER))
    if use_key.rsa_modulus is not None and use_key.rsa_exponent is not None:
        n, e = use_key.rsa_modulus, use_key.rsa_exponent
        if n % 2 == 0 or e % 2 == 0 or not 3 <= e < n:
            raise BadRequest("UseKey RSA key is not a valid RSA public key", detail="UseKey")
        try:
            rsa_key = rsa.RSAPublicNumbers(use_key.rsa_exponent, use_key.rsa_modulus).public_key()
        except ValueError:
            raise BadRequest("UseKey RSA key is invalid", detail="UseKey") from None
        _check_public_key(rsa_key)
        return ProofKey(rsa_modulus=use_key.rsa_modulus, rsa_exponent=use_key.rsa_exponent)
    raise BadRequest("UseKey carries no usable key", detail="UseKey")


def _check_public_key(key: object) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise BadRequest(f"UseKey RSA key of {key.key_size} bits", detail="UseKey")
        return
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _EC_CURVES):
        return
    raise BadRequest("UseKey key type not accepted", detail="UseKey")


def proof_public_key(proof: ProofKey) -> PublicKey | None:
    """The public key a PublicKey proof binds (None for a symmetric proof)."""
    if proof.certificate_der is not None:
        key = x509.load_der_x509_certificate(proof.certificate_der).public_key()
        return key if isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)) else None
    if proof.rsa_modulus is not None and proof.rsa_exponent is not None:
        return rsa.RSAPublicNumbers(proof.rsa_exponent, proof.rsa_modulus).public_key()
    return None


def use_key_matches(proof: ProofKey, cert: x509.Certificate) -> bool:
    """Whether ``cert`` (e.g. the one that signed the request) certifies the key the PublicKey proof binds."""
    key = proof_public_key(proof)
    if key is None:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return hmac.compare_digest(key.public_bytes(der, spki), cert.public_key().public_bytes(der, spki))


# --- ds:KeyInfo of the holder-of-key SubjectConfirmation ---------------------------------------------------


def proof_key_info(
    proof: ProofKey,
    recipient: x509.Certificate | None = None,
    key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P,
) -> etree._Element:
    """A self-contained ``ds:KeyInfo`` naming the proof key (WSS SAML Token Profile 1.1 §3.5, SAML 2.0 HoK).

    Symmetric: an ``xenc:EncryptedKey`` holding the key for ``recipient`` (the relying party's certificate).
    Public: the requester's certificate (X509Data) or its RSA key (KeyValue/RSAKeyValue).
    """
    key_info = etree.Element(ns.qn(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
    if proof.symmetric_key is not None:
        if recipient is None:
            raise ValueError("a symmetric proof key is encrypted for the relying party: its certificate is needed")
        key_info.append(encrypt_key_for(recipient, proof.symmetric_key, key_transport))
    elif proof.certificate_der is not None:
        x509_data = etree.SubElement(key_info, ns.qn(ns.DS, "X509Data"))
        etree.SubElement(x509_data, ns.qn(ns.DS, "X509Certificate")).text = _b64(proof.certificate_der)
    elif proof.rsa_modulus is not None and proof.rsa_exponent is not None:
        rsa_value = etree.SubElement(etree.SubElement(key_info, ns.qn(ns.DS, "KeyValue")), ns.qn(ns.DS, "RSAKeyValue"))
        etree.SubElement(rsa_value, ns.qn(ns.DS, "Modulus")).text = _b64(_crypto_binary(proof.rsa_modulus))
        etree.SubElement(rsa_value, ns.qn(ns.DS, "Exponent")).text = _b64(_crypto_binary(proof.rsa_exponent))
    else:
        raise ValueError("an empty ProofKey")
    return key_info


def _crypto_binary(value: int) -> bytes:
    """XML-DSig ds:CryptoBinary: the big-endian octets of a positive integer, without leading zeros."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
