"""The per-request statements: built once, compiled once per dialect, run as one statement each.

A ``Core`` execution costs ≈ 30 µs of Python (execution context, events, result objects) and an explicit
transaction another ≈ 50 µs, against ≈ 2-20 µs for the statement inside SQLite. The few statements every
Issue request runs therefore go straight to the pooled DB-API connection, in SQL that SQLAlchemy compiled
for the engine's dialect, with the dialect's own bind processors (so ``UtcDateTime``, JSON, booleans behave
exactly as through ``Connection.execute``). Each is a single statement, atomic on its own:

* SQLite: the connections are in driver autocommit (``install_sqlite_hooks``), so the statement is its own
  transaction, committed (WAL, ``synchronous=NORMAL``) before ``execute`` returns; ``commit()`` is a no-op.
* PostgreSQL and others (DB-API 2.0): the driver opens a transaction; ``write`` commits it before
  returning, a read's is ended by the pool's reset-on-return.

Everything else (management, migrations, multi-statement work) keeps using ``Connection`` and transactions.
Driver errors are re-raised as SQLAlchemy's (``IntegrityError`` ...), as ``Connection.execute`` would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None


class _Compiled:
    __slots__ = ("sql", "names", "processors", "positional")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:  # type: ignore[attr-defined]
            raise ValueError("prepared statements cannot use expanding or literal-execute parameters")
        self.sql: str = compiled.string
        self.positional: bool = bool(compiled.positional)  # type: ignore[attr-defined]
        binds = compiled.binds  # type: ignore[attr-defined]
        names = list(compiled.positiontup) if self.positional else list(binds)  # type: ignore[attr-defined]
        self.names: tuple[str, ...] = tuple(names)
        self.processors: tuple[Processor, ...] = tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        processed = [
            values[name] if process is None else process(values[name])
            for name, process in zip(self.names, self.processors, strict=True)
        ]
        return processed if self.positional else dict(zip(self.names, processed, strict=True))


class Prepared:
    """A Core statement with named ``bindparam``s, compiled on first use for each dialect."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[int, tuple[Dialect, _Compiled]] = {}
        self._lock = threading.Lock()

    def compiled(self, dialect: Dialect) -> _Compiled:
        entry = self._by_dialect.get(id(dialect))
        if entry is None or entry[0] is not dialect:
            with self._lock:
                entry = (dialect, _Compiled(self.statement, dialect))
                # Usually one engine per process; tests make many, so keep this from growing without bound.
                if len(self._by_dialect) > 32:
                    self._by_dialect.clear()
                self._by_dialect[id(dialect)] = entry
        return entry[1]


def fetch(engine: Engine, prepared: Prepared, values: Mapping[str, Any]) -> list[Any]:
    """Every row of one read statement, as DB-API tuples (no result processing: convert in the caller)."""
    rows, _ = _run(engine, prepared, values, commit=False)
    return rows


def write(engine: Engine, prepared: Prepared, values: Mapping[str, Any]) -> int:
    """Run one write statement and commit it before returning; returns the row count."""
    _, rowcount = _run(engine, prepared, values, commit=True)
    return rowcount


def _run(
    engine: Engine, prepared: Prepared, values: Mapping[str, Any], *, commit: bool
) -> tuple[list[Any], int]:
    dialect = engine.dialect
    compiled = prepared.compiled(dialect)
    params = compiled.parameters(values)
    conn = engine.raw_connection()
    cursor = None
    try:
        cursor = conn.cursor()
        cursor.execute(compiled.sql, params)
        rows = list(cursor.fetchall()) if cursor.description is not None else []
        rowcount = cursor.rowcount
        if commit:
            conn.commit()
        return rows, rowcount
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, conn.dbapi_connection, cursor):
            conn.invalidate(exc)
        else:
            _rollback_quietly(conn)
        raise DBAPIError.instance(compiled.sql, params, exc, dialect.loaded_dbapi.Error) from exc
    except BaseException:
        _rollback_quietly(conn)
        raise
    finally:
        if cursor is not None:
            try:
                cursor.close()
            except Exception:  # noqa: BLE001 - the connection may be gone already
                pass
        conn.close()  # back to the pool, which rolls back whatever is still open


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - the pool invalidates a connection that cannot roll back
        pass
