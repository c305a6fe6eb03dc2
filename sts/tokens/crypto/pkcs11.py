"""Signing keys held by an HSM, used through PKCS#11 (python-pkcs11): the private key never leaves the token.

``HsmPrivateKey`` adapts a token's key pair to ``cryptography``'s private-key interface (RSA or EC): ``sign`` goes
to the HSM and everything else (``public_key``, sizes) is answered from the public half read once. So a
``SigningKey`` built on it goes through ``XmlSigner`` unchanged and through ``x509.CertificateBuilder.sign`` too.

* RSA: CKM_SHA256_RSA_PKCS (PKCS#1 v1.5 with SHA-256 done by the token).
* EC P-256: the SHA-256 hash is computed here and the token signs it with CKM_ECDSA, which returns r || s; the
  adapter returns DER, as ``cryptography`` does (``XmlSigner`` converts it back to r || s for XML-DSig).

PKCS#11 sessions must not be used by two threads at once, and python-pkcs11 initialises the module without
CKF_OS_LOCKING_OK, so the module itself may not be entered by two threads at once either (SoftHSM2 fails with
CKR_GENERAL_ERROR when it is). A process therefore holds one logged-in session per token and every call into the
module takes one process-wide lock: a signature (about 1 ms for RSA-2048 in SoftHSM2) is the longest hold, so a
thread or the event loop waits at most a few signatures. The user logs in once; the login state belongs to the
process and a read-write session opened later (key generation) shares it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, datetime, timedelta
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from sts.tokens.crypto.keys import SigningKey

#: How long a signature waits for a free session before it fails (all sessions busy on other threads).
SESSION_WAIT_SECONDS = 10.0
_P256_OID = "1.2.840.10045.3.1.7"


class HsmError(Exception):
    """The HSM cannot be used: what is wrong and what to fix, in a sentence fit for an administrator."""


@dataclass(frozen=True)
class HsmConfig:
    """Where the key is: the PKCS#11 module, the token's label, the user PIN and the key pair's label."""

    module: str
    token_label: str
    pin: str

    @classmethod
    def from_settings(cls, module: str, token_label: str, pin_env: str) -> HsmConfig:
        """From the settings ``pkcs11_module``, ``pkcs11_token_label``, ``pkcs11_pin_env``; HsmError when one is
        missing."""
        if not module:
            raise HsmError("key_source is \"pkcs11\" but the setting pkcs11_module is empty: set it to the PKCS#11 "
                           "library, e.g. /usr/lib/softhsm/libsofthsm2.so")
        if not os.path.exists(module):
            raise HsmError(f"setting pkcs11_module: {module} does not exist (for SoftHSM2: apt-get install "
                           f"softhsm2)")
        if not token_label:
            raise HsmError("key_source is \"pkcs11\" but the setting pkcs11_token_label is empty: set it to the "
                           "label of the HSM token holding the signing key")
        pin = os.environ.get(pin_env, "")
        if not pin:
            raise HsmError(f"the HSM user PIN is missing: set the environment variable {pin_env} (setting "
                           f"pkcs11_pin_env)")
        return cls(module, token_label, pin)


class HsmToken:
    """One token of one PKCS#11 module, logged in, with a pool of sessions (thread-safe)."""

    def __init__(self, config: HsmConfig) -> None:
        import pkcs11  # noqa: PLC0415 - loaded only when an HSM is configured
        from pkcs11 import exceptions as pkcs11_errors  # noqa: PLC0415

        self.config = config
        self._errors = pkcs11_errors
        try:
            library = pkcs11.lib(config.module)
            self._token = library.get_token(token_label=config.token_label)
        except pkcs11_errors.NoSuchToken:
            raise HsmError(f"the PKCS#11 module {config.module} has no token labelled {config.token_label!r} "
                           f"(setting pkcs11_token_label; `softhsm2-util --show-slots` lists them)") from None
        except (RuntimeError, OSError, pkcs11_errors.PKCS11Error) as exc:
            raise HsmError(f"cannot load the PKCS#11 module {config.module} (setting pkcs11_module): "
                           f"{_reason(exc)}") from None
        self._session = self._open()
        self._handles: dict[str, Any] = {}  # label: private key object (the one session never closes)

    def _open(self) -> Any:
        try:
            return self._token.open(user_pin=self.config.pin)
        except self._errors.PinIncorrect:
            raise HsmError(f"the HSM refused the user PIN of token {self.config.token_label!r}: check the PIN "
                           f"in the environment variable named by pkcs11_pin_env") from None
        except self._errors.UserAlreadyLoggedIn:
            return self._token.open()  # something else in this process logged in: the login is shared
        except self._errors.PKCS11Error as exc:
            raise HsmError(f"cannot open a session on HSM token {self.config.token_label!r}: "
                           f"{_reason(exc)}") from None

    @contextmanager
    def session(self) -> Iterator[Any]:
        """The token's session, for this thread alone while the block runs (every call into the module is
        serialised: see the module's docstring)."""
        if not _LIBRARY_LOCK.acquire(timeout=SESSION_WAIT_SECONDS):
            raise HsmError(f"HSM token {self.config.token_label!r} stayed busy for {SESSION_WAIT_SECONDS:g} s")
        try:
            yield self._session
        finally:
            _LIBRARY_LOCK.release()

    def key_pair(self, label: str) -> HsmPrivateKey:
        """The private key labelled ``label`` with its public half; HsmError when it is not on the token."""
        from pkcs11 import Attribute, KeyType, ObjectClass  # noqa: PLC0415

        with self.session() as session:
            try:
                private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
            except (self._errors.NoSuchKey, self._errors.MultipleObjectsReturned) as exc:
                raise HsmError(f"HSM token {self.config.token_label!r} has no single key pair labelled {label!r} "
                               f"(setting pkcs11_key_label): {type(exc).__name__}") from None
            if private.key_type == KeyType.RSA:
                numbers = rsa.RSAPublicNumbers(int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                                               int.from_bytes(public[Attribute.MODULUS], "big"))
                return HsmRsaKey(self, label, numbers.public_key())
            if private.key_type == KeyType.EC:
                point = _der_octet_string(public[Attribute.EC_POINT])
                return HsmEcKey(self, label, ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point))
        raise HsmError(f"the HSM key {label!r} is neither RSA nor EC")

    def certificate(self, label: str) -> x509.Certificate:
        """The certificate object labelled ``label`` on the token (stored beside the key pair)."""
        from pkcs11 import Attribute, ObjectClass  # noqa: PLC0415

        with self.session() as session:
            found = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}))
            if not found:
                raise HsmError(f"HSM token {self.config.token_label!r} has no certificate labelled {label!r}: "
                               f"store the signing key's certificate on the token under the key's label")
            return x509.load_der_x509_certificate(bytes(found[0][Attribute.VALUE]))

    def signing_key(self, label: str) -> SigningKey:
        """The key pair and certificate labelled ``label`` as a ``SigningKey`` (signing through the token)."""
        try:
            return SigningKey.of(self.key_pair(label), self.certificate(label))
        except ValueError as exc:  # the certificate is not the key's
            raise HsmError(f"HSM key {label!r}: {exc}") from None

    def generate_key_pair(self, label: str, *, use_ec: bool = False, common_name: str = "sts signing",
                          days: int = 3650) -> x509.Certificate:
        """A key pair made inside the token (sensitive, never extractable: RSA-2048, or P-256 with ``use_ec``),
        a self-signed certificate for it signed by the token, stored on the token under the same label."""
        from pkcs11 import Attribute, CertificateType, KeyType, ObjectClass  # noqa: PLC0415
        from pkcs11.util.ec import encode_named_curve_parameters  # noqa: PLC0415

        private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.TOKEN: True}
        # Objects are created in a read-write session; it shares the login of the signing session. The lock is
        # reentrant: the certificate is signed through ``session()`` while it is held.
        with _LIBRARY_LOCK:
            try:
                rw = self._token.open(rw=True)
            except self._errors.PKCS11Error as exc:
                raise HsmError(f"cannot open a read-write session on HSM token {self.config.token_label!r}: "
                               f"{_reason(exc)}") from None
            try:
                if use_ec:
                    params = rw.create_domain_parameters(
                        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_P256_OID)}, local=True)
                    params.generate_keypair(label=label, store=True, private_template=private)
                else:
                    rw.generate_keypair(KeyType.RSA, 2048, label=label, store=True, private_template=private)
                cert = _self_signed(self.key_pair(label), common_name, days)
                rw.create_object({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label,
                                  Attribute.TOKEN: True, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                                  Attribute.SUBJECT: cert.subject.public_bytes(),
                                  Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER)})
            except self._errors.PKCS11Error as exc:
                raise HsmError(f"HSM token {self.config.token_label!r} could not make key pair {label!r}: "
                               f"{_reason(exc)}") from None
            finally:
                rw.close()
        return cert

    def sign(self, label: str, data: bytes, mechanism: Any) -> bytes:
        from pkcs11 import ObjectClass  # noqa: PLC0415

        with self.session() as session:
            try:
                # The key's object found once per label (a C_FindObjects costs about as much as a signature).
                key = self._handles.get(label)
                if key is None:
                    key = self._handles[label] = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                return bytes(key.sign(data, mechanism=mechanism))
            except self._errors.PKCS11Error as exc:
                raise HsmError(f"the HSM could not sign with key {label!r}: {_reason(exc)}") from None


class _TokenKey:
    """What every HSM key refuses or shares: it never leaves the token, and a copy is the same handle."""

    def private_numbers(self) -> NoReturn:
        raise ValueError("an HSM key cannot be exported")

    def private_bytes(self, *args: object, **kwargs: object) -> NoReturn:
        raise ValueError("an HSM key cannot be exported")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self  # a handle to the token's key: there is nothing to copy


class HsmRsaKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA key on the token; signs PKCS#1 v1.5 with SHA-256 only (what the STS makes)."""

    def __init__(self, token: HsmToken, label: str, public: rsa.RSAPublicKey) -> None:
        self._token, self.label, self._public = token, label, public

    def sign(self, data: bytes, padding: padding.AsymmetricPadding,  # type: ignore[override]
             algorithm: hashes.HashAlgorithm | utils.Prehashed) -> bytes:
        from pkcs11 import Mechanism  # noqa: PLC0415

        if not isinstance(padding, _PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise ValueError("an HSM RSA key signs PKCS#1 v1.5 with SHA-256 only")
        return self._token.sign(self.label, data, Mechanism.SHA256_RSA_PKCS)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> NoReturn:
        raise ValueError("the HSM signing key does not decrypt")


class HsmEcKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """A P-256 key on the token: the SHA-256 hash here, CKM_ECDSA on the token, DER out (as ``cryptography``)."""

    def __init__(self, token: HsmToken, label: str, public: ec.EllipticCurvePublicKey) -> None:
        self._token, self.label, self._public = token, label, public

    def sign(self, data: bytes | bytearray | memoryview,
             signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        from pkcs11 import Mechanism  # noqa: PLC0415

        if not isinstance(signature_algorithm, ec.ECDSA) or not isinstance(signature_algorithm.algorithm,
                                                                            hashes.SHA256):
            raise ValueError("an HSM EC key signs ECDSA with SHA-256 only")
        raw = self._token.sign(self.label, hashlib.sha256(bytes(data)).digest(), Mechanism.ECDSA)
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> NoReturn:
        raise ValueError("the HSM signing key does not do key agreement")


HsmPrivateKey = HsmRsaKey | HsmEcKey
_PKCS1v15 = padding.PKCS1v15


def _der_octet_string(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (some modules give the bare point)."""
    if value[:1] != b"\x04" or len(value) < 3:
        return value
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(value[2:2 + count], "big"), 2 + count
    if offset + length == len(value):
        return value[offset:]
    return value  # a bare uncompressed point (04 || x || y) of a matching length by chance is not DER


def _self_signed(key: HsmPrivateKey, common_name: str, days: int) -> x509.Certificate:
    """A self-signed certificate, signed through the token (CertificateBuilder calls the adapter's ``sign``)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.now(UTC) - timedelta(minutes=5)  # a peer whose clock is a little behind accepts it
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


#: python-pkcs11 initialises the module with C_Initialize(NULL): the module may then assume that no two threads
#: call it at once (PKCS#11 2.40 §5.4), and SoftHSM2 does fail (CKR_GENERAL_ERROR) when threads sign concurrently,
#: even on sessions of their own. So every call into a module goes through this one lock.
_LIBRARY_LOCK = threading.RLock()
_tokens: dict[tuple[str, str], HsmToken] = {}
_tokens_lock = threading.Lock()


def open_token(config: HsmConfig) -> HsmToken:
    """The process's one ``HsmToken`` for a module and token (a PKCS#11 module is initialised once per process,
    and the token's login is the process's)."""
    with _tokens_lock:
        token = _tokens.get((config.module, config.token_label))
        if token is None:
            token = _tokens[(config.module, config.token_label)] = HsmToken(config)
        elif token.config.pin != config.pin:
            # The token is logged in already, so the HSM would not check this PIN: refuse it here.
            raise HsmError(f"HSM token {config.token_label!r} is open in this process with another user PIN: "
                           f"check the PIN in the environment variable named by pkcs11_pin_env")
        return token


__all__ = ["HsmConfig", "HsmEcKey", "HsmError", "HsmPrivateKey", "HsmRsaKey", "HsmToken", "open_token"]
