"""`sts client test` and the refusal's reason in the audit trail, against a live STS on loopback (real HTTP, real
SQLite, real signatures): the wire fault stays generic, the local audit record names what failed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography import x509
from click.testing import CliRunner, Result
from lxml import etree

from live import LiveServer, init_home_with, running
from signing import key_pem, make_client, rst_root

from sts.admin import client_test as probe_core
from sts.cli.main import main
from sts.errors import FailedAuthentication, FailedCheck, InvalidScope
from sts.home import DEMO_PASSWORD, DEMO_USER
from sts.protocol.wstrust.response import parse_fault
from sts.store.audit import AuditRecord, AuditTrail
from sts.tokens.crypto.keys import PrivateKey, load_certificate, load_private_key
from sts.uris import SoapVersion, TrustVersion


@dataclass(frozen=True)
class Setup:
    live: LiveServer
    home: Path
    files: Path

    def sts(self, *args: str, home: Path | None = None) -> Result:
        return CliRunner().invoke(main, ["--home", str(home or self.home), *args])

    def test(self, name: str, *args: str, home: Path | None = None) -> Result:
        return self.sts("client", "test", "--cert", str(self.files / f"{name}.crt"),
                        "--key", str(self.files / f"{name}.key"), *args, home=home)

    def record(self, message_id: str) -> AuditRecord:
        trail = AuditTrail(self.live.runtime.stores.engine)  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        found = probe_core.find_record(trail, message_id, now, now)
        assert found is not None, f"no audit record for {message_id}"
        return found


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """One STS for the module; client ``svc`` registered (SHA-1 not allowed), ``stranger`` not registered."""
    base = tmp_path_factory.mktemp("client-test")
    home = init_home_with(base / "home")
    for name in ("svc", "stranger"):
        key, _, pem = make_client(name)
        (base / f"{name}.crt").write_bytes(pem)
        (base / f"{name}.key").write_bytes(key_pem(key))
    added = CliRunner().invoke(main, ["--home", str(home), "client", "add", "svc", "--cert", str(base / "svc.crt")])
    assert added.exit_code == 0, added.output
    with running(home) as live:
        yield Setup(live, home, base)


def _message_id(output: str) -> str:
    return output.split(", message ", 1)[1].split()[0]


def _reason_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("reason (local audit record"))


def test_a_registered_client_gets_a_token_on_every_version(setup: Setup) -> None:
    for args in ((setup.live.base_url,), (setup.live.sts_url, "--soap", "11", "--wst", "2005")):
        result = setup.test("svc", *args)
        assert result.exit_code == 0, result.output
        assert "token issued: urn:oasis:names:tc:SAML:2.0:assertion" in result.output


def test_an_unregistered_certificate_is_generic_on_the_wire_and_named_locally(setup: Setup) -> None:
    result = setup.test("stranger", setup.live.base_url)
    assert result.exit_code == 1
    assert f"refused: wst:FailedAuthentication: {FailedAuthentication.reason}\n" in result.output
    assert "the signing certificate is not registered" in _reason_line(result.output)
    assert "auth-failed, wst:FailedAuthentication" in _reason_line(result.output)


def test_sha1_from_a_client_without_allow_sha1_names_the_algorithm(setup: Setup) -> None:
    result = setup.test("svc", setup.live.sts_url, "--algorithm", "rsa-sha1")
    assert result.exit_code == 1
    assert "refused: wsse:UnsupportedAlgorithm: " in result.output
    reason = _reason_line(result.output)
    assert "client svc" in reason and "http://www.w3.org/2000/09/xmldsig#rsa-sha1" in reason
    assert reason.endswith("(client svc is not registered with --allow-sha1)")  # the policy, not a broken signature
    record = setup.record(_message_id(result.output))
    assert record.event == "auth-failed" and record.outcome == "wsse:UnsupportedAlgorithm"


def test_a_policy_refusal_is_told_apart_from_a_client_problem(setup: Setup) -> None:
    result = setup.test("svc", setup.live.base_url, "--applies-to", "https://unknown.example/")
    assert result.exit_code == 1
    assert f"refused: wst:InvalidScope: {InvalidScope.reason}: https://unknown.example/" in result.output
    assert "issue, wst:InvalidScope): no relying party for 'https://unknown.example/'" in _reason_line(result.output)


def test_a_tampered_body_fails_generically_and_the_audit_names_the_reference(setup: Setup) -> None:
    key, cert = _load(setup.files, "svc")
    probe = probe_core.build_probe(setup.live.sts_url, key, cert, applies_to="https://service-a.example/",
                                   soap=SoapVersion.SOAP11, version=TrustVersion.WST13)
    tampered = probe.body.replace(b"https://service-a.example/</", b"https://service-b.example/</")
    assert tampered != probe.body
    outcome = probe_core.send_probe(probe, body=tampered)
    assert (outcome.fault_code, outcome.fault_reason) == ("wsse:FailedCheck", FailedCheck.reason)
    record = setup.record(probe.message_id)
    body_id = etree.fromstring(probe.body).find("{*}Body").get(  # type: ignore[union-attr]
        "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id")
    reason = str(record.detail["reason"])
    assert f"#{body_id}" in reason and "digest" in reason and "client svc" in reason, reason
    assert record.detail["remote"] == "127.0.0.1"


def test_without_a_local_record_it_says_so(setup: Setup, tmp_path: Path) -> None:
    elsewhere = setup.test("stranger", setup.live.base_url, home=tmp_path / "nowhere")
    assert elsewhere.exit_code == 1 and "refused: wst:FailedAuthentication" in elsewhere.output
    assert f"no local audit record: {tmp_path / 'nowhere'} is not an initialised STS home" in elsewhere.output
    other = init_home_with(tmp_path / "other")
    result = setup.test("stranger", setup.live.base_url, home=other)
    assert f"no local audit record of this request in {other}" in result.output
    assert _message_id(result.output) in result.output.splitlines()[-1]  # what to look up on the STS host


def test_no_sts_there_exits_1(setup: Setup) -> None:
    result = setup.test("svc", "http://127.0.0.1:9/")
    assert result.exit_code == 1 and "error: cannot reach the STS at http://127.0.0.1:9/services/sts" in result.output
    result = setup.test("svc", f"{setup.live.base_url}/healthz")
    assert result.exit_code == 1 and f"error: HTTP 405 from {setup.live.base_url}/healthz is not a SOAP reply" in \
        result.output


def test_a_bad_password_is_audited_with_its_reason_and_never_the_password(setup: Setup) -> None:
    root = rst_root(SoapVersion.SOAP12, applies_to="https://service-a.example/", username=(DEMO_USER, "not-it"))
    message_id = root.findtext(".//{http://www.w3.org/2005/08/addressing}MessageID")
    assert message_id
    reply = requests.post(setup.live.sts_url, data=etree.tostring(root), timeout=30,
                          headers={"Content-Type": SoapVersion.SOAP12.content_type})
    fault = parse_fault(etree.fromstring(reply.content).find("{*}Body/{*}Fault"))  # type: ignore[arg-type]
    assert fault.fault_reason == FailedAuthentication.reason
    record = setup.record(message_id)
    assert record.actor == DEMO_USER and record.detail["reason"] == f"bad credentials for {DEMO_USER!r}"
    assert "not-it" not in str(record.detail) and DEMO_PASSWORD not in str(record.detail)


def test_sts_audit_leads_with_the_reason(setup: Setup) -> None:
    refused = setup.test("stranger", setup.live.base_url)
    message_id = _message_id(refused.output)
    listing = setup.sts("audit", "--outcome", "fault", "--event", "auth-failed").output
    line = next(line for line in listing.splitlines() if message_id in line)
    assert "wst:FailedAuthentication" in line
    assert line.split("  ")[-1].startswith("reason=the signing certificate is not registered remote=127.0.0.1")


def _load(files: Path, name: str) -> tuple[PrivateKey, x509.Certificate]:
    return load_private_key((files / f"{name}.key").read_bytes()), load_certificate(
        (files / f"{name}.crt").read_bytes())


def test_the_log_line_names_the_reason_and_the_message(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sts.web.pipeline"):
        result = setup.test("stranger", setup.live.base_url)
    message_id = _message_id(result.output)
    lines = [r.getMessage() for r in caplog.records if r.name == "sts.web.pipeline" and message_id in r.getMessage()]
    assert lines == [f"fault FailedAuthentication: the signing certificate is not registered (message {message_id})"]
