"""`sts backup FILE` and `sts restore FILE` as adapters: the archive written 0600, the state back in a fresh home,
and one-line errors that say what to fix (sts.admin.backup does the work; tests/admin/test_backup.py tests it)."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner, Result

from sts.cli.main import main
from sts.home import init_home


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args])


def _one_line_error(result: Result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.output.startswith("Error: ")
    for word in words:
        assert word in result.output, result.output


def test_backup_then_restore_into_a_fresh_home(tmp_path: Path) -> None:
    home, archive, target = tmp_path / "home", tmp_path / "state.tar.gz", tmp_path / "restored"
    init_home(home)
    added = run(home, "user", "add", "carol", "--password", "a long enough password", "--claim", "givenname=Carol")
    assert added.exit_code == 0, added.output
    made = run(home, "backup", str(archive))
    assert made.exit_code == 0, made.output
    assert "schema version" in made.output and stat.S_IMODE(archive.stat().st_mode) == 0o600
    restored = run(target, "restore", str(archive))
    assert restored.exit_code == 0, restored.output
    listed = run(target, "user", "list")
    assert "carol" in listed.output and "Carol" in listed.output
    assert stat.S_IMODE((target / "keys" / "sts-signing.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "sts.db").stat().st_mode) == 0o600


def test_errors_say_what_to_fix(tmp_path: Path) -> None:
    home, archive = tmp_path / "home", tmp_path / "state.tar.gz"
    _one_line_error(run(tmp_path / "nowhere", "backup", str(archive)), "not initialised", "sts --home")
    init_home(home)
    assert run(home, "backup", str(archive)).exit_code == 0
    _one_line_error(run(home, "backup", str(archive)), "exists", "--force")
    assert run(home, "backup", "--force", str(archive)).exit_code == 0
    _one_line_error(run(home, "backup", str(tmp_path / "missing-dir" / "x.tar.gz")), "not a directory")
    _one_line_error(run(home, "restore", str(archive)), "already holds", "--force")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not an archive")
    _one_line_error(run(tmp_path / "fresh", "restore", str(garbage)), "not an sts backup archive")
    assert run(home, "restore", "--force", str(archive)).exit_code == 0
