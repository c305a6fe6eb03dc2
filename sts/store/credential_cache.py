"""Recently verified passwords, so that a repeated PasswordText request does not pay scrypt again.

A PasswordText UsernameToken is checked against the stored scrypt hash: ≈ 90 ms of CPU by design, against a few
microseconds for PasswordDigest. A client that sends the same user and password on every request (WCF, CXF and
zeep do) would pay that each time. This cache remembers, for ``password_cache_seconds``, that a (user, password)
pair matched a given stored hash:

* The key is an HMAC-SHA256 of the user name and the password under a random per-process secret, never stored
  and never logged: a memory dump of the cache reveals neither, and an offline guess needs the secret too.
* An entry holds the stored hash it was verified against. A password change (on any node) replaces that hash, so
  the entry no longer matches; a disabled user is refused before the cache is consulted (``SqlUserStore``).
* Bounded (``max_entries``, oldest dropped first) and switched off with ``password_cache_seconds = 0``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable

DEFAULT_MAX_ENTRIES = 10_000


class VerifiedCredentials:
    """(user, password) pairs that matched a stored hash, each for ``ttl_seconds``; one per process."""

    def __init__(self, ttl_seconds: float, *, max_entries: int = DEFAULT_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._entries: dict[bytes, tuple[float, str]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def __len__(self) -> int:
        return len(self._entries)

    def matches(self, name: str, password: str, stored_hash: str) -> bool:
        """True when this pair was verified against ``stored_hash`` within the TTL."""
        if not self.enabled:
            return False
        key = self._key(name, password)
        entry = self._entries.get(key)
        if entry is None:
            return False
        expires, verified_hash = entry
        if expires <= self._clock() or not hmac.compare_digest(verified_hash, stored_hash):
            with self._lock:
                self._entries.pop(key, None)
            return False
        return True

    def remember(self, name: str, password: str, stored_hash: str) -> None:
        """Record a successful verification of the pair against ``stored_hash``."""
        if not self.enabled:
            return
        key = self._key(name, password)
        with self._lock:
            self._entries.pop(key, None)  # re-inserted last: the oldest entries are dropped first
            while len(self._entries) >= self._max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (self._clock() + self.ttl_seconds, stored_hash)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _key(self, name: str, password: str) -> bytes:
        user = name.encode("utf-8", "surrogatepass")
        # Length-prefixed, so no (name, password) split of the same bytes gives the same key.
        message = len(user).to_bytes(4, "big") + user + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).digest()


__all__ = ["DEFAULT_MAX_ENTRIES", "VerifiedCredentials"]
