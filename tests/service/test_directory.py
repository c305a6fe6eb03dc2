"""Local users first, then the LDAP directory: the whole Issue pipeline of a runtime built with ``user_store`` set,
against a real slapd (tests/servers/slapd.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from servers.slapd import Slapd
from sts import ns
from sts.admin.explain import ExplainQuery, explain
from sts.config import load_settings
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.rp.verifier import TokenVerifier
from sts.runtime import Runtime, build_runtime
from sts.service.throttle import address_key, user_key
from sts.store.ldap_directory import ROLE_CLAIM
from sts.store.throttle import SqlThrottleStore
from sts.tokens.crypto.keys import load_certificate, load_private_key
from sts.web.metadata.wsdl import build_wsdl
from sts.xmltime import utcnow
from timing import did_not_wait
from trust_client import Reply, handle_in_process, rst_envelope

GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
DIGEST_REASON = "PasswordText"


def _runtime(home: Path, **overrides: Any) -> Runtime:
    return build_runtime(replace(load_settings(home), **overrides))


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, slapd: Slapd) -> Iterator[Runtime]:
    home = tmp_path_factory.mktemp("sts-directory")
    init_home(home)
    built = _runtime(home, **slapd.settings(ldap_start_tls=True))
    yield built
    assert built.directory is not None
    built.directory.close()
    built.stores.close()


def issue(runtime: Runtime, user: str, password: str, *, digest: bool = False, claims: tuple[str, ...] = ()) -> Reply:
    body = rst_envelope(user=user, password=password, applies_to=DEMO_RP_ENDPOINT, digest=digest,
                        claims=tuple((uri, True) for uri in claims))
    return handle_in_process(runtime, bytes(body))


def verified_claims(runtime: Runtime, reply: Reply) -> dict[str, tuple[str, ...]]:
    """The token's claims as the relying party reads them (sts.rp: decrypted, signature verified)."""
    assert reply.fault_code is None, reply.fault_reason
    home = runtime.settings.home
    verifier = TokenVerifier([load_certificate(runtime.settings.signing_cert_path.read_bytes())],
                             rp_private_key=load_private_key((home / "demo" / "rp.key").read_bytes()),  # type: ignore[arg-type]
                             audience=DEMO_RP_ENDPOINT)
    return verifier.verify(reply.token()).claims


def test_a_directory_user_gets_a_token_with_the_directory_claims(runtime: Runtime) -> None:
    claims = verified_claims(runtime, issue(runtime, "carol", "carol-pass-1", claims=(GIVEN, ROLE_CLAIM)))
    assert claims[GIVEN] == ("Carol",)
    assert sorted(claims[ROLE_CLAIM]) == ["sts-admins", "sts-users"]


def test_a_local_user_wins_over_the_directory_entry_of_the_same_name(runtime: Runtime) -> None:
    local = verified_claims(runtime, issue(runtime, DEMO_USER, DEMO_PASSWORD, claims=(GIVEN,)))
    assert local[GIVEN] != ("Directory-Alice",)
    # The directory's password for "alice" is not alice's password here: the local account decides.
    assert issue(runtime, DEMO_USER, "alice-directory-pass").fault_code == (ns.WST13, "FailedAuthentication")


def test_a_bad_directory_password_fails_like_a_bad_local_one_and_is_throttled(runtime: Runtime) -> None:
    local = issue(runtime, DEMO_USER, "not-the-password")
    store = SqlThrottleStore(runtime.stores.engine)
    since = utcnow() - timedelta(minutes=10)
    before = store.counts(user_key("dave"), address_key("127.0.0.1"), since)[0]
    for reply in (issue(runtime, "dave", "not-the-password"), issue(runtime, "no-such-person", "whatever"),
                  issue(runtime, "*)(uid=*", "dave-pass-1"), issue(runtime, "dave", "")):
        assert (reply.fault_code, reply.fault_reason) == (local.fault_code, local.fault_reason)
    assert local.fault_code == (ns.WST13, "FailedAuthentication")
    assert store.counts(user_key("dave"), address_key("127.0.0.1"), since)[0] == before + 2


def test_a_digest_for_a_directory_user_is_refused_saying_password_text_is_needed(runtime: Runtime) -> None:
    directory_user = issue(runtime, "carol", "carol-pass-1", digest=True)
    assert directory_user.fault_code == (ns.WSSE, "FailedAuthentication")
    assert DIGEST_REASON in (directory_user.fault_reason or "") and "TLS" in (directory_user.fault_reason or "")
    # An unknown name gets the very same answer: the fault tells no one which names the directory holds.
    unknown = issue(runtime, "no-such-person", "carol-pass-1", digest=True)
    assert (unknown.fault_code, unknown.fault_reason) == (directory_user.fault_code, directory_user.fault_reason)
    # Local users keep PasswordDigest.
    assert issue(runtime, DEMO_USER, DEMO_PASSWORD, digest=True).fault_code is None


def test_explain_works_for_a_directory_user(runtime: Runtime) -> None:
    answer = explain(runtime, ExplainQuery.from_text(user="carol", rp=DEMO_RP_ENDPOINT, claims=["givenname", "role"]))
    assert answer.ok, answer.problem
    assert {claim["uri"]: claim["values"] for claim in answer.explanation.claims}[GIVEN] == ["Carol"]
    unknown = explain(runtime, ExplainQuery.from_text(user="nobody-here", rp=DEMO_RP_ENDPOINT))
    assert not unknown.ok and unknown.problem == "no user named nobody-here (locally or in the directory)"


def test_a_directory_that_is_down_fails_fast_with_request_failed(
    tmp_path: Path, slapd: Slapd, caplog: pytest.LogCaptureFixture,
) -> None:
    init_home(tmp_path)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = _runtime(tmp_path, **slapd.settings(user_store=f"ldap://127.0.0.1:{closed}"))
    try:
        with caplog.at_level(logging.INFO):
            started = time.monotonic()
            reply = issue(down, "carol", "carol-pass-1")
            elapsed = time.monotonic() - started
        assert reply.fault_code == (ns.WST13, "RequestFailed")
        assert "directory" not in (reply.fault_reason or "").lower()  # the reason is the log's, not the wire's
        assert any("directory" in record.getMessage() for record in caplog.records)
        assert did_not_wait(elapsed, down.settings.ldap_timeout_seconds), elapsed  # refused, not the connect timeout
        # Local users do not need the directory.
        assert issue(down, DEMO_USER, DEMO_PASSWORD).fault_code is None
    finally:
        down.stores.close()


def test_a_directory_that_hangs_fails_with_request_failed_after_the_timeout(runtime: Runtime, slapd: Slapd) -> None:
    assert runtime.directory is not None
    runtime.directory.forget()
    with slapd.paused():
        started = time.monotonic()
        reply = issue(runtime, "dave", "dave-pass-1")
        elapsed = time.monotonic() - started
    assert reply.fault_code == (ns.WST13, "RequestFailed")
    assert elapsed < 3 * runtime.settings.ldap_timeout_seconds + 1


def test_the_wsdl_says_what_directory_users_must_send() -> None:
    with_directory = build_wsdl("https://sts.example.test", directory=True)
    first = with_directory[0]
    assert first.tag == f"{{{ns.WSDL}}}documentation" and "PasswordText" in (first.text or "")
    assert "TLS" in (first.text or "")
    # The policies are unchanged: no sp:HashPassword (which would demand a digest) either way.
    assert not list(with_directory.iter(f"{{{ns.SP12}}}HashPassword"))
    without = build_wsdl("https://sts.example.test")
    assert not list(without.iter(f"{{{ns.WSDL}}}documentation"))
    assert len(with_directory) == len(without) + 1
