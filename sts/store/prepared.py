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
checkout and return cost as much as the statement. ``write`` commits before it returns; ``claim`` takes a key
(the replay cache's nonce) and may wait for the request's commit, see below; ``write_later`` defers an
append-only row (the issued token, the audit entry) to the end of the request, where the deferred rows are
committed in one transaction before the answer is sent. On the event loop the scope hands them to a group
committer (``sts.store.group_commit``): the requests that finished in the same loop iteration (and the next)
share one transaction, and each answer still waits for the commit that holds its rows. A failed commit fails the
request (``wst:RequestFailed``): no token is handed out unrecorded.
``once_per_request`` memoises a value (the configuration version) for the rest of the request.

A claim (``claim``: one statement that changes exactly one row when the key is free) saves its own commit
(≈ 60 µs) when the request's rows are group-committed: it joins that commit, ahead of the request's rows. When the
key turns out to be held (a replay, in this batch or committed before, by any process), the commit raises
``ClaimTaken`` and none of the request's rows is committed; the HTTP layer then runs the request again with its
claims made at once (``sts.web.soap_http``), which refuses it exactly as a replay is refused, with its fault and
audit entry. Nothing of the first run leaves the server: its answer waits for the commit. Before any write that
cannot wait (``write``, ``sts.store.transactions.writing``: a Cancel's or a Renew's change, a throttle count) the
waiting claims are made at once (``settle_claims``), so nothing irreversible is done for a request whose key was
held. Elsewhere (a worker thread, PostgreSQL, no committer) a claim is an ordinary ``write``.

On a server database (PostgreSQL) a request leaves the event loop before its first statement
(``sts.store.transactions.leave_loop_for``): a statement is a network round trip there, and a slow or frozen
server must hold one worker thread, not the loop that answers every other request and ``/healthz``. So the group
committer, fed only by requests on the loop, serves SQLite; on PostgreSQL each request commits its own rows.

Everything else (management, migrations, multi-statement work) keeps using ``Connection`` and transactions.
Driver errors are re-raised as SQLAlchemy's (``IntegrityError`` ...), as ``Connection.execute`` would.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from sqlalchemy import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import ClauseElement

from sts.errors import RequestFailed
from sts.offload import note_commit, on_loop
from sts.store.transactions import BEFORE_WRITING, leave_loop_for

log = logging.getLogger(__name__)

Processor = Callable[[Any], Any] | None
T = TypeVar("T")


#: A request's deferred statements: (statement, parameters, whether it is a claim that must change one row).
Pending = list[tuple["_Compiled", Any, bool]]


class ClaimTaken(BaseException):
    """A key the request claimed with ``claim`` was already held: the request must run again with its claims made
    at once. A BaseException: a control-flow signal that passes the pipeline's ``except Exception``, like
    ``sts.offload.MoveToThread``."""


class Committer(Protocol):
    """Takes a request's deferred writes when the request runs on the event loop (``sts.store.group_commit``)."""

    engine: Engine

    def connection(self) -> Any:
        """The loop's own pooled connection (requests on the loop run one at a time, so they share it)."""

    def submit(self, pending: Pending) -> None:
        """Commit ``pending`` soon, in one transaction with other requests' writes; the request awaits it."""


class _Scope:
    """The request's connection (checked out lazily), its memoised values and its deferred writes."""

    __slots__ = ("engine", "conn", "borrowed", "values", "pending", "claims")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Any = None
        self.borrowed = False  # the committer's connection: not returned to the pool at the end
        self.values: dict[str, Any] = {}
        self.pending: Pending = []
        self.claims = 0  # how many of ``pending`` are claims

    def take_claims(self) -> Pending:
        """The waiting claims, out of ``pending``."""
        if not self.claims:
            return []
        claims = [entry for entry in self.pending if entry[2]]
        self.pending = [entry for entry in self.pending if not entry[2]]
        self.claims = 0
        return claims

    def connection(self) -> Any:
        if self.conn is None:
            leave_loop_for(self.engine)
            committer = _committer.get()
            if committer is not None and committer.engine is self.engine and on_loop():
                self.conn, self.borrowed = committer.connection(), True
            else:
                admission = _admission(self.engine)
                if admission is not None:
                    admission.enter()
                try:
                    self.conn = checkout(self.engine)
                except BaseException:
                    if admission is not None:
                        admission.leave()
                    raise
        return self.conn

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if self.borrowed:
            _rollback_quietly(conn)  # a read left open (PostgreSQL) must not hold its snapshot
            return
        try:
            conn.close()  # back to the pool, which rolls back whatever is still open
        finally:
            admission = _admission(self.engine)
            if admission is not None:
                admission.leave()


class _Admission:
    """At most ``pool_size`` request scopes hold a pooled connection at once.

    A request in a worker thread holds its scope's connection and may need a second one for a moment (a
    ``reading``/``writing`` transaction: a relying-party reload, a Cancel's status change). Were every pooled
    connection held by a scope, each of those requests would wait for another's to come back, and all of them
    would time out together. With scopes bounded by ``pool_size`` and the pool allowed as many again in overflow
    (``create_postgres_engine``), a nested transaction always finds a connection; a request over the bound waits
    here, holding none, as long as the pool would have let it wait."""

    __slots__ = ("_slots", "_timeout")

    def __init__(self, size: int, timeout: float) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._timeout = timeout

    def enter(self) -> None:
        if not self._slots.acquire(timeout=self._timeout):
            raise PoolTimeout(f"no database connection for a request within {self._timeout:g} s "
                              f"(database_pool_size requests were using the database)")

    def leave(self) -> None:
        self._slots.release()


_ADMISSIONS: weakref.WeakKeyDictionary[Engine, _Admission | None] = weakref.WeakKeyDictionary()
_ADMISSIONS_LOCK = threading.Lock()


def _admission(engine: Engine) -> _Admission | None:
    """The engine's admission bound: only for a server database's QueuePool (SQLite's connections are local)."""
    try:
        return _ADMISSIONS[engine]
    except KeyError:
        pass
    with _ADMISSIONS_LOCK:
        if engine not in _ADMISSIONS:
            pool = engine.pool
            server = engine.dialect.name != "sqlite" and isinstance(pool, QueuePool)
            _ADMISSIONS[engine] = _Admission(pool.size(), pool.timeout()) if isinstance(pool, QueuePool) and server \
                else None
        return _ADMISSIONS[engine]


_scope: ContextVar[_Scope | None] = ContextVar("sts_request_scope", default=None)
_committer: ContextVar[Committer | None] = ContextVar("sts_group_committer", default=None)
_claims_wait: ContextVar[bool] = ContextVar("sts_claims_wait", default=False)


@contextmanager
def request_scope(engine: Engine) -> Iterator[None]:
    """Run the statements made inside on one connection of ``engine`` and commit its deferred writes at the end
    (see the module's docstring). Raises ``RequestFailed`` when they cannot be committed."""
    scope = _Scope(engine)
    token = _scope.set(scope)
    try:
        yield
        if scope.pending:
            _finish(scope)
    except ClaimTaken:
        scope.pending = []  # the request runs again from the start and records what that run does
        raise
    except BaseException:
        # The run that follows (in a thread, after the wait) claims its keys itself.
        scope.take_claims()
        # A control-flow signal (a throttle wait, a move to a thread) or a cancellation: what was recorded so
        # far (the auth.throttled entry) happened, and goes in now; the rerun records its own.
        if scope.pending:
            _commit_quietly(scope)
        raise
    finally:
        _scope.reset(token)
        scope.release()


@contextmanager
def committing_through(committer: Committer, *, claims_wait: bool = True) -> Iterator[None]:
    """Requests run inside (on the event loop) hand their deferred writes to ``committer``; their claims join
    that commit too unless ``claims_wait`` is False (the run that follows a ``ClaimTaken``)."""
    token = _committer.set(committer)
    claims_token = _claims_wait.set(claims_wait)
    try:
        yield
    finally:
        _claims_wait.reset(claims_token)
        _committer.reset(token)


def _finish(scope: _Scope) -> None:
    # A request that wrote without reading (a fault's audit entry) commits in a thread too on a server database,
    # never through the group committer, which runs on the loop.
    leave_loop_for(scope.engine)
    committer = _committer.get()
    if committer is not None and committer.engine is scope.engine and on_loop():
        pending, scope.pending = scope.pending, []
        committer.submit(pending)
    elif not _commit_now(scope):
        raise not_recorded()


def _commit_quietly(scope: _Scope) -> None:
    _commit_now(scope)


def _commit_now(scope: _Scope) -> bool:
    """Commit the scope's deferred rows on its connection; False (logged) when they could not be."""
    pending, scope.pending = scope.pending, []
    try:
        commit_together(scope.engine, scope.connection(), pending)
    except DBAPIError as exc:
        log.error("could not record the request's writes: %s", exc.orig)
        return False
    return True


def checkout(engine: Engine) -> Any:
    """A pooled DB-API connection; a failure to connect (the server is down) raised as SQLAlchemy's ``DBAPIError``,
    as ``Engine.connect`` would (the pool itself raises the driver's exception)."""
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error) from exc


def not_recorded() -> RequestFailed:
    """The fault of a request whose rows could not be committed: it hands out nothing."""
    return RequestFailed("the token service could not record the request")


def commit_together(engine: Engine, conn: Any, pending: Pending) -> None:
    """Run ``pending`` in one transaction on ``conn`` (a pooled connection) and commit; all or nothing. Raises
    ``ClaimTaken`` (and commits nothing) when a claim among them finds its key held."""
    dialect = engine.dialect
    cursor = conn.cursor()
    sql = ""
    params: Any = None
    try:
        if dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")  # the driver is in autocommit: the write lock first, as `writing`
        for compiled, params, claims in pending:
            sql = compiled.sql
            cursor.execute(sql, params)
            if claims and cursor.rowcount != 1:
                raise ClaimTaken
        if dialect.name == "sqlite":
            cursor.execute("COMMIT")
        else:
            conn.commit()
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, conn.dbapi_connection, cursor):
            conn.invalidate(exc)  # a server restart: the next commit (the group committer's too) reconnects
        else:
            _rollback_quietly(conn)
        raise DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error) from exc
    except BaseException:
        _rollback_quietly(conn)
        raise
    finally:
        _close_quietly(cursor)


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
    settle_claims(engine)
    _, rowcount = _run(engine, prepared, values, commit=True)
    return rowcount


def claim(engine: Engine, prepared: Prepared, values: Mapping[str, Any]) -> bool | None:
    """Take a key with ``prepared``, a write that changes exactly one row when the key is free: whether it was.

    In a request on the event loop whose rows are group-committed, the write joins that commit and this returns
    None (not known yet: go on as if taken); a held key then fails the commit with ``ClaimTaken`` (see the module's
    docstring)."""
    scope = _scope.get()
    if scope is not None and scope.engine is engine and _claims_wait.get() and on_loop():
        leave_loop_for(engine)  # a server database's group commit is not on the loop: claim from a thread
        committer = _committer.get()
        if committer is not None and committer.engine is engine:
            compiled = prepared.compiled(engine.dialect)
            scope.pending.append((compiled, compiled.parameters(values), True))
            scope.claims += 1
            return None
    return write(engine, prepared, values) == 1


def settle_claims(engine: Engine) -> None:
    """Make the current request's waiting claims on ``engine`` now (before a write that cannot wait); raises
    ``ClaimTaken`` when a key was held."""
    scope = _scope.get()
    if scope is None or scope.engine is not engine or not scope.claims:
        return
    conn = scope.connection()
    for compiled, params, _ in scope.take_claims():
        _, rowcount = _execute(conn, engine.dialect, compiled, params, commit=True)
        if rowcount != 1:
            raise ClaimTaken


BEFORE_WRITING.append(settle_claims)  # a ``writing`` transaction cannot wait either


def write_later(engine: Engine, prepared: Prepared, values: Mapping[str, Any]) -> None:
    """An append-only write (an issued token's row, an audit entry) that may wait for the end of the request: there
    it is committed with the request's other deferred writes (and, on the event loop, with other requests' in one
    group commit) before the answer leaves. Outside a request scope it is committed at once, like ``write``."""
    scope = _scope.get()
    if scope is None or scope.engine is not engine:
        write(engine, prepared, values)
        return
    compiled = prepared.compiled(engine.dialect)
    scope.pending.append((compiled, compiled.parameters(values), False))


def _run(
    engine: Engine, prepared: Prepared, values: Mapping[str, Any], *, commit: bool
) -> tuple[list[Any], int]:
    dialect = engine.dialect
    compiled = prepared.compiled(dialect)
    params = compiled.parameters(values)
    scope = _scope.get()
    if scope is None or scope.engine is not engine:
        leave_loop_for(engine)
        conn = checkout(engine)
        try:
            return _execute(conn, dialect, compiled, params, commit=commit)
        finally:
            conn.close()  # back to the pool, which rolls back whatever is still open
    conn = scope.connection()
    try:
        return _execute(conn, dialect, compiled, params, commit=commit)
    finally:
        if not conn.is_valid:  # invalidated on a disconnect: the request's next statement checks out another
            scope.conn, scope.borrowed = None, False


def _execute(conn: Any, dialect: Dialect, compiled: _Compiled, params: Any, *, commit: bool
             ) -> tuple[list[Any], int]:
    """One statement on a pooled connection; a disconnect invalidates the connection, another error rolls back."""
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
        else:
            _rollback_quietly(conn)
        raise DBAPIError.instance(compiled.sql, params, exc, dialect.loaded_dbapi.Error) from exc
    except BaseException:
        _rollback_quietly(conn)
        raise
    finally:
        _close_quietly(cursor)


def _close_quietly(cursor: Any) -> None:
    try:
        cursor.close()
    except Exception:  # noqa: BLE001 - the connection may be gone already
        pass


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - the pool invalidates a connection that cannot roll back
        pass
