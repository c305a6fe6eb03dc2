"""`sts check-config` on the command line: findings printed with their fix, exit status 1 when there is one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from live import free_port, wait_healthy
from sts.cli.main import main
from sts.home import init_home


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    init_home(path)
    return path


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), "check-config", *args])


def test_a_fresh_home_passes(home: Path) -> None:
    result = run(home)
    assert result.exit_code == 0, result.output
    assert result.output == f"no unsafe setting found in {home}\n"


def test_a_world_readable_key_fails_with_the_fix(home: Path) -> None:
    key = home / "keys" / "sts-encryption.key"
    key.chmod(0o644)
    result = run(home)
    assert result.exit_code == 1
    assert f"UNSAFE  [keys] {key} is readable by every user (mode 0644)" in result.output
    assert f"fix: chmod 600 {key}" in result.output
    assert result.output.endswith(f"1 unsafe setting(s) found in {home}\n")


def test_the_bind_and_json(home: Path, tmp_path: Path) -> None:
    result = run(home, "--host", "0.0.0.0", "--json")
    assert result.exit_code == 1
    assert [f["area"] for f in json.loads(result.output)] == ["transport"]
    cert = tmp_path / "tls.crt"
    cert.write_text("")
    assert run(home, "--host", "0.0.0.0", "--ssl-certfile", str(cert)).exit_code == 0


def test_an_uninitialised_home_is_a_one_line_error(tmp_path: Path) -> None:
    result = run(tmp_path / "nothing")
    assert result.exit_code == 1
    assert "is not initialised: run `sts --home" in result.output


def test_serve_refuses_a_world_readable_key_unless_told(home: Path) -> None:
    key = home / "keys" / "sts-signing.key"
    key.chmod(0o644)
    port = free_port()
    command = [sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port)]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"Error: refusing to start: {key} is readable by every user (mode 0644) "
                                     f"(fix: chmod 600 {key}); or start with --allow-insecure-key-permissions")
    process = subprocess.Popen([*command, "--allow-insecure-key-permissions"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert f"warning: {key} is readable by every user" in err
