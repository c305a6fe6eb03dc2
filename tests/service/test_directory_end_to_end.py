"""End to end: ``sts serve`` over TLS with ``user_store`` pointing at a real slapd; a directory user gets a token
with PasswordText, and the relying party's verifier (sts.rp) reads the directory's claims out of it."""

from __future__ import annotations

import gc
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from live import free_port, make_tls_files, wait_healthy
from servers.slapd import PASSWORD_ENV, READER_PASSWORD, Slapd
from sts.client.trust import TrustClient, TrustFault, UsernameCredentials
from sts.config import load_settings
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.rp.verifier import TokenVerifier
from sts.store.ldap_directory import ROLE_CLAIM
from sts.tokens.crypto.keys import load_certificate, load_private_key

GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
MAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def configure(home: Path, settings: dict[str, object]) -> None:
    """The ldap settings written into the home's sts.toml, as an operator would."""
    config = home / "sts.toml"
    lines = [line for line in config.read_text().splitlines() if not line.startswith("user_store")]
    lines += [f"{key} = {_toml(value)}" for key, value in settings.items()]
    config.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(STS URL, the TLS certificate to trust, home) of an ``sts serve`` process using the test directory."""
    root = tmp_path_factory.mktemp("directory-e2e")
    with Slapd.started(root) as slapd:
        home = root / "home"
        init_home(home)
        configure(home, slapd.settings(ldap_start_tls=True))
        cert, key = make_tls_files(root)
        port = free_port()
        env = {**os.environ, "STS_PASSWORD_HASH_N": "16", PASSWORD_ENV: READER_PASSWORD}
        process = subprocess.Popen(
            [sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port),
             "--ssl-certfile", cert, "--ssl-keyfile", key],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        base = f"https://127.0.0.1:{port}"
        try:
            with httpx.Client(verify=ssl.create_default_context(cafile=cert)) as client:
                wait_healthy(base, process, client=client)
            yield f"{base}/services/sts", cert, home
        finally:
            # A refused request's reply stays referenced by the TrustFault's traceback, and with it its kept-alive
            # connection, which uvicorn's graceful shutdown would wait for.
            gc.collect()
            process.terminate()
            try:
                process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate(timeout=10)
                raise


@pytest.fixture(autouse=True)
def _trust_only_the_test_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override a session's own CA bundle (its verify=): the STS client would then
    # check the loopback certificate against the system's CAs and refuse it.
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def clients() -> Iterator[list[TrustClient]]:
    """The test's clients, their connections closed afterwards (a kept-alive one would hold up the shutdown)."""
    made: list[TrustClient] = []
    yield made
    for client in made:
        client.transport.session.close()


def _client(served: tuple[str, str, Path], made: list[TrustClient], user: str, password: str, *,
            digest: bool = False) -> TrustClient:
    url, cert, _ = served
    client = TrustClient(f"{url}?wsdl", credentials=UsernameCredentials(user, password, digest=digest), verify=cert)
    made.append(client)
    return client


def test_a_directory_user_gets_a_token_whose_claims_come_from_the_directory(served: tuple[str, str, Path], clients: list[TrustClient]) -> None:
    result = _client(served, clients, "carol", "carol-pass-1").issue(DEMO_RP_ENDPOINT, claims=(GIVEN, MAIL, ROLE_CLAIM))
    home = served[2]
    verifier = TokenVerifier([load_certificate(load_settings(home).signing_cert_path.read_bytes())],
                             rp_private_key=load_private_key((home / "demo" / "rp.key").read_bytes()),  # type: ignore[arg-type]
                             audience=DEMO_RP_ENDPOINT)
    token = verifier.verify(result.token)
    assert token.subject == "carol"
    assert token.claims[GIVEN] == ("Carol",) and token.claims[MAIL] == ("carol@example.test",)
    assert sorted(token.claims[ROLE_CLAIM]) == ["sts-admins", "sts-users"]


def test_over_the_wire_a_digest_for_a_directory_user_is_refused_saying_why(served: tuple[str, str, Path], clients: list[TrustClient]) -> None:
    with pytest.raises(TrustFault) as refused:
        _client(served, clients, "carol", "carol-pass-1", digest=True).issue(DEMO_RP_ENDPOINT)
    assert refused.value.fault_code[1] == "FailedAuthentication"
    assert "PasswordText over TLS" in refused.value.fault_reason
    # The local demo user keeps PasswordDigest, and a wrong directory password is a plain FailedAuthentication.
    assert _client(served, clients, DEMO_USER, DEMO_PASSWORD, digest=True).issue(DEMO_RP_ENDPOINT).token
    with pytest.raises(TrustFault) as wrong:
        _client(served, clients, "carol", "not-carols").issue(DEMO_RP_ENDPOINT)
    assert wrong.value.fault_code[1] == "FailedAuthentication" and "PasswordText" not in wrong.value.fault_reason
