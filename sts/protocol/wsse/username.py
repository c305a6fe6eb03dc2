"""UsernameToken verification (WSS UsernameToken Profile 1.0/1.1): PasswordText and PasswordDigest.

PasswordDigest = Base64(SHA-1(nonce + created + password)); its Nonce + Created are required, must be fresh and
are remembered for the freshness window in the shared replay cache, so a replay fails on every worker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta

from sts.errors import FailedAuthentication, InsecureTransport, ReplayedMessage, SecurityHeaderError
from sts.interfaces import ReplayCache, UserDirectory
from sts.protocol.wsse.header import UsernameToken
from sts.protocol.wsse.timestamp import check_created


#: Runs one password check: ``(user name, the check) -> its result``. The default just runs it; the service
#: passes the brute-force throttle's (``sts.service.throttle``), which may first wait and then counts the result.
PasswordCheck = Callable[[str, Callable[[], bool]], bool]


def _unguarded(name: str, verify: Callable[[], bool]) -> bool:
    return verify()


def password_digest(nonce: bytes, created: str, password: str) -> str:
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def verify_username_token(
    token: UsernameToken,
    users: UserDirectory,
    replay: ReplayCache,
    *,
    now: datetime,
    window: timedelta,
    skew: timedelta,
    text_allowed: bool,
    check: PasswordCheck = _unguarded,
) -> str:
    """Return the authenticated user name or raise; unknown user and wrong password fail alike.

    Only the password comparison itself runs under ``check``: a token refused before it (no password, stale
    Created, PasswordText over plain HTTP, a digest without Nonce) is not a password check.
    """
    if token.password is None:
        raise FailedAuthentication("UsernameToken without Password")
    check_created(token.created_at, now, window, skew)
    password = token.password
    if token.digest:
        if token.nonce is None or token.created is None:
            raise SecurityHeaderError("PasswordDigest needs Nonce and Created")
        ok = check(token.username, lambda: _check_digest(token, users))
    else:
        if not text_allowed:
            raise InsecureTransport("PasswordText over plain HTTP")
        ok = check(token.username, lambda: users.check_password(token.username, password))
    if not ok:
        raise FailedAuthentication(f"bad credentials for {token.username!r}")
    _remember_nonce(token, replay, now, window, skew)
    return token.username


def _check_digest(token: UsernameToken, users: UserDirectory) -> bool:
    assert token.nonce is not None and token.created is not None  # checked by the caller
    secret = users.digest_secret(token.username)
    expected = password_digest(token.nonce, token.created, secret if secret is not None else "")
    # Compare even for an unknown user, so timing does not tell which names exist.
    return hmac.compare_digest(expected.encode(), (token.password or "").strip().encode()) and secret is not None


def _remember_nonce(
    token: UsernameToken, replay: ReplayCache, now: datetime, window: timedelta, skew: timedelta
) -> None:
    if token.nonce is None:
        return
    key = hashlib.sha256(b"wsse-ut\0" + token.username.encode() + b"\0" + token.nonce).digest()
    base = token.created_at or now
    if not replay.first_seen(key, base + window + skew):
        raise ReplayedMessage(f"replayed nonce for {token.username!r}")
