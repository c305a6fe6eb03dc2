"""Password storage: scrypt hashes (RFC 7914) and the AES-256-GCM box that keeps digest secrets sealed.

WS-Security's PasswordDigest (UsernameToken Profile 1.1, section 3.1) needs the plain password on the server,
so the STS keeps it, but only sealed with a key that lives outside the database: a stolen database file
alone yields neither the passwords nor the digest secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

SALT_BYTES = 16
HASH_BYTES = 32
KEY_BYTES = 32
_NONCE_BYTES = 12
_PREFIX = "scrypt"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class PasswordHasher:
    """scrypt with a per-password random salt, encoded as ``scrypt$n$r$p$salt_b64$hash_b64``."""

    def __init__(self, n: int = 2**15, r: int = 8, p: int = 1) -> None:
        if n < 2 or n & (n - 1):
            raise ValueError("scrypt n must be a power of two greater than 1")
        if r < 1 or p < 1:
            raise ValueError("scrypt r and p must be positive")
        self.n, self.r, self.p = n, r, p
        # Burned by dummy_verify so an unknown user costs one full scrypt, like a wrong password.
        self._dummy = self.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        salt = os.urandom(SALT_BYTES)
        digest = _scrypt(password, salt, self.n, self.r, self.p)
        return f"{_PREFIX}${self.n}${self.r}${self.p}${_b64(salt)}${_b64(digest)}"

    def verify(self, password: str, encoded: str) -> bool:
        """True when ``password`` matches ``encoded``; a malformed encoding is simply a mismatch."""
        parsed = _parse(encoded)
        if parsed is None:
            self.dummy_verify(password)
            return False
        n, r, p, salt, expected = parsed
        actual = _scrypt(password, salt, n, r, p, len(expected))
        return hmac.compare_digest(actual, expected)

    def dummy_verify(self, password: str = "") -> None:
        """Spend the time of one verification, for unknown or disabled users (no enumeration by timing)."""
        self.verify(password, self._dummy)

    def needs_rehash(self, encoded: str) -> bool:
        """True when ``encoded`` was made with other parameters than this hasher's (upgrade on next login)."""
        parsed = _parse(encoded)
        return parsed is None or parsed[:3] != (self.n, self.r, self.p)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = HASH_BYTES) -> bytes:
    # OpenSSL's default memory cap (32 MiB) is exactly what n=2**15, r=8 needs, so it would refuse it.
    maxmem = 128 * r * (n + p + 2) + 2**20
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        return None
    # Bounds keep a corrupted row from making one login allocate gigabytes.
    if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and salt and 16 <= len(digest) <= 64):
        return None
    return n, r, p, salt, digest


class SecretBox:
    """AES-256-GCM sealing of small secrets: ``seal`` returns nonce || ciphertext-with-tag.

    The key is given, or a function that fetches it, called once at the first seal or open: the key shared by a
    farm's nodes lives in the database the box's store is being opened on (``sts.tokens.key_store.secret_box_for``).
    """

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._source: Callable[[], bytes] | None = None
        self._aead_now: AESGCM | None = None
        if callable(key):
            self._source = key
        else:
            self._aead_now = _aead(key)
        self._lock = threading.Lock()

    @property
    def _aead(self) -> AESGCM:
        if self._aead_now is None:
            with self._lock:
                if self._aead_now is None and self._source is not None:
                    self._aead_now = _aead(self._source())
        assert self._aead_now is not None
        return self._aead_now

    def seal(self, plaintext: str, associated_data: bytes = b"") -> bytes:
        """Encrypt; ``associated_data`` binds the blob to its owner so it cannot be moved to another row."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), associated_data)

    def open(self, blob: bytes, associated_data: bytes = b"") -> str:
        """Decrypt; raises ValueError when the key is wrong or the blob was altered or moved."""
        aead = self._aead
        nonce, ciphertext = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        try:
            plaintext = aead.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise ValueError("sealed secret cannot be opened: wrong key or altered data") from None
        return plaintext.decode("utf-8")


def _aead(key: bytes) -> AESGCM:
    if len(key) != KEY_BYTES:
        raise ValueError(f"secret box key must be {KEY_BYTES} bytes")
    return AESGCM(key)


def load_or_create_key(path: Path) -> bytes:
    """Read the 32-byte key at ``path``, creating it (mode 0600) when absent; an existing key is never replaced."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(KEY_BYTES)
    # Written to a private temporary file, then hard-linked into place: link() fails if another process won
    # the race, and a reader never sees a half-written key.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: expected a {KEY_BYTES}-byte key, found {len(key)} bytes")
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by group or others; it should be mode 0600", path)
    return key
