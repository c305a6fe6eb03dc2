"""`explain_issuance` and `sts explain`: the dry run tells what Issue would do, and records nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from sts.cli.main import main
from sts.config import load_settings
from sts.service.explain import REQUESTED, REQUIRED, explain_issuance
from sts.home import CLAIMS, DEMO_RP_ENDPOINT, init_home
from sts.uris import TokenType
from sts.runtime import Runtime, build_runtime

GIVEN = f"{CLAIMS}/givenname"
SURNAME = f"{CLAIMS}/surname"


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    init_home(tmp_path)
    return build_runtime(load_settings(tmp_path))


def test_claim_sources_lifetime_cap_and_algorithms(runtime: Runtime) -> None:
    rps = runtime.stores.relying_parties
    party = rps.get(DEMO_RP_ENDPOINT)
    assert party is not None
    rps.update(replace(party, required_claims=(SURNAME,), permitted_claims=(GIVEN, SURNAME),
                       max_lifetime=timedelta(hours=1), additional_audiences=("urn:extra:aud",)))
    answer = explain_issuance(runtime, user="alice", rp=DEMO_RP_ENDPOINT,
                              claims=[(GIVEN, False), ("urn:not:permitted", True), (f"{CLAIMS}/upn", True)],
                              lifetime_seconds=86400)
    assert answer.ok and answer.fault is None
    assert answer.subject == "alice"
    assert answer.token_type == TokenType.SAML20.value
    assert answer.audience == [DEMO_RP_ENDPOINT, "urn:extra:aud"]
    assert [(c["uri"], c["values"], c["source"]) for c in answer.claims] == [
        (SURNAME, ["Liddell"], REQUIRED), (GIVEN, ["Alice"], REQUESTED)]
    assert {o["uri"] for o in answer.omitted} == {"urn:not:permitted", f"{CLAIMS}/upn"}
    assert "does not permit" in next(o["why"] for o in answer.omitted if o["uri"] == "urn:not:permitted")
    assert answer.lifetime is not None and answer.lifetime["seconds"] == 3600 and answer.lifetime["capped"]
    assert answer.algorithms is not None and answer.algorithms["encrypted"] is True
    assert answer.algorithms["signature"].endswith("rsa-sha256")
    json.dumps(answer.to_dict())


def test_refusals_carry_the_fault_code_and_public_reason(runtime: Runtime) -> None:
    missing = explain_issuance(runtime, user="alice", rp=DEMO_RP_ENDPOINT, claims=[("urn:nope", False)])
    assert not missing.ok and missing.fault == {
        "code": "wst:RequestFailed", "reason": "The specified request failed: urn:nope"}
    unknown_rp = explain_issuance(runtime, user="alice", rp="https://nowhere.example/")
    assert unknown_rp.fault is not None and unknown_rp.fault["code"] == "wst:InvalidScope"
    party = runtime.stores.relying_parties.get(DEMO_RP_ENDPOINT)
    assert party is not None
    runtime.stores.relying_parties.update(replace(party, allowed_token_types=(TokenType.SAML20,)))
    refused = explain_issuance(runtime, user="alice", rp=DEMO_RP_ENDPOINT, token_type="saml11")
    assert refused.fault is not None and refused.fault["code"] == "wst:BadRequest"
    assert refused.fault["reason"].endswith("TokenType")


def test_nothing_is_signed_or_recorded(runtime: Runtime) -> None:
    answer = explain_issuance(runtime, user="alice", rp=DEMO_RP_ENDPOINT, token_type="saml11")
    assert answer.ok and answer.token_type == TokenType.SAML11.value
    with runtime.stores.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM tokens").scalar() == 0
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM audit_log").scalar() == 0


def test_cli_explain(tmp_path: Path) -> None:
    init_home(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["--home", str(tmp_path), "explain", "--user", "alice", "--rp", DEMO_RP_ENDPOINT,
                                  "--claim", GIVEN, "--claim", "urn:maybe?", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] and data["claims"][0]["uri"] == GIVEN and data["omitted"][0]["uri"] == "urn:maybe"
    text = runner.invoke(main, ["--home", str(tmp_path), "explain", "--user", "alice", "--rp", "https://x.example/"])
    assert text.exit_code == 1 and "wst:InvalidScope" in text.output
