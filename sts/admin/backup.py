"""The whole state of one STS in one archive, and back (``sts backup FILE`` / ``sts restore FILE``).

The archive is a gzip'd tar, portable between SQLite and PostgreSQL and between hosts:

* ``manifest.json``: the format, this STS's schema version, when, and how many rows of each table;
* ``database/<table>.jsonl``: every row of every table, one JSON object a line, read through SQLAlchemy Core from
  one consistent snapshot (SQLite: one read transaction, which in WAL mode sees one state while the STS keeps
  writing; PostgreSQL: one REPEATABLE READ transaction). Datetimes as ISO 8601 UTC, binary columns as base64;
* ``home/sts.toml`` and ``home/keys/...``: the settings, the signing and encryption keys, the rollover schedule and
  ``keys/secrets.key`` (which seals PasswordDigest secrets in the database: without it they are unreadable).

It holds private keys and password hashes, so it is written mode 0600, and a key-encryption key or an HSM PIN
held in the environment is not in it (by design: keep those apart).

Restore checks the whole archive's shape and its schema version first, refuses a target home or database that
holds anything unless ``force``, writes every row in ONE transaction (a failure leaves the database as it was),
and only then puts the files in place. The configuration version is moved past both the archive's and the
target's, so every running node's caches reload.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection, Engine, LargeBinary, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from sts.admin.base import AdminError
from sts.config import CONFIG_FILE, Settings, load_settings
from sts.store.database import create_database_engine
from sts.store.schema import (
    CONFIG_VERSION, MIGRATIONS, UtcDateTime, counters, current_version, metadata, migrate, schema_version,
)
from sts.store.transactions import writing
from sts.xmltime import utcnow

FORMAT = "sts-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_DATABASE, _HOME = "database", "home"
#: What of the home is state (the database file itself travels as rows).
_HOME_ENTRIES = (CONFIG_FILE, "keys")
#: Rows inserted per statement on restore.
_BATCH = 500


class BackupError(AdminError):
    """A backup or restore that cannot be done as asked; the message says what to fix."""


@dataclass
class BackupReport:
    path: Path
    schema_version: int
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _tables() -> list[Table]:
    """Every table, parents before children; the schema version travels in the manifest instead."""
    return [table for table in metadata.sorted_tables if table is not schema_version]


# --- backup ----------------------------------------------------------------------------------------------------


def backup(settings: Settings, path: Path, *, force: bool = False) -> BackupReport:
    """Write the state of the STS at ``settings.home`` to ``path`` (0600); the STS may be running."""
    if path.exists() and not force:
        raise BackupError(f"{path} exists: choose another file or pass --force to replace it")
    if not (settings.home / CONFIG_FILE).exists():
        raise BackupError(f"{settings.home} is not an STS home (no {CONFIG_FILE}): give --home")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory: create it first")
    engine = _engine(settings)
    try:
        with tempfile.TemporaryDirectory(prefix=".sts-backup-", dir=path.parent) as scratch:
            partial = Path(scratch) / path.name
            report = BackupReport(path, 0)
            with _private_file(partial) as handle, tarfile.open(fileobj=handle, mode="w:gz") as archive:
                with _snapshot(engine) as conn:
                    report.schema_version = current_version(conn)
                    if report.schema_version == 0:
                        raise BackupError(f"the database of {settings.home} is empty: nothing to back up")
                    for table in _tables():
                        report.rows[table.name] = _dump_table(conn, table, archive)
                report.files = _add_home_files(settings.home, archive)
                _add_bytes(archive, MANIFEST, json.dumps({
                    "format": FORMAT, "format_version": FORMAT_VERSION, "schema_version": report.schema_version,
                    "created": utcnow().isoformat(), "database": engine.dialect.name, "rows": report.rows,
                    "files": report.files}, indent=2).encode())
            os.replace(partial, path)  # whole or not at all: a crash leaves no half archive under the name
    except SQLAlchemyError as exc:
        raise BackupError(f"the database could not be read: {_reason(exc)}") from None
    except OSError as exc:
        raise BackupError(f"{path} could not be written: {exc}") from None
    finally:
        engine.dispose()
    return report


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One consistent read of every table (see the module docstring)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def _dump_table(conn: Connection, table: Table, archive: tarfile.TarFile) -> int:
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        result = conn.execute(select(table).order_by(*table.primary_key.columns))
        for row in result.mappings():
            spool.write(json.dumps({name: _encode(table, name, value) for name, value in row.items()},
                                   ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
            count += 1
        size = spool.tell()
        spool.seek(0)
        info = tarfile.TarInfo(f"{_DATABASE}/{table.name}.jsonl")
        info.size, info.mode, info.mtime = size, 0o600, int(utcnow().timestamp())
        archive.addfile(info, spool)
    return count


def _add_home_files(home: Path, archive: tarfile.TarFile) -> list[str]:
    names: list[str] = []
    for entry in _HOME_ENTRIES:
        source = home / entry
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for file in files:
            if file.is_symlink():
                continue  # a link points outside what is ours to copy
            relative = file.relative_to(home).as_posix()
            info = tarfile.TarInfo(f"{_HOME}/{relative}")
            data = file.read_bytes()
            info.size, info.mode, info.mtime = len(data), file.stat().st_mode & 0o777, int(file.stat().st_mtime)
            archive.addfile(info, io.BytesIO(data))
            names.append(relative)
    return names


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(utcnow().timestamp())
    archive.addfile(info, io.BytesIO(data))


# --- restore ---------------------------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    home: Path
    schema_version: int
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def restore(path: Path, home: Path, *, force: bool = False) -> RestoreReport:
    """Restore the archive at ``path`` into ``home`` and the database its restored settings name."""
    try:
        archive = tarfile.open(path, mode="r:*")
    except (OSError, tarfile.TarError):
        raise BackupError(f"{path} is not an sts backup archive (not a tar.gz written by sts backup)") from None
    with archive:
        manifest = _read_manifest(archive, path)
        members = _members(archive, path)
        home.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".sts-restore-", dir=home))
        try:
            files = _stage_home_files(archive, members, stage)
            if CONFIG_FILE not in files:
                raise BackupError(f"{path} holds no {CONFIG_FILE}")
            try:
                settings = replace(load_settings(stage), home=home)
            except ValueError as exc:
                raise BackupError(f"the archive's {CONFIG_FILE}: {exc}") from None
            if not force and _home_has_state(home):
                raise BackupError(f"{home} already holds an STS ({CONFIG_FILE} or keys/): restore into an empty "
                                  "home, or pass --force to replace it")
            rows = _restore_rows(settings, archive, members, force=force)
            _put_files_in_place(stage, home)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return RestoreReport(home, manifest["schema_version"], rows, files)


def _read_manifest(archive: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        member = archive.extractfile(MANIFEST)
        manifest = json.loads(member.read()) if member is not None else None
    except (KeyError, ValueError, tarfile.TarError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not an sts backup archive (no {MANIFEST} of format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path} is of backup format {manifest.get('format_version')!r}; this STS reads "
                          f"{FORMAT_VERSION}")
    latest = MIGRATIONS[-1].version
    if manifest.get("schema_version") != latest:
        raise BackupError(f"{path} holds a database of schema version {manifest.get('schema_version')!r}; this "
                          f"STS is at version {latest}: restore it with the STS version that made it")
    return manifest


def _members(archive: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    """The archive's regular files by name; anything else (links, devices, paths that climb out) is refused."""
    members: dict[str, tarfile.TarInfo] = {}
    for member in archive.getmembers():
        name = PurePosixPath(member.name)
        if not member.isfile() or name.is_absolute() or ".." in name.parts:
            raise BackupError(f"{path}: unexpected entry {member.name!r} (not made by sts backup)")
        members[member.name] = member
    return members


def _stage_home_files(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], stage: Path) -> list[str]:
    names: list[str] = []
    for name, member in members.items():
        parts = PurePosixPath(name).parts
        if parts[0] != _HOME:
            continue
        relative = PurePosixPath(*parts[1:])
        if relative.parts[0] not in _HOME_ENTRIES:
            raise BackupError(f"unexpected file {name!r} in the archive")
        target = stage.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        source = archive.extractfile(member)
        assert source is not None  # a regular file (checked in _members)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, (member.mode & 0o755) or 0o600)
        with os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(source, handle)
        names.append(relative.as_posix())
    return names


def _home_has_state(home: Path) -> bool:
    keys = home / "keys"
    return (home / CONFIG_FILE).exists() or (keys.is_dir() and any(keys.iterdir()))


def _restore_rows(settings: Settings, archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], *,
                  force: bool) -> dict[str, int]:
    sqlite = settings.sqlite_path
    if sqlite is not None and not sqlite.exists():
        sqlite.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(sqlite, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # password hashes: 0600 from birth
    engine = _engine(settings)
    try:
        migrate(engine)
        with writing(engine) as conn:
            if not force and _database_has_state(conn):
                raise BackupError(f"the database of {settings.home} already holds users, relying parties or "
                                  "tokens: restore into an empty one, or pass --force to replace them")
            config_version = _config_version(conn)
            for table in reversed(_tables()):
                conn.execute(delete(table))
            rows = {table.name: _load_table(conn, table, archive, members) for table in _tables()}
            _advance_config_version(conn, config_version)
            _resync_sequences(conn)
        return rows
    except SQLAlchemyError as exc:
        raise BackupError(f"the database could not be restored (nothing was changed): {_reason(exc)}") from None
    finally:
        engine.dispose()


def _database_has_state(conn: Connection) -> bool:
    for table in _tables():
        if table is counters:
            continue  # created with the schema
        if conn.execute(select(func.count()).select_from(table)).scalar_one():
            return True
    return False


def _config_version(conn: Connection) -> int:
    value = conn.execute(select(counters.c.value).where(counters.c.name == CONFIG_VERSION)).scalar_one_or_none()
    return int(value or 0)


def _advance_config_version(conn: Connection, before: int) -> None:
    """Past both the target's and the archive's: a node that cached either reloads."""
    restored = _config_version(conn)
    updated = conn.execute(update(counters).where(counters.c.name == CONFIG_VERSION)
                           .values(value=max(before, restored) + 1))
    if not updated.rowcount:
        conn.execute(insert(counters).values(name=CONFIG_VERSION, value=before + 1))


def _load_table(conn: Connection, table: Table, archive: tarfile.TarFile,
                members: dict[str, tarfile.TarInfo]) -> int:
    member = members.get(f"{_DATABASE}/{table.name}.jsonl")
    if member is None:
        return 0  # a table the archive's STS had empty and did not write is the same as an empty one
    source = archive.extractfile(member)
    assert source is not None
    count, batch = 0, []
    for number, line in enumerate(source, 1):
        try:
            raw = json.loads(line)
            row = {name: _decode(table, name, value) for name, value in raw.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"{member.name} line {number}: {exc}") from None
        batch.append(row)
        if len(batch) >= _BATCH:
            conn.execute(insert(table), batch)
            count, batch = count + len(batch), []
    if batch:
        conn.execute(insert(table), batch)
        count += len(batch)
    return count


def _resync_sequences(conn: Connection) -> None:
    """PostgreSQL: the rows came with their ids, so each serial column's sequence must move past them."""
    if conn.dialect.name != "postgresql":
        return
    for table in _tables():
        serial = table.autoincrement_column
        if serial is None:
            continue
        conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{serial.name}'), "
            f"COALESCE((SELECT MAX({serial.name}) FROM {table.name}), 0) + 1, false)"))


def _put_files_in_place(stage: Path, home: Path) -> None:
    """The restored settings and keys replace the home's (the database already holds the restored rows)."""
    keys = stage / "keys"
    if keys.exists():
        previous = home / "keys"
        if previous.exists():
            previous.rename(stage / "keys.previous")  # removed with the stage
        keys.rename(previous)
    os.replace(stage / CONFIG_FILE, home / CONFIG_FILE)


# --- values ----------------------------------------------------------------------------------------------------


def _encode(table: Table, name: str, value: Any) -> Any:
    if value is None:
        return None
    kind = table.c[name].type
    if isinstance(kind, UtcDateTime):
        return value.isoformat()
    if isinstance(kind, LargeBinary):
        return base64.b64encode(value).decode("ascii")
    return value


def _decode(table: Table, name: str, value: Any) -> Any:
    if name not in table.c:
        raise KeyError(f"column {name!r} is not in table {table.name}")
    if value is None:
        return None
    kind = table.c[name].type
    if isinstance(kind, UtcDateTime):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"{name}: a datetime without a time zone")
        return parsed
    if isinstance(kind, LargeBinary):
        return base64.b64decode(value, validate=True)
    return value


def _engine(settings: Settings) -> Engine:
    try:
        return create_database_engine(settings.effective_database_url)
    except ModuleNotFoundError as exc:
        raise BackupError(f"setting database_url: the driver for it is not installed (no module named "
                          f"{exc.name!r})") from None
    except SQLAlchemyError as exc:
        raise BackupError(f"setting database_url: {_reason(exc)}") from None


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's first line (no SQL, no parameters: they may carry secrets)."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


@contextmanager
def _private_file(path: Path) -> Iterator[Any]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        yield handle


__all__ = ["BackupError", "BackupReport", "RestoreReport", "backup", "restore"]
