"""Our relying party follows the STS's signing-key rollover without a restart (a real STS on loopback).

``TokenVerifier.from_federation_metadata(url)`` reads the metadata again on a schedule and when a token is signed by
a key it does not know (rate-limited); Service A's ``verifier_following`` does the same from the home's keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from live import LiveServer, init_home_with, running
from sts import ns
from sts.cli.main import main
from sts.config import load_settings
from sts.home import DEMO_PASSWORD
from sts.model import RelyingParty
from sts.rp.demo_service import federation_metadata_url_for, verifier_following
from sts.rp.verifier import TokenRejected, TokenVerifier
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, load_certificate
from sts.tokens.crypto.signing import XmlSigner
from sts.tokens.keyring import REFRESH_SECONDS, Keyring
from sts.web.loopback import free_port
from sts.xmltime import utcnow
from trust_client import post, rst_envelope

PLAIN = "https://plain.example/app"
METADATA = "/FederationMetadata/2007-06/FederationMetadata.xml"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return init_home_with(tmp_path, RelyingParty(endpoint=PLAIN, encrypt=False))


@pytest.fixture
def live(home: Path) -> Iterator[LiveServer]:
    with running(home) as server:
        yield server


def _issue(live: LiveServer) -> etree._Element:
    reply = post(live.sts_url, rst_envelope(user="alice", password=DEMO_PASSWORD, applies_to=PLAIN))
    assert reply.status == 200
    return reply.token()


def _rollover(home: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["--home", str(home), "keys", "rollover", *args])
    assert result.exit_code == 0, result.output
    if "--now" in args:
        # The running STS signs by a schedule another process wrote within REFRESH_SECONDS (it publishes it at once).
        time.sleep(REFRESH_SECONDS + 0.2)


def _in_use(home: Path) -> object:
    return Keyring.for_home(load_settings(home).signing_key_path).current(utcnow()).certificate


def _forged(token: etree._Element) -> etree._Element:
    """The same assertion signed again by a key the STS never had (its certificate in KeyInfo)."""
    forged = etree.fromstring(etree.tostring(token))
    signature = forged.find(ns.qn(ns.DS, "Signature"))
    assert signature is not None
    forged.remove(signature)
    XmlSigner(SigningKey.from_pem(*generate_key_and_cert("forger"))).sign(
        forged, forged.get("ID") or "", after=forged.find(ns.qn(ns.SAML2, "Issuer")))
    return forged


def test_a_token_from_the_new_key_makes_the_verifier_fetch_once(home: Path, live: LiveServer) -> None:
    verifier = TokenVerifier.from_federation_metadata(live.base_url + METADATA, audience=PLAIN)
    assert verifier.metadata is not None and verifier.metadata.fetches == 1
    assert verifier.verify(_issue(live)).subject == "alice"
    _rollover(home, "--now")  # the override: the new key signs at once, before we could have read it
    after = _issue(live)
    assert verifier.verify(after).subject == "alice"  # no restart: the unknown key made it read the metadata
    assert verifier.metadata.fetches == 2 and _in_use(home) in verifier.sts_certificates
    # Forged tokens are refused, and a stream of them costs no fetch within the rate limit.
    for _ in range(5):
        with pytest.raises(TokenRejected) as refused:
            verifier.verify(_forged(after))
        assert refused.value.code == "signature"
    assert verifier.metadata.fetches == 2


def test_the_verifier_reads_the_metadata_on_its_schedule(home: Path, live: LiveServer) -> None:
    verifier = TokenVerifier.from_federation_metadata(live.base_url + METADATA, audience=PLAIN,
                                                      refresh_interval=timedelta(seconds=0.5),
                                                      unknown_key_interval=None)  # the schedule alone
    (first,) = verifier.sts_certificates
    at = utcnow() + timedelta(seconds=3)
    _rollover(home, "--at", at.isoformat(), "--allow-short-lead")  # a planned switch, shortened for the test
    time.sleep(0.6)
    assert verifier.verify(_issue(live)).subject == "alice"  # still the first key; the schedule was due
    assert len(verifier.sts_certificates) == 2  # the next key, learnt before it signs
    fetches = verifier.metadata.fetches if verifier.metadata else 0
    time.sleep(max(0.0, (at - utcnow()).total_seconds()) + 0.1)
    after = _issue(live)
    assert _in_use(home) != first
    assert verifier.verify(after).subject == "alice"
    assert verifier.metadata is not None and verifier.metadata.fetches <= fetches + 1  # only the schedule's


def test_service_a_starts_before_its_sts_and_follows_it(home: Path) -> None:
    """``sts demo-service``'s verifier: the home's keys until the STS answers, then its metadata."""
    settings = load_settings(home)
    first = load_certificate(settings.signing_cert_path.read_bytes())
    unreachable = f"http://127.0.0.1:{free_port()}/services/sts"
    verifier = verifier_following(federation_metadata_url_for(unreachable) or "", fallback=[first],
                                  audience=[PLAIN], refresh_interval=timedelta(seconds=0.2))
    assert verifier.sts_certificates == (first,)  # the STS is not up: the home's key, a warning logged
    with running(home) as live:
        assert federation_metadata_url_for(live.sts_url) == live.base_url + METADATA
        following = verifier_following(live.base_url + METADATA, fallback=[first], audience=[PLAIN],
                                       refresh_interval=timedelta(seconds=0.2))
        _rollover(home, "--now")
        assert following.verify(_issue(live)).subject == "alice"
        assert _in_use(home) in following.sts_certificates


def test_a_pinned_certificate_never_fetches(home: Path, live: LiveServer) -> None:
    first = load_certificate(load_settings(home).signing_cert_path.read_bytes())
    pinned = TokenVerifier([first], audience=PLAIN)
    _rollover(home, "--now")
    with pytest.raises(TokenRejected) as refused:
        pinned.verify(_issue(live))
    assert refused.value.code == "signature" and pinned.metadata is None
