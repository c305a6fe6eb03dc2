"""A short `make soak` in `make test`: 64 concurrent clients against `sts serve --workers 2`, zero errors.

The regression for "64 concurrent clients against sts serve --workers 2: 0 errors" (issue 12); the long run with
its figures is `make soak` (bench/soak.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from bench.soak import KINDS, new_home, report, run_clients, serving, stop_server

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_64_clients_against_two_workers_see_no_error(tmp_path: Path) -> None:
    home = new_home(tmp_path / "home")
    with serving(home, workers=2) as (base_url, process):
        journal = asyncio.run(run_clients(f"{base_url}/services/sts", clients=64, seconds=3))
        assert stop_server(process) == 0
    summary = report(journal, 3)
    assert journal.error_count == 0, summary
    # Every client got through at least one whole cycle: every kind of operation was exercised under load.
    assert all(len(journal.latencies[kind]) >= 64 for kind in KINDS), summary
    token_ids = journal.token_ids()
    assert len(token_ids) == len(set(token_ids)) == 2 * len(journal.issued), summary


def test_the_script_prints_its_figures_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SOAK), "--clients", "8", "--seconds", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("soak: 8 clients for 1 s against `sts serve --workers 2`")
    assert [line.split()[0] for line in lines[1:7]] == ["kind", *KINDS, "total"]
    assert "errors 0" in done.stdout and "SIGTERM: `sts serve` exited 0" in done.stdout
