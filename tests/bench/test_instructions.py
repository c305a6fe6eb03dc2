"""bench/instructions.py counts the instructions of real Issue requests under callgrind, says what to install when
valgrind is missing, and refuses a --root that is not a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.instructions import ROOT, count


def test_an_issue_request_is_counted_in_instructions() -> None:
    counted = count(ROOT, "ecdsa", requests=3)
    # An Issue is millions of instructions (parse, sign, encrypt, SQLite); far fewer would mean nothing ran.
    assert 500_000 < counted.per_request < 100_000_000
    assert "instructions per Issue request" in counted.render()


def _run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "bench.instructions", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)


def test_without_valgrind_it_says_what_to_install(tmp_path: Path) -> None:
    result = _run("--requests", "1", path=str(tmp_path))
    assert result.returncode == 2
    assert "make deps" in result.stderr and "valgrind" in result.stderr


def test_a_root_that_is_not_a_checkout_is_refused(tmp_path: Path) -> None:
    result = _run("--root", str(tmp_path))
    assert result.returncode == 2
    assert "not a checkout" in result.stderr


def test_a_request_count_below_one_is_refused() -> None:
    result = _run("--requests", "0")
    assert result.returncode == 2 and "at least 1" in result.stderr


@pytest.mark.parametrize("requests", ["x", "1.5"])
def test_a_request_count_that_is_not_a_number_is_refused(requests: str) -> None:
    assert _run("--requests", requests).returncode == 2


def test_served_requests_are_counted_with_their_group_commits() -> None:
    counted = count(ROOT, "ecdsa", requests=4, batch=2)
    assert 500_000 < counted.per_request < 100_000_000
    assert "served, 2 a commit" in counted.render()


@pytest.mark.parametrize("args", [["--batch", "4"], ["--served", "--batch", "0"]], ids=["without-served", "zero"])
def test_a_batch_needs_served_and_at_least_one(args: list[str]) -> None:
    result = _run("--requests", "1", *args)
    assert result.returncode == 2 and "--batch goes with --served" in result.stderr
