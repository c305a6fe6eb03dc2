"""UsernameToken attacks: replayed nonces, stale and future Created, a digest over another nonce, brute force."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from lxml import etree

from attack_target import Target, prepare_home
from live import LiveServer, running
from trust_client import Reply
from sts import ns
from sts.config import load_settings
from sts.home import init_home
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wsse.username import password_digest
from sts.runtime import open_stores
from sts.uris import SoapVersion
from sts.xmltime import utcnow

WST = ns.WST13
EXPIRED = (ns.WSSE, "MessageExpired")
FAILED = (WST, "FailedAuthentication")


def _with_created(target: Target, *, offset: timedelta, nonce: bytes | None = None) -> bytes:
    """A digest UsernameToken whose Created (and Timestamp) is ``offset`` away from now, valid for two hours."""
    security = build_security_header(target.user, target.password, digest=True, now=utcnow() + offset,
                                     ttl=timedelta(hours=2), nonce=nonce)
    return target.envelope_with_security(security)


def test_replayed_nonce(target: Target) -> None:
    body = target.envelope(digest=True)
    assert target.post(body).status == 200
    assert target.post(body).fault_code == EXPIRED


def test_nonce_reused_with_a_fresh_created(target: Target) -> None:
    nonce = os.urandom(16)
    assert target.post(_with_created(target, offset=timedelta(0), nonce=nonce)).status == 200
    again = target.post(_with_created(target, offset=timedelta(seconds=1), nonce=nonce))
    assert again.fault_code == EXPIRED, again.fault_reason


@pytest.mark.parametrize("offset", [timedelta(hours=-1), timedelta(hours=1)], ids=["stale", "future"])
def test_created_outside_the_window(target: Target, offset: timedelta) -> None:
    reply = target.post(_with_created(target, offset=offset))
    assert reply.fault_code == EXPIRED, reply.fault_reason


def test_digest_over_another_nonce(target: Target) -> None:
    """The digest is right for nonce A but the message carries nonce B (a captured digest re-used)."""
    root = etree.fromstring(target.envelope(digest=True))
    token = root.find(f".//{{{ns.WSSE}}}UsernameToken")
    assert token is not None
    created = token.findtext(f"{{{ns.WSU}}}Created")
    assert created is not None
    token.find(f"{{{ns.WSSE}}}Password").text = password_digest(os.urandom(16), created, target.password)
    token.find(f"{{{ns.WSSE}}}Nonce").text = base64.b64encode(os.urandom(16)).decode()
    reply = target.post(etree.tostring(root))
    assert reply.fault_code == FAILED, reply.fault_reason


def test_digest_without_a_nonce(target: Target) -> None:
    root = etree.fromstring(target.envelope(digest=True))
    token = root.find(f".//{{{ns.WSSE}}}UsernameToken")
    assert token is not None
    token.remove(token.find(f"{{{ns.WSSE}}}Nonce"))
    reply = target.post(etree.tostring(root))
    assert reply.fault_code == (ns.WSSE, "InvalidSecurity"), reply.fault_reason


def test_timestamp_expiring_before_it_was_created(target: Target) -> None:
    root = etree.fromstring(target.envelope())
    expires = root.find(f".//{{{ns.WSU}}}Timestamp/{{{ns.WSU}}}Expires")
    assert expires is not None
    expires.text = "2000-01-01T00:00:00Z"
    reply = target.post(etree.tostring(root))
    assert reply.fault_code in ((ns.WSSE, "InvalidSecurity"), EXPIRED), reply.fault_reason


def test_huge_nonce(target: Target) -> None:
    root = etree.fromstring(target.envelope(digest=True))
    nonce = root.find(f".//{{{ns.WSSE}}}Nonce")
    assert nonce is not None
    nonce.text = "A" * 100_000
    reply = target.post(etree.tostring(root))
    assert reply.fault_code == FAILED, reply.fault_reason


# --- brute force: a server of its own (the throttle would slow down every other case of the shared one) ------------

ADMIN = ("attack-admin", "a-long-enough-admin-passphrase-1")
THROTTLE = {"auth_throttle_base_delay_ms": 20, "auth_throttle_max_delay_ms": 200}


@pytest.fixture(scope="module")
def victim(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """Locally: a fresh home served with a short throttle cap. Against STS_URL: the target itself."""
    if target.home is None:
        yield target
        return
    home: Path = tmp_path_factory.mktemp("brute-force-home")
    init_home(home)
    prepare_home(home)
    stores = open_stores(load_settings(home))
    try:
        stores.users.add(*ADMIN, admin=True)
    finally:
        stores.close()
    live: LiveServer
    with running(home, **THROTTLE) as live:
        yield Target(live.sts_url, target.user, target.password, target.applies_to, None, home, None)


def test_after_20_wrong_passwords_the_right_one_gets_a_token(victim: Target, target: Target) -> None:
    for attempt in range(20):
        wrong = victim.issue(password=f"guess-{attempt}")
        assert wrong.fault_code == FAILED, wrong.fault_reason
    cap = (THROTTLE["auth_throttle_max_delay_ms"] if victim.home is not None else 2000) / 1000
    started = time.monotonic()
    right = victim.issue()
    elapsed = time.monotonic() - started
    assert right.status == 200, f"the real user is locked out: {right.fault_code} {right.fault_reason}"
    assert elapsed < cap + 3, f"the right password waited {elapsed:.1f} s (cap {cap} s)"


def test_unknown_user_and_wrong_password_look_the_same(victim: Target, target: Target) -> None:
    unknown = victim.issue(user="nobody-here-" + os.urandom(4).hex(), password="guess")
    wrong = victim.issue(password="guess")
    assert unknown.fault_code == wrong.fault_code == FAILED
    assert unknown.fault_reason == wrong.fault_reason and unknown.status == wrong.status
    assert right_after(victim).status == 200


def test_digest_and_text_failures_look_the_same(victim: Target, target: Target) -> None:
    text = victim.issue(password="guess")
    digest = victim.issue(password="guess", digest=True)
    assert (text.fault_code, text.fault_reason, text.status) == (digest.fault_code, digest.fault_reason, digest.status)
    assert right_after(victim).status == 200


def test_the_administrator_cannot_be_locked_out(victim: Target) -> None:
    """The console used to lock an administrator out for 60 s after 5 failures: anyone could lock them out."""
    victim.require_home("signs in as an administrator of our own")
    api = victim.sts_url.removesuffix("/services/sts") + "/console/api/users"
    for attempt in range(20):
        assert httpx.get(api, auth=(ADMIN[0], f"guess-{attempt}"), timeout=30).status_code == 401
    started = time.monotonic()
    right = httpx.get(api, auth=ADMIN, timeout=30)
    elapsed = time.monotonic() - started
    assert right.status_code == 200, "the administrator is locked out"
    assert elapsed < THROTTLE["auth_throttle_max_delay_ms"] / 1000 + 3, f"waited {elapsed:.1f} s"


def right_after(victim: Target) -> Reply:
    return victim.issue(soap=SoapVersion.SOAP12)
