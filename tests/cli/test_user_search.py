"""`sts user search TEXT`: directory users, read-only, with the claims the mapping gives them (a real slapd)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from servers.slapd import PASSWORD_ENV, READER_PASSWORD, Slapd
from sts.config import environment_for
from sts.home import init_home


def _sts(home: Path, env: dict[str, str], *args: str, drop: str = "") -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in {**os.environ, **env}.items() if name != drop}
    return subprocess.run([sys.executable, "-m", "sts", "--home", str(home), *args], capture_output=True, text=True,
                          env=environment, timeout=60, check=False)


def _environment(directory: Slapd) -> dict[str, str]:
    return environment_for(directory.settings())


def test_search_lists_directory_users_with_their_claims_and_list_stays_local(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home)
    with Slapd.started(tmp_path) as directory:
        env = {**_environment(directory), PASSWORD_ENV: READER_PASSWORD}
        found = _sts(home, env, "user", "search", "carol")
        assert found.returncode == 0, found.stderr
        assert "carol (directory)" in found.stdout and "Carol" in found.stdout
        assert "carol" not in _sts(home, env, "user", "list").stdout  # the local users only
        injected = _sts(home, env, "user", "search", "*)(uid=*")
        assert injected.returncode == 0 and "(directory)" not in injected.stdout
        missing = _sts(home, env, "user", "search", "carol", drop=PASSWORD_ENV)
        assert missing.returncode == 1 and "Traceback" not in missing.stderr
        assert missing.stderr.startswith("Error: ") and PASSWORD_ENV in missing.stderr


def test_search_without_a_directory_says_which_setting_is_missing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home)
    result = _sts(home, {}, "user", "search", "carol")
    assert result.returncode == 1 and "user_store" in result.stderr and "Traceback" not in result.stderr
