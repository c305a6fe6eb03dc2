"""The farm scenario of `make bench` (bench/farm.py, issue 15): 1 and 2 `sts serve` nodes on one throwaway
PostgreSQL, the load spread over the nodes, the CPU of the nodes and of PostgreSQL counted. Run for a moment (the
smoke timing), asserting nothing about speed. PostgreSQL 15 must be installed (`make deps`), or this fails saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import targets
from bench.run import SMOKE, Bench


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    run = Bench(SMOKE, tmp_path_factory.mktemp("farm"), soak_minutes=0.0)
    run.farm()
    return run


def test_both_farms_answered_without_errors(bench: Bench) -> None:
    assert bench.run.failures == []
    for nodes in (1, 2):
        row = bench.run.find(f"farm/saml20-enc/digest/rsa/n{nodes}/c16")
        assert row is not None, [m.scenario for m in bench.run.measurements]
        assert row.errors == 0 and row.ok > 0, (row.error_classes, row.error_samples)
        assert row.workers == nodes and len(row.worker_peak_rss_mib) == nodes
        assert row.limit.startswith("RSA-2048") and row.limit_rate > 0


def test_every_node_and_postgresql_did_work_in_the_window(bench: Bench) -> None:
    row = bench.run.find("farm/saml20-enc/digest/rsa/n2/c16")
    assert row is not None
    parts = row.extra["server_cpu_seconds"]
    assert isinstance(parts, dict) and set(parts) == {"node 1", "node 2", "PostgreSQL"}
    assert all(seconds > 0 for seconds in parts.values()), parts
    assert row.cpu_rate == pytest.approx(row.ok / sum(parts.values()))


def test_the_farm_is_set_beside_the_single_node_figure(bench: Bench) -> None:
    figures = [t for t in targets.compute(bench.run) if "PostgreSQL vs 1 node on SQLite" in t.name]
    assert len(figures) == 2
    # The smoke run measured no single SQLite node here: the figure says so instead of inventing a ratio.
    assert all(t.value is None and "no single-node SQLite row" in t.detail for t in figures)


def test_the_home_keeps_its_state_in_postgresql(bench: Bench) -> None:
    config = (bench.directory / "farm" / "sts.toml").read_text()
    assert 'database_url = "postgresql+psycopg://' in config
    assert not (bench.directory / "farm" / "sts.db").exists()  # no SQLite file made beside it
    assert (bench.directory / "farm" / "sts.toml").stat().st_mode & 0o077 == 0


def test_the_launcher_runs_the_way_make_bench_runs_it() -> None:
    """`make bench` runs bench/run.py without tests/ on sys.path and imports only the servers package from it: the
    launcher must start and stop a server without the test helpers (here they are importable, so only a separate
    process can tell)."""
    root = Path(__file__).resolve().parents[2]
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    script = ("from bench.farm import postgres\n"
              "with postgres() as server:\n"
              "    print(server.url.startswith('postgresql'))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]
