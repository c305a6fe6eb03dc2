"""`python -m interop` end to end against our STS: exit codes, progress and the written report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "fixtures" / "recorded"
TEMPLATE = "adal-python/adal-wstrust13-soap12-rst-issue-usernametoken-bearer.TEMPLATE"
PAIR = ("adal-python/adfs-wstrust13-soap12-rstrc-issue-saml11-bearer", TEMPLATE)


def _copy(root: Path, *stems: str) -> None:
    for stem in stems:
        folder = root / stem.split("/")[0]
        folder.mkdir(parents=True, exist_ok=True)
        for suffix in (".xml", ".toml"):
            shutil.copy(RECORDED / f"{stem}{suffix}", folder)
        shutil.copy(RECORDED / stem.split("/")[0] / "PROVENANCE.md", folder)


def _interop(*args: str, ecdsa: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interop", *([] if ecdsa else ["--no-ecdsa"]), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


def test_a_passing_run_prints_progress_and_writes_both_reports(tmp_path: Path) -> None:
    _copy(tmp_path / "fx", *PAIR)
    done = _interop("--skip-peers", "--fixtures", str(tmp_path / "fx"), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    # name order: the template (adal-wstrust13...) comes before the AD FS answer (adfs-wstrust13...)
    assert f"[1/2] {TEMPLATE}.xml: xsd (request) pass, replay pass, xsd (answer) pass" in done.stdout
    assert f"[2/2] {PAIR[0]}.xml: our client pass, sts token show pass, shape pass" in done.stdout
    markdown = (tmp_path / "out" / "report.md").read_text()
    page = (tmp_path / "out" / "report.html").read_text()
    assert markdown.startswith("# Interoperability report: passed")
    assert "## Why cells are not passes\n\nNone." in markdown
    assert "<h1>Interoperability report: <span class=\"ok\">passed</span></h1>" in page
    assert "http" not in page.split("<body>")[0].replace("http-equiv", "")  # self-contained: no external links


def test_an_unmet_expectation_fails_the_run_and_is_explained(tmp_path: Path) -> None:
    _copy(tmp_path / "fx", TEMPLATE)
    sidecar = tmp_path / "fx" / f"{TEMPLATE}.toml"
    sidecar.write_text(sidecar.read_text().replace('token_type = "saml11"', 'token_type = "saml20"'))
    done = _interop("--skip-peers", "--fixtures", str(tmp_path / "fx"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    assert "replay fail" in done.stdout
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "TokenType 'urn:oasis:names:tc:SAML:1.0:assertion', expected saml20" in markdown


def test_a_broken_sidecar_stops_the_run_with_its_name(tmp_path: Path) -> None:
    _copy(tmp_path / "fx", TEMPLATE)
    sidecar = tmp_path / "fx" / f"{TEMPLATE}.toml"
    sidecar.write_text(sidecar.read_text().replace("[expect]", "[expect]\nshiny = true"))
    done = _interop("--fixtures", str(tmp_path / "fx"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert f"{TEMPLATE}.toml: [expect]: unknown key 'shiny'" in done.stderr
    assert "Traceback" not in done.stderr


def test_another_sts_needs_its_certificate_user_and_relying_party(tmp_path: Path) -> None:
    done = _interop("--sts-url", "https://sts.invalid", "--fixtures", str(RECORDED))
    assert done.returncode == 2
    assert "--sts-url needs --sts-cert, --user, --applies-to" in done.stderr


def test_against_another_sts_given_by_url(live_sts, sts_home: Path, demo, tmp_path: Path) -> None:
    """Our session STS stands in for "another STS": one relying party, the cases it cannot serve are n/a."""
    from sts.config import load_settings

    _copy(tmp_path / "fx", *PAIR)
    env = {"STS_PASSWORD": demo["password"]}
    done = subprocess.run(
        [sys.executable, "-m", "interop", "--sts-url", live_sts.base_url,
         "--sts-cert", str(load_settings(sts_home).signing_cert_path), "--user", demo["user"],
         "--applies-to", demo["rp"], "--profile", "saml20", "--rp-key", str(sts_home / "demo" / "rp.key"),
         "--fixtures", str(tmp_path / "fx"), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, **env})
    assert done.returncode == 0, done.stdout + done.stderr
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "(another STS)" in markdown
    # the relying party given is SAML 2.0 encrypted: its token cases run, the SAML 1.1 ones cannot
    assert "| `saml20-wst1.3` | SAML 2.0, encrypted aes256-gcm + rsa-oaep-mgf1p" in markdown
    assert "no saml11-plain relying party" in markdown
    assert "the target has no relying party of profile saml11-plain" in markdown
    assert ", 0 FAIL," in done.stdout
    assert "`saml20-ecdsa-wst1.3`: **n/a**: ours only: the ECDSA cases come from a second STS" in markdown
