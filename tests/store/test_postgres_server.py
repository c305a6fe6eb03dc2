"""The throwaway PostgreSQL launcher the farm's tests share (tests/servers/postgres.py)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from servers.postgres import PostgresServer


def test_missing_binaries_fail_saying_what_installs_them(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"`make deps` installs postgresql-15"):
        PostgresServer(bin_dir=tmp_path / "bin").start()


def test_fresh_databases_belong_to_the_sts_role_and_survive_a_restart(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_url()
    assert url != postgres_server.fresh_url()  # one per call
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (postgres_server.role,)
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (1)")
    with PostgresServer() as own:  # restarting the shared one would disturb other tests
        conninfo = own.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (7)")
        port = own.port
        own.halt()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(conninfo, connect_timeout=2)
        own.start()
        assert own.port == port
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(7,)]
        directory = own.directory
    assert directory is not None and not directory.exists()  # stop() removed it
