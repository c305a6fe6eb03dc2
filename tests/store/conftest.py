"""Fixtures for the storage tests: real SQLite files in tmp_path, a cheap scrypt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.database import Database, open_database


@pytest.fixture
def db_url(tmp_path: Path) -> str:
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
