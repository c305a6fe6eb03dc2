"""`make bench`'s smoke mode (`bench/run.py --smoke`, what `make bench-smoke` runs): every scenario kind runs for a
moment against real `sts serve` processes and the report is written, with zero errors. Nothing about speed is
asserted; the peers (npm saml, pysaml2) must be installed (`make interop-deps`), or the run fails saying so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
ISSUE_RSA = "issue/saml20-enc/digest/rsa"
SCENARIOS = [
    "reviewer/round1", "reviewer/round2", "reviewer/round3", "reviewer/median",
    *(f"{ISSUE_RSA}/w{workers}/c{clients}" for workers in (1, 2) for clients in (1, 16, 64)),
    *(f"issue/{token}/digest/rsa/w1/c16" for token in ("saml20-signed", "saml11-enc", "saml11-signed")),
    "issue/saml20-enc/x509/rsa/w1/c16",
    "validate/saml20-enc/digest/rsa/w1/c16",
    "issue/saml20-enc/text-cold/rsa/w1/c4",
    *(f"issue/claims-{count}/digest/rsa/w1/c16" for count in (1, 10, 100)),
    "soak/saml20-enc/digest/rsa/w1/c16",
    *(f"issue/saml20-enc/digest/ecdsa/w1/c{clients}" for clients in (1, 16, 64)),
    "issue/saml20-signed/digest/ecdsa/w1/c16",
    *(f"floor/saml20-enc/digest/{signing}/w1/c16" for signing in ("rsa", "ecdsa")),
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
                          cwd=out, capture_output=True, text=True, timeout=900, check=False)
    return done, out


@pytest.fixture(scope="module")
def document(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> dict[str, Any]:
    done, out = smoke
    assert (out / "bench.json").exists(), f"no bench.json; stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    loaded: dict[str, Any] = json.loads((out / "bench.json").read_text())
    return loaded


def test_the_smoke_run_exits_0(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, _ = smoke
    # A peer that is not installed fails the run with a FAILURE line naming what to install (make interop-deps).
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-3000:]}"


def test_every_scenario_ran_with_answers_and_no_errors(document: dict[str, Any]) -> None:
    rows = {row["scenario"]: row for row in document["measurements"]}
    expected = list(SCENARIOS)
    if "password_cache_seconds" in (ROOT / "sts" / "config.py").read_text():
        expected.append("issue/saml20-enc/text-warm/rsa/w1/c4")
    missing = [scenario for scenario in expected if scenario not in rows]
    assert not missing, f"scenarios missing from bench.json: {missing}"
    assert any(scenario.startswith("latency/saml20-enc/digest/rsa/w1/rate") for scenario in rows)
    for row in document["measurements"]:
        assert row["errors"] == 0, (row["name"], row["error_classes"], row["error_samples"])
        assert row["ok"] > 0, f"{row['name']}: no successful answer in the window"
        assert row["cpu_rate"] > 0 and row["limit_rate"] > 0, row["name"]
    assert document["errors"] == 0 and document["failures"] == []


def test_the_limits_the_verifier_and_the_peers_were_measured(document: dict[str, Any]) -> None:
    algorithms = {sample["algorithm"].split()[0] for sample in document["limits"]}
    assert algorithms == {"RSA-2048", "ECDSA"}
    verifier = {rate["name"]: rate for rate in document["verifier"]}
    assert set(verifier) == {"SAML 2.0 signed only", "SAML 2.0 signed+encrypted (AES-256-GCM, RSA-OAEP)"}
    assert all(rate["verified"] > 0 and rate["errors"] == 0 for rate in verifier.values())
    peers = [peer["name"] for peer in document["peers"]]
    assert sum(name.startswith("auth0 saml") for name in peers) == 2 and "pysaml2: SAML 2.0 signed" in peers
    assert all(peer["count"] > 0 for peer in document["peers"])


def test_the_targets_name_the_reviewer_check(document: dict[str, Any]) -> None:
    names = [target["name"] for target in document["targets"]]
    assert "reviewer check: 8 clients, 3 rounds, median" in names
    reviewer = next(t for t in document["targets"] if t["name"].startswith("reviewer check"))
    assert reviewer["value"] is not None and "rounds" in reviewer["detail"]


def test_the_headline_rows_are_compared_with_the_floor(document: dict[str, Any]) -> None:
    rows = {row["scenario"]: row for row in document["measurements"]}
    for signing in ("RSA", "ECDSA"):
        floor = rows[f"floor/saml20-enc/digest/{signing.lower()}/w1/c16"]
        assert floor["name"] == f"floor: bare pipeline, {signing}"
        assert floor["limit"].startswith("RSA-2048" if signing == "RSA" else "ECDSA")
        versus = next(t for t in document["targets"] if t["name"].startswith(f"STS vs floor, {signing}:"))
        sts = rows[f"issue/saml20-enc/digest/{signing.lower()}/w1/c16"]
        assert versus["value"] == pytest.approx(sts["cpu_rate"] / floor["cpu_rate"])


def test_markdown_and_chart_are_written(smoke: tuple[subprocess.CompletedProcess[str], Path],
                                        document: dict[str, Any]) -> None:
    done, out = smoke
    markdown = (out / "bench.md").read_text()
    for row in document["measurements"]:
        assert row["name"].replace("|", "\\|") in markdown
    assert "reviewer check: 8 clients, 3 rounds, median" in markdown and "throughput.svg" in markdown
    svg = etree.fromstring((out / "throughput.svg").read_bytes())
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 6  # RSA 1 worker, RSA 2 workers, ECDSA 1 worker: per wall second and per server CPU-s
    assert "reviewer check: 8 clients, 3 rounds, median" in done.stdout  # the table on stdout
