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
from sts.tokens.keyring import LEGACY_ID, Keyring
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
    at = utcnow() + timedelta(seconds=2)
    result = CliRunner().invoke(main, ["--home", str(home), "keys", "rollover", "--at", at.isoformat(),
                                       "--overlap-days", "1"])
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
    _ring(home).schedule(key_pem, cert_pem, active_from=utcnow() - timedelta(seconds=1), overlap=timedelta(0))
    with running(home) as server_live:
        token = _issue(server_live)
        method = token.find(f".//{{{ns.DS}}}SignatureMethod")
        assert method is not None and method.get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        assert TokenVerifier([load_certificate(cert_pem)], audience=PLAIN).verify(token).subject == "alice"
        metadata = httpx.get(server_live.base_url + METADATA, timeout=10)
        assert metadata.status_code == 200 and b"ecdsa-sha256" in metadata.content
