"""`sts keys rollover` and `sts cert` as an administrator runs them: the minimum lead time and its overrides."""

from __future__ import annotations

import getpass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sts.cli.main import main
from sts.config import load_settings
from sts.home import init_home
from sts.runtime import open_stores
from sts.store.audit import AuditTrail
from sts.tokens.crypto.keys import fingerprint_sha256, load_certificate
from sts.xmltime import utcnow


@pytest.fixture
def home(tmp_path: Path) -> Path:
    init_home(tmp_path, demo=False)
    return tmp_path


def _sts(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args])


def _rollover_audit(home: Path) -> list[tuple[str | None, str | None, dict[str, object]]]:
    stores = open_stores(load_settings(home))
    try:
        return [(r.actor, r.outcome, r.detail) for r in AuditTrail(stores.engine).search(event="keys.rollover")]
    finally:
        stores.close()


def test_a_rollover_at_yesterday_is_refused_and_the_certificate_stays(home: Path) -> None:
    before = _sts(home, "cert").output
    yesterday = (utcnow() - timedelta(days=1)).replace(microsecond=0, tzinfo=None).isoformat()
    result = _sts(home, "keys", "rollover", "--at", yesterday)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the switch time {yesterday}+00:00 is not in the future")
    assert "Nothing was scheduled" in result.output and "--allow-short-lead" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _sts(home, "cert").output == before
    listing = _sts(home, "keys", "list").output.splitlines()
    assert listing[0] == "sts-signing  active" and len(listing) == 3  # the only key, nothing scheduled
    ((actor, outcome, _),) = _rollover_audit(home)
    assert (actor, outcome) == (f"cli:{getpass.getuser()}", "refused")


def test_a_short_lead_is_refused_unless_allowed(home: Path) -> None:
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    refused = _sts(home, "keys", "rollover", "--at", soon)
    assert refused.exit_code == 1 and "sooner than the minimum lead time of 24 h" in refused.output
    allowed = _sts(home, "keys", "rollover", "--at", soon, "--allow-short-lead")
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.startswith("scheduled signing key ") and "warning" not in allowed.stdout
    assert allowed.stderr.startswith("warning: the switch time") and "until they refresh" in allowed.stderr
    ok = [detail for _, outcome, detail in _rollover_audit(home) if outcome == "ok"]
    assert [d["after"]["override"] for d in ok] == ["allow-short-lead"]  # type: ignore[index]


def test_now_switches_and_cert_prints_the_new_key(home: Path) -> None:
    result = _sts(home, "keys", "rollover", "--now", "--overlap-days", "1")
    assert result.exit_code == 0, result.output
    key_id = result.stdout.split()[3]
    listing = _sts(home, "keys", "list").output
    assert f"{key_id}  active" in listing and "sts-signing  retired-published" in listing
    new = load_certificate(_sts(home, "cert").output.encode())
    assert load_certificate(load_settings(home).signing_cert_path.read_bytes()) == new  # the file follows
    ((actor, outcome, detail),) = _rollover_audit(home)
    assert (actor, outcome) == (f"cli:{getpass.getuser()}", "ok")
    assert detail["after"]["fingerprint"] == fingerprint_sha256(new)  # type: ignore[index]
    assert detail["after"]["override"] == "now"  # type: ignore[index]


def test_the_default_switch_and_the_usage_errors(home: Path) -> None:
    result = _sts(home, "keys", "rollover")
    assert result.exit_code == 0, result.output and result.stderr == ""
    assert "next" in _sts(home, "keys", "list").output
    both = _sts(home, "keys", "rollover", "--now", "--at", utcnow().isoformat())
    assert both.exit_code == 2 and "--now and --at exclude each other" in both.output


def test_a_test_setting_shortens_the_lead(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STS_ROLLOVER_MIN_LEAD_SECONDS", "60")
    result = _sts(home, "keys", "rollover", "--at", (utcnow() + timedelta(minutes=2)).isoformat())
    assert result.exit_code == 0, result.output
