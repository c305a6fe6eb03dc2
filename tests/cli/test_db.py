"""`sts db upgrade` and `sts db status` on SQLite and PostgreSQL, and `sts init` with a PostgreSQL database_url."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from servers.postgres import PostgresServer
from sts.cli.db import db
from sts.cli.main import main
from sts.cli.context import _Context
from sts.store import schema
from sts.store.database import create_database_engine, open_database
from sts.store.schema import MIGRATIONS, migrate

LATEST = MIGRATIONS[-1].version


def run_db(home: Path, *args: str) -> Result:
    # `sts db` is invoked as its own group with the context `sts --home` would build.
    return CliRunner().invoke(db, list(args), obj=_Context(home))


def init(home: Path, database_url: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), "init", "--no-demo"],
                              env={"STS_DATABASE_URL": database_url})


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.fresh_url()
    return f"sqlite:///{tmp_path / 'elsewhere.db'}"


def test_init_with_a_database_url_creates_the_schema_there(tmp_path: Path, database_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    result = init(home, database_url)
    assert result.exit_code == 0, result.output
    assert not (home / "sts.db").exists()  # the database is the configured one, not the home's file
    monkeypatch.setenv("STS_DATABASE_URL", database_url)
    status = run_db(home, "status")
    assert status.exit_code == 0 and status.output.strip() == f"schema version {LATEST}: up to date", status.output
    upgrade = run_db(home, "upgrade")
    assert upgrade.exit_code == 0 and upgrade.output.strip() == f"schema version {LATEST}: up to date"


def test_upgrade_brings_an_older_database_to_the_current_version(tmp_path: Path, database_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    assert init(home, f"sqlite:///{tmp_path / 'first.db'}").exit_code == 0  # keys and secrets of a home
    engine = create_database_engine(database_url)
    try:
        # A database an older sts made: the tables of the baseline, recorded as version 1, then the steps.
        migrate(engine, (schema.Migration(1, "baseline", lambda conn: schema.metadata.create_all(conn)),))
    finally:
        engine.dispose()
    monkeypatch.setenv("STS_DATABASE_URL", database_url)
    assert run_db(home, "status").output.strip() == f"schema version 1: run `sts db upgrade` (this sts is at {LATEST})"
    upgrade = run_db(home, "upgrade")
    assert upgrade.exit_code == 0 and upgrade.output.strip() == f"schema version 1 -> {LATEST}", upgrade.output
    database = open_database(database_url, run_migrations=False)
    try:
        assert database.relying_parties.list() == []
    finally:
        database.close()


def test_an_unreachable_database_is_one_line_saying_which(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    assert init(home, f"sqlite:///{tmp_path / 'first.db'}").exit_code == 0
    # Nothing listens on port 9 of loopback (discard): refused at once.
    monkeypatch.setenv("STS_DATABASE_URL", "postgresql://sts:secret-password@127.0.0.1:9/sts")
    result = run_db(home, "upgrade")
    assert result.exit_code == 1
    assert "cannot open the database postgresql://sts:***@127.0.0.1:9/sts" in result.output
    assert "secret-password" not in result.output and "Traceback" not in result.output


def test_sts_db_is_a_command_of_sts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert CliRunner().invoke(main, ["--home", str(home), "init"]).exit_code == 0
    result = CliRunner().invoke(main, ["--home", str(home), "db", "status"])
    assert result.exit_code == 0 and f"schema version {LATEST}: up to date" in result.output
