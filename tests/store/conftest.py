"""Fixtures for the storage tests: real SQLite files in tmp_path, a cheap scrypt, a throwaway PostgreSQL server.

The modules named in ``BOTH_BACKENDS`` run every test twice, on SQLite and on PostgreSQL (a fresh database of one
server per test session, ``postgres_server`` in tests/conftest.py); the others are about SQLite itself (its file,
locking, durability), as are the tests marked ``sqlite_only``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servers.postgres import PostgresServer
from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.database import Database, open_database


BOTH_BACKENDS = frozenset({
    "test_audit", "test_store_clients", "test_store_relying_parties", "test_store_replay", "test_store_throttle",
    "test_store_tokens", "test_store_users", "test_user_cache",
})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: a store test about SQLite itself (not run on PostgreSQL)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if ("backend" in metafunc.fixturenames and module in BOTH_BACKENDS
            and metafunc.definition.get_closest_marker("sqlite_only") is None):
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database the store tests run on: "sqlite", or "postgresql" in the modules of ``BOTH_BACKENDS``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.fresh_url()
    return f"sqlite:///{tmp_path / 'sts.db'}"


@pytest.fixture
def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(n=2**4)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(bytes(range(32)))


@pytest.fixture
def db(db_url: str, cheap_hasher: PasswordHasher, box: SecretBox) -> Iterator[Database]:
    database = open_database(db_url, hasher=cheap_hasher, secret_box=box)
    yield database
    database.close()


@pytest.fixture
def second_db(db: Database, db_url: str, cheap_hasher: PasswordHasher, box: SecretBox) -> Iterator[Database]:
    """Another "worker process": its own engine and caches on the same file."""
    database = open_database(db_url, hasher=cheap_hasher, secret_box=box)
    yield database
    database.close()
