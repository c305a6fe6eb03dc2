"""Signing key rollover: the keyring's schedule, and on the wire (tokens, federation metadata, the resolver)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from lxml import etree

from live import LiveServer, init_home_with, running
from sts import ns
from sts.cli.main import main
from sts.config import load_settings
from sts.tokens.crypto.keys import fingerprint_sha256, generate_key_and_cert, load_certificate
from sts.home import DEMO_PASSWORD
from sts.tokens import keyring as keyring_module
from sts.tokens.keyring import LEGACY_ID, REFRESH_SECONDS, Keyring
from sts.model import RelyingParty
from sts.rp.verifier import TokenRejected, TokenVerifier
from sts.xmltime import utcnow
from trust_client import post, rst_envelope

PLAIN = "https://plain.example/app"
METADATA = "/FederationMetadata/2007-06/FederationMetadata.xml"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return init_home_with(tmp_path, RelyingParty(endpoint=PLAIN, encrypt=False))


def _ring(home: Path) -> Keyring:
    return Keyring.for_home(load_settings(home).signing_key_path)


def test_existing_key_is_the_initial_active_key(home: Path) -> None:
    ring = _ring(home)
    legacy = load_certificate(load_settings(home).signing_cert_path.read_bytes())
    now = utcnow()
    assert ring.current(now).certificate == legacy
    assert ring.published(now) == [legacy]
    (entry,) = ring.entries(now)
    assert (entry.id, entry.state, entry.retire_after) == (LEGACY_ID, "active", None)


def test_schedule_states_and_overlap(home: Path) -> None:
    ring = _ring(home)
    now = utcnow()
    legacy = ring.current(now).certificate
    key_pem, cert_pem = generate_key_and_cert("imported")
    new_id = ring.schedule(key_pem, cert_pem, active_from=now + timedelta(hours=1), overlap=timedelta(days=2))
    new_cert = load_certificate(cert_pem)
    assert {e.id: e.state for e in ring.entries(now)} == {LEGACY_ID: "active", new_id: "next"}
    assert ring.published(now) == [legacy, new_cert]
    later = now + timedelta(hours=2)
    assert ring.current(later).certificate == new_cert
    assert {e.id: e.state for e in ring.entries(later)} == {LEGACY_ID: "retired-published", new_id: "active"}
    much_later = now + timedelta(days=3)
    assert ring.published(much_later) == [new_cert]
    assert {e.id: e.state for e in ring.entries(much_later)}[LEGACY_ID] == "retired"
    # Another process (a fresh Keyring) reads the same schedule; a key without a certificate gets a self-signed one.
    other_key, _ = generate_key_and_cert("no cert")
    third = _ring(home).schedule(other_key, None, active_from=now + timedelta(days=10), overlap=timedelta(0))
    assert third in {e.id for e in ring.entries(now)}
    with pytest.raises(ValueError, match="does not belong"):
        ring.schedule(other_key, cert_pem, active_from=now, overlap=timedelta(0))  # not the key's certificate
    with pytest.raises(ValueError, match="time zone"):
        ring.schedule(other_key, None, active_from=now.replace(tzinfo=None), overlap=timedelta(0))


def test_a_schedule_another_process_writes_signs_within_the_refresh_and_is_published_at_once(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing looks at the schedule file at most every REFRESH_SECONDS (a stat per token cost 2 % of one); what is
    published (metadata, trust for Validate) reads it on every call; a switch time already read is kept exactly."""
    seconds = [1000.0]
    monkeypatch.setattr(keyring_module.time, "monotonic", lambda: seconds[0])
    ring = _ring(home)
    now = utcnow()
    legacy = ring.current(now).certificate
    key_pem, cert_pem = generate_key_and_cert("switch now")
    _ring(home).schedule(key_pem, cert_pem, active_from=now - timedelta(seconds=1), overlap=timedelta(days=1))
    new_cert = load_certificate(cert_pem)
    seconds[0] += REFRESH_SECONDS / 2
    assert ring.current(now).certificate == legacy  # not looked at again yet
    assert ring.published(now) == [legacy, new_cert]  # published at once (and that read the schedule afresh)
    assert ring.current(now).certificate == new_cert
    later_key, later_cert = generate_key_and_cert("switch later")
    _ring(home).schedule(later_key, later_cert, active_from=now + timedelta(hours=1), overlap=timedelta(days=1))
    seconds[0] += REFRESH_SECONDS
    assert ring.current(now).certificate == new_cert  # read again, and the later switch is not due yet
    assert ring.current(now + timedelta(hours=2)).certificate == load_certificate(later_cert)  # due: to the instant


def test_the_certificate_file_follows_the_switch(home: Path) -> None:
    """keys/sts-signing.{key,crt} hold the key in use: rewritten when a keyring sees the switch time pass."""
    settings = load_settings(home)
    first_cert, first_key = settings.signing_cert_path.read_bytes(), settings.signing_key_path.read_bytes()
    start = utcnow()
    clock = [start]
    ring = Keyring.for_home(settings.signing_key_path, clock=lambda: clock[0])
    key_pem, cert_pem = generate_key_and_cert("next")
    new_id = ring.schedule(key_pem, cert_pem, active_from=start + timedelta(hours=1), overlap=timedelta(days=1))
    assert settings.signing_cert_path.read_bytes() == first_cert  # scheduled, not yet in use
    # The first key is kept aside before the files in use may change.
    assert (home / "keys" / "signing" / f"{LEGACY_ID}.crt").read_bytes() == first_cert
    clock[0] = start + timedelta(hours=2)
    assert ring.current(start).certificate == load_certificate(first_cert)  # asking about the past changes nothing
    assert settings.signing_cert_path.read_bytes() == cert_pem
    assert settings.signing_key_path.read_bytes() == key_pem
    assert oct(settings.signing_key_path.stat().st_mode & 0o777) == "0o600"
    # Another process reads the first key from where it was kept: both keys still load as themselves.
    fresh = {e.id: e.fingerprint for e in _ring(home).entries()}
    assert fresh == {LEGACY_ID: fingerprint_sha256(load_certificate(first_cert)),
                     new_id: fingerprint_sha256(load_certificate(cert_pem))}
    assert (home / "keys" / "signing" / f"{LEGACY_ID}.key").read_bytes() == first_key


def test_a_schedule_from_before_the_kept_copy_is_followed_safely(home: Path) -> None:
    """A home whose schedule was written before the first key was kept aside: the copy is made before the rewrite."""
    settings = load_settings(home)
    first_cert = settings.signing_cert_path.read_bytes()
    start = utcnow()
    clock = [start]
    key_pem, cert_pem = generate_key_and_cert("next")
    Keyring.for_home(settings.signing_key_path, clock=lambda: clock[0]).schedule(
        key_pem, cert_pem, active_from=start + timedelta(hours=1), overlap=timedelta(days=1))
    for suffix in ("key", "crt"):  # the layout of an older release
        (home / "keys" / "signing" / f"{LEGACY_ID}.{suffix}").unlink()
    clock[0] = start + timedelta(hours=2)
    later = Keyring.for_home(settings.signing_key_path, clock=lambda: clock[0])
    assert settings.signing_cert_path.read_bytes() == cert_pem
    assert (home / "keys" / "signing" / f"{LEGACY_ID}.crt").read_bytes() == first_cert
    assert later.published(start + timedelta(hours=2)) == [load_certificate(first_cert), load_certificate(cert_pem)]


@pytest.fixture
def live(home: Path) -> Iterator[LiveServer]:
    with running(home) as server_live:
        yield server_live


def _metadata_certs(live: LiveServer) -> list[x509.Certificate]:
    root = etree.fromstring(httpx.get(live.base_url + METADATA, timeout=10).content)
    role = root.find(f"{{{ns.MD}}}RoleDescriptor")
    assert role is not None
    return [x509.load_der_x509_certificate(base64.b64decode(d.findtext(f".//{{{ns.DS}}}X509Certificate") or ""))
            for d in role.findall(f"{{{ns.MD}}}KeyDescriptor") if d.get("use") == "signing"]


def _issue(live: LiveServer) -> etree._Element:
    reply = post(live.sts_url, rst_envelope(user="alice", password=DEMO_PASSWORD, applies_to=PLAIN))
    assert reply.status == 200
    return reply.token()


def test_scheduled_rollover_on_the_wire(home: Path, live: LiveServer) -> None:
    legacy = load_certificate(load_settings(home).signing_cert_path.read_bytes())
    assert _metadata_certs(live) == [legacy]
    at = utcnow() + timedelta(seconds=6)  # room for the command and the "before" Issue on a loaded machine
    result = CliRunner().invoke(main, ["--home", str(home), "keys", "rollover", "--at", at.isoformat(),
                                       "--allow-short-lead", "--overlap-days", "1"])
    assert result.exit_code == 0, result.output
    new_cert = next(e for e in _ring(home).entries() if e.state == "next")
    before = _issue(live)
    TokenVerifier([legacy], audience=PLAIN).verify(before)
    published = _metadata_certs(live)
    assert published[0] == legacy and len(published) == 2  # the next key is announced before it signs
    time.sleep(max(0.0, (at - utcnow()).total_seconds()) + 0.1)
    after = _issue(live)
    new = next(c for c in _metadata_certs(live) if c != legacy)
    assert fingerprint_sha256(new) == new_cert.fingerprint
    assert TokenVerifier([new], audience=PLAIN).verify(after).subject == "alice"
    with pytest.raises(TokenRejected) as refused:  # signed by the new key only
        TokenVerifier([legacy], audience=PLAIN).verify(after)
    assert refused.value.code == "signature"
    assert _metadata_certs(live) == [new, legacy]  # active first, the old one still trusted
    # The server saw the switch pass: the certificate file relying parties are pointed at is the new one.
    assert load_certificate(load_settings(home).signing_cert_path.read_bytes()) == new
    # The resolver trusts both: Validate of a token signed by the old key and of one by the new key.
    for token in (before, after):
        body = rst_envelope(user="alice", password=DEMO_PASSWORD, applies_to=None, request_type="Validate",
                            targets={"ValidateTarget": token})
        reply = post(live.sts_url, body)
        assert reply.status == 200
        assert (reply.findtext(".//trust:Status/trust:Code") or "").endswith("/valid")
    listing = CliRunner().invoke(main, ["--home", str(home), "keys", "list"])
    assert listing.exit_code == 0, listing.output
    assert "retired-published" in listing.output and "active" in listing.output
    cert_out = CliRunner().invoke(main, ["--home", str(home), "cert"])
    assert cert_out.exit_code == 0, cert_out.output
    assert load_certificate(cert_out.output.encode()) == new


def test_a_home_whose_active_key_is_ec_starts_and_signs_with_ecdsa(home: Path, tmp_path: Path) -> None:
    """The ECDSA opt-in: an EC key that is already active when the server starts (it used to fail to start)."""
    key_pem, cert_pem = generate_key_and_cert("ec signing", ec=True)
    _ring(home).schedule(key_pem, cert_pem, active_from=utcnow(), overlap=timedelta(0))  # as `--now` does
    with running(home) as server_live:
        token = _issue(server_live)
        method = token.find(f".//{{{ns.DS}}}SignatureMethod")
        assert method is not None and method.get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        assert TokenVerifier([load_certificate(cert_pem)], audience=PLAIN).verify(token).subject == "alice"
        metadata = httpx.get(server_live.base_url + METADATA, timeout=10)
        assert metadata.status_code == 200 and b"ecdsa-sha256" in metadata.content
