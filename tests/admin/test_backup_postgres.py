"""``sts backup`` / ``sts restore`` across databases, on a throwaway PostgreSQL 15 server (tests/servers/postgres.py;
``make deps`` installs it): SQLite -> PostgreSQL -> SQLite, validating through the real pipeline at each end.

The restored database is the one the restored settings name; ``STS_DATABASE_URL`` overrides the archive's
``database_url`` as it overrides any sts.toml, which is how a state moves to another database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sts.admin.backup import BackupError, backup, restore
from sts.config import load_settings
from sts.runtime import build_runtime
from tests.admin.test_backup import _cancel, _issue, _validate, home  # noqa: F401 - the fixture too
from tests.servers.postgres import PostgresServer


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def test_sqlite_to_postgresql_and_back(home: Path, tmp_path: Path, postgres: PostgresServer,  # noqa: F811
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    origin = build_runtime(load_settings(home))
    kept, cancelled = _issue(origin).token(), _issue(origin).token()
    _cancel(origin, cancelled)
    origin.stores.close()
    first = tmp_path / "from-sqlite.tar.gz"
    backup(load_settings(home), first)

    url = postgres.fresh_url()
    monkeypatch.setenv("STS_DATABASE_URL", url)
    on_postgres = tmp_path / "on-postgres"
    report = restore(first, on_postgres)
    assert report.rows["tokens"] >= 2
    node = build_runtime(load_settings(on_postgres))
    try:
        assert node.stores.engine.dialect.name == "postgresql"
        assert _validate(node, kept)[0] == "valid"
        assert _validate(node, cancelled)[0] == "invalid"
        # New rows after a restore: the serial ids (audit log) continue past the restored ones.
        later = _issue(node).token()
        _cancel(node, later)
    finally:
        node.stores.close()
    with pytest.raises(BackupError, match="already holds"):
        restore(first, tmp_path / "again")  # the same PostgreSQL database, now in use
    second = tmp_path / "from-postgresql.tar.gz"
    backup(load_settings(on_postgres), second)

    monkeypatch.delenv("STS_DATABASE_URL")
    back = tmp_path / "back-on-sqlite"
    restore(second, back, force=True)  # the archive's sts.toml names SQLite in the home (database_url = "")
    node = build_runtime(load_settings(back))
    try:
        assert node.stores.engine.dialect.name == "sqlite"
        assert [_validate(node, t)[0] for t in (kept, cancelled, later)] == ["valid", "invalid", "invalid"]
    finally:
        node.stores.close()
