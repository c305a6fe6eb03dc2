"""Console authentication: signed session cookies, CSRF tokens, HTTP Basic for scripts.

Sign-in passwords go through the brute-force throttle every password check shares (``sts.service.throttle``,
state in the database): a growing, capped delay, never a lock-out that would let anyone lock the admin out.

The session is a cookie ``sts_console`` holding ``base64(json{u, c, e}).hmac`` (user, CSRF token, expiry),
signed with a key derived from the secrets key (``keys/secrets.key``, or with key_source "database"/"pkcs11" the one
every node shares from the database: ``sts.tokens.key_store.secrets_key``), so every worker process and node
accepts it and nothing is stored server-side. Each request re-reads the user: a disabled, removed or demoted admin loses access at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "sts_console"
LOGIN_COOKIE = "sts_console_login"
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    expires: float


class SessionCodec:
    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"sts-console-session-v1", hashlib.sha256).digest()

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, payload, hashlib.sha256).digest()).decode().rstrip("=")

    def issue(self, user: str, now: float | None = None) -> tuple[str, Session]:
        session = Session(user, secrets.token_urlsafe(32), (now or time.time()) + SESSION_SECONDS)
        payload = json.dumps({"u": session.user, "c": session.csrf, "e": session.expires}).encode()
        encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{encoded}.{self._mac(payload)}", session

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or cookie.count(".") != 1:
            return None
        encoded, mac = cookie.split(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            return None
        if not _same(self._mac(payload), mac):
            return None
        try:
            data = json.loads(payload)
            session = Session(str(data["u"]), str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > (now or time.time()) else None


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and _same(str(expected), str(given))


def _same(expected: str, given: str) -> bool:
    """Constant-time equality of two texts. As bytes: ``compare_digest`` raises TypeError on a non-ASCII str,
    and a cookie or form field may hold anything."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None
