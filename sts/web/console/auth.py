"""Console authentication: signed session cookies, CSRF tokens, HTTP Basic for scripts, sign-in lock-out.

The session is a cookie ``sts_console`` holding ``base64(json{u, c, e}).hmac`` (user, CSRF token, expiry),
signed with a key derived from the home's secrets key, so every worker process accepts it and nothing is
stored server-side. Each request re-reads the user: a disabled, removed or demoted admin loses access at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "sts_console"
LOGIN_COOKIE = "sts_console_login"
SESSION_SECONDS = 8 * 3600
#: Failures per user name before sign-in attempts for that name are refused for ``LOCKOUT_SECONDS``.
MAX_FAILURES = 5
LOCKOUT_SECONDS = 60


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
        if not hmac.compare_digest(self._mac(payload), mac):
            return None
        try:
            data = json.loads(payload)
            session = Session(str(data["u"]), str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > (now or time.time()) else None


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


class Lockout:
    """Per-name failure counting (per process): after MAX_FAILURES, attempts wait out LOCKOUT_SECONDS."""

    def __init__(self, max_failures: int = MAX_FAILURES, seconds: float = LOCKOUT_SECONDS) -> None:
        self._max = max_failures
        self._seconds = seconds
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def locked_for(self, name: str, now: float | None = None) -> float:
        """Seconds until ``name`` may try again (0: now)."""
        now = now or time.monotonic()
        with self._lock:
            count, last = self._failures.get(name, (0, 0.0))
        if count < self._max:
            return 0.0
        return max(0.0, last + self._seconds - now)

    def failed(self, name: str, now: float | None = None) -> None:
        now = now or time.monotonic()
        with self._lock:
            count, last = self._failures.get(name, (0, 0.0))
            if count >= self._max and now - last >= self._seconds:
                count = 0  # the lock-out ran out: a fresh series of attempts
            self._failures[name] = (count + 1, now)
            if len(self._failures) > 10000:  # bounded memory under a spray of names
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None
