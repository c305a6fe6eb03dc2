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

Inside ``request_scope(engine)`` (one per SOAP request, opened by the pipeline) every statement of the request
runs on ONE pooled connection, checked out at the first statement and returned when the scope ends: a pool
checkout and return cost ≈ 80 µs, as much as the statement. Writes still commit before ``write`` returns, so
what the request acknowledges is on disk before its answer, exactly as without the scope; ``once_per_request``
memoises a value (the configuration version) for the rest of the request.

Everything else (management, migrations, multi-statement work) keeps using ``Connection`` and transactions.
Driver errors are re-raised as SQLAlchemy's (``IntegrityError`` ...), as ``Connection.execute`` would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from sts.offload import note_commit

Processor = Callable[[Any], Any] | None
T = TypeVar("T")


class _Scope:
    """The request's connection (checked out lazily) and its memoised values."""

    __slots__ = ("engine", "conn", "values")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Any = None
        self.values: dict[str, Any] = {}

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()  # back to the pool, which rolls back whatever is still open


_scope: ContextVar[_Scope | None] = ContextVar("sts_request_scope", default=None)


@contextmanager
def request_scope(engine: Engine) -> Iterator[None]:
    """Run the statements made inside on one connection of ``engine`` (see the module's docstring)."""
    scope = _Scope(engine)
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)
        scope.release()


def once_per_request(engine: Engine, key: str, compute: Callable[[], T]) -> T:
    """``compute()``, memoised for the rest of the current request scope on ``engine`` (every call outside one)."""
    scope = _scope.get()
    if scope is None or scope.engine is not engine:
        return compute()
    values = scope.values
    if key in values:
        return values[key]  # type: ignore[no-any-return]
    value = values[key] = compute()
    return value


def forget_in_request(engine: Engine, key: str) -> None:
    """Drop a memoised value: the request itself changed what it stands for."""
    scope = _scope.get()
    if scope is not None and scope.engine is engine:
        scope.values.pop(key, None)


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
    scope = _scope.get()
    if scope is not None and scope.engine is engine:
        return _run_in_scope(scope, dialect, compiled, params, commit=commit)
    conn = engine.raw_connection()
    cursor = None
    try:
        cursor = conn.cursor()
        cursor.execute(compiled.sql, params)
        rows = list(cursor.fetchall()) if cursor.description is not None else []
        rowcount = cursor.rowcount
        if commit:
            conn.commit()
            note_commit()
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


def _run_in_scope(
    scope: _Scope, dialect: Dialect, compiled: _Compiled, params: Any, *, commit: bool
) -> tuple[list[Any], int]:
    if scope.conn is None:
        scope.conn = scope.engine.raw_connection()
    conn = scope.conn
    cursor = conn.cursor()
    try:
        cursor.execute(compiled.sql, params)
        rows = cursor.fetchall() if cursor.description is not None else []
        rowcount = cursor.rowcount
        if commit:
            conn.commit()
            note_commit()
        return rows, rowcount
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, conn.dbapi_connection, cursor):
            conn.invalidate(exc)
            scope.conn = None  # the next statement of the request checks out a fresh one
        else:
            _rollback_quietly(conn)
        raise DBAPIError.instance(compiled.sql, params, exc, dialect.loaded_dbapi.Error) from exc
    except BaseException:
        _rollback_quietly(conn)
        raise
    finally:
        try:
            cursor.close()
        except Exception:  # noqa: BLE001 - the connection may be gone already
            pass


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - the pool invalidates a connection that cannot roll back
        pass
