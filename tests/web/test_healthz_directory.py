"""`GET /healthz` with a directory configured: red when the directory does not answer (issue 15: "database or
directory down or slow: ... health turns red"); `?checks=database` leaves the directory out."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from live import init_home_with, running
from servers.slapd import Slapd


def test_health_turns_red_while_the_directory_does_not_answer(tmp_path: Path) -> None:
    home = init_home_with(tmp_path / "home")
    with Slapd.started(tmp_path) as directory:
        with running(home, **directory.settings(ldap_timeout_seconds=1)) as live:
            healthy = httpx.get(f"{live.base_url}/healthz", timeout=10)
            assert (healthy.status_code, healthy.json()) == (200, {"status": "ok"})
            with directory.paused():  # accepts connections, never answers
                started = time.monotonic()
                red = httpx.get(f"{live.base_url}/healthz", timeout=10)
                waited = time.monotonic() - started
                database_only = httpx.get(f"{live.base_url}/healthz?checks=database", timeout=10)
            assert red.status_code == 503 and json.loads(red.text)["status"] == "unavailable"
            assert json.loads(red.text)["reason"] in ("directory unavailable", "directory did not answer in time")
            assert waited < 5, f"{waited:.1f} s with ldap_timeout_seconds = 1"
            assert (database_only.status_code, database_only.json()) == (200, {"status": "ok"})
            assert httpx.get(f"{live.base_url}/healthz", timeout=10).status_code == 200  # answering again
