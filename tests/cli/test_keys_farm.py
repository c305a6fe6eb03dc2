"""`sts keys import-to-database`, `sts keys new-kek`, and `sts keys list` / `sts cert` with key_source "database"."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sts.cli.main import main
from sts.home import init_home
from sts.tokens.crypto.keys import load_certificate

KEK_ENV = "STS_KEY_ENCRYPTION_KEY"


def _sts(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args])


def _set(home: Path, name: str, value: str) -> None:
    config = home / "sts.toml"
    config.write_text("\n".join(f'{name} = "{value}"' if line.startswith(f"{name} =") else line
                                for line in config.read_text().splitlines()) + "\n")


def test_new_kek_prints_32_random_bytes_in_base64(tmp_path: Path) -> None:
    first, second = _sts(tmp_path, "keys", "new-kek"), _sts(tmp_path, "keys", "new-kek")
    assert first.exit_code == 0 and len(base64.b64decode(first.output.strip(), validate=True)) == 32
    assert first.output != second.output


def test_import_without_a_kek_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEK_ENV, raising=False)
    init_home(tmp_path, demo=False)
    result = _sts(tmp_path, "keys", "import-to-database")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"set the environment variable {KEK_ENV}" in result.output and "openssl rand -base64 32" in result.output


def test_a_second_node_lists_and_prints_the_shared_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEK_ENV, _sts(tmp_path, "keys", "new-kek").output.strip())
    node_a, node_b = tmp_path / "a", tmp_path / "b"
    init_home(node_a, demo=False)
    init_home(node_b, demo=False)
    imported = _sts(node_a, "keys", "import-to-database")
    assert imported.exit_code == 0, imported.output
    assert 'now set key_source = "database"' in imported.output
    _set(node_b, "database_url", f"sqlite:///{node_a / 'sts.db'}")
    _set(node_b, "key_source", "database")
    listing = _sts(node_b, "keys", "list")
    assert listing.exit_code == 0, listing.output
    assert listing.output.startswith("source: database (sealed under the key-encryption key in $"
                                     f"{KEK_ENV})\nsts-signing  active")
    printed = _sts(node_b, "cert")
    assert printed.exit_code == 0, printed.output
    shared = load_certificate((node_a / "keys" / "sts-signing.crt").read_bytes())
    assert load_certificate(printed.output.encode()) == shared
    rolled = _sts(node_b, "keys", "rollover", "--at", "2099-01-01T00:00:00Z")
    assert rolled.exit_code == 0, rolled.output
    _set(node_a, "key_source", "database")
    assert "next" in _sts(node_a, "keys", "list").output  # scheduled on B, seen by A


def test_serve_refuses_to_start_without_the_farm_kek(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEK_ENV, _sts(tmp_path, "keys", "new-kek").output.strip())
    init_home(tmp_path / "a", demo=False)
    assert _sts(tmp_path / "a", "keys", "import-to-database").exit_code == 0
    _set(tmp_path / "a", "key_source", "database")
    for kek, expected in (("", f"set the environment variable {KEK_ENV}"),
                          (base64.b64encode(os.urandom(32)).decode(), "give this node the same KEK")):
        done = subprocess.run([sys.executable, "-m", "sts.cli.main", "--home", str(tmp_path / "a"), "serve",
                               "--port", "0"], env={**os.environ, KEK_ENV: kek}, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 1 and "refusing to start" in done.stderr and expected in done.stderr
        assert "Traceback" not in done.stderr
