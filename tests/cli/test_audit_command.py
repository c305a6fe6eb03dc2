"""`sts user`, `sts admin`, `sts explain` and `sts audit` as adapters: options in, the core's answer out."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sts.cli.main import main
from sts.home import CLAIMS, DEMO_RP_ENDPOINT, init_home

GIVEN = f"{CLAIMS}/givenname"
STRONG = "a long enough password"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-home")
    init_home(path)
    return path


def run(home: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], input=input)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def test_user_add_with_short_names_reaches_the_audit_log_with_its_actor(home: Path) -> None:
    added = run(home, "user", "add", "bob", "--password", "pw", "--claim", "givenname=Bob")
    assert added.exit_code == 0, added.output
    assert f"  {GIVEN} = Bob" in run(home, "user", "list").output
    entries = json.loads(run(home, "audit", "--json", "--action", "user.add").output)
    assert entries[0]["actor"] == cli_actor() and entries[0]["subject"] == "bob"
    assert entries[0]["event"] == entries[0]["action"] == "user.add"
    assert entries[0]["detail"]["after"]["claims"] == {GIVEN: ["Bob"]}
    assert set(entries[0]) == {"at", "event", "action", "actor", "outcome", "subject", "detail"}


def test_claim_names_unknown_refused_and_unknown_uri_warned(home: Path) -> None:
    refused = run(home, "user", "add", "carol", "--password", "pw", "--claim", "bogusclaimname=x")
    assert refused.exit_code == 1 and "unknown claim name 'bogusclaimname'" in refused.output
    assert "emailaddress" in refused.output and "Traceback" not in refused.output
    warned = run(home, "user", "add", "carol", "--password", "pw", "--claim", "urn:example:age=42")
    assert warned.exit_code == 0 and "warning: claim URI urn:example:age is not in the claim dictionary" in \
        warned.output


def test_admin_password_policy_on_every_path(home: Path) -> None:
    short = run(home, "admin", "add", "eve", "--password", "short")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    same = run(home, "user", "add", "mallory-the-admin", "--admin", "--password", "Mallory-The-Admin")
    assert same.exit_code == 1 and "may not be the user name" in same.output
    assert run(home, "admin", "add", "eve", "--password-stdin", input=f"{STRONG}\n").exit_code == 0
    run(home, "user", "add", "frank", "--password", "pw")
    assert "at least 12" in run(home, "admin", "promote", "frank", "--password", "pw").output
    assert run(home, "admin", "promote", "frank", "--password", STRONG).exit_code == 0
    assert "frank (admin)" in run(home, "user", "list").output
    assert run(home, "admin", "remove", "frank").exit_code == 0
    refused = json.loads(run(home, "audit", "--json", "--outcome", "refused", "--action", "admin.*").output)
    assert {e["subject"] for e in refused} >= {"eve", "mallory-the-admin", "frank"}


def test_update_password_and_remove(home: Path) -> None:
    run(home, "user", "add", "gina", "--password", "pw")
    assert run(home, "user", "update", "gina", "--claim", "surname=Gee", "--disable").exit_code == 0
    assert "gina (disabled)" in run(home, "user", "list").output
    assert run(home, "user", "update", "gina").exit_code == 2
    assert run(home, "user", "password", "gina", "--password", "new").exit_code == 0
    assert run(home, "user", "remove", "gina").exit_code == 0
    missing = run(home, "user", "remove", "gina")
    assert missing.exit_code == 1 and "no user named gina" in missing.output
    lines = run(home, "audit", "--actor", cli_actor(), "--action", "user.*", "--limit", "4").output.splitlines()
    assert [line.split()[1] for line in lines] == ["user.remove", "user.remove", "user.password", "user.update"]
    assert "disabled: false → true" in run(home, "audit", "--action", "user.update").output


def test_audit_filters_refuse_bad_times(home: Path) -> None:
    bad = run(home, "audit", "--since", "yesterday")
    assert bad.exit_code == 1 and "ISO 8601" in bad.output
    assert json.loads(run(home, "audit", "--json", "--since", "2999-01-01").output) == []


def test_explain_speaks_admin_language(home: Path) -> None:
    ok = run(home, "explain", "--user", "alice", "--rp", DEMO_RP_ENDPOINT, "--claim", "givenname", "--claim",
             "upn?", "--json")
    data = json.loads(ok.output)
    assert ok.exit_code == 0 and data["claims"][0]["uri"] == GIVEN and data["omitted"][0]["uri"].endswith("/upn")
    refused = run(home, "explain", "--user", "alice", "--rp", DEMO_RP_ENDPOINT, "--claim", "upn")
    assert refused.exit_code == 1 and "refused: alice lacks the requested claim upn" in refused.output
    assert "wst:RequestFailed" in refused.output
    ghost = run(home, "explain", "--user", "ghost", "--rp", DEMO_RP_ENDPOINT)
    assert "refused: no user named ghost" in ghost.output
    unknown = run(home, "explain", "--user", "alice", "--rp", DEMO_RP_ENDPOINT, "--claim", "bogusclaimname")
    assert unknown.exit_code == 1 and "unknown claim name" in unknown.output
