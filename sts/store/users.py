"""Users, their claims and credentials (implements ``sts.interfaces.UserDirectory``)."""

from __future__ import annotations

import builtins
import secrets
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from sts.model import Claim, UserRecord
from sts.offload import heavy
from sts.store.credential_cache import VerifiedCredentials
from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.prepared import Prepared, fetch
from sts.store.schema import bump_config_version, config_version_now, user_claims, users, utcnow
from sts.store.transactions import reading, writing

MAX_NAME_LENGTH = 255

# The per-request read, one statement (a single SELECT is one consistent snapshot): the user, its claims (one
# LEFT JOIN, ordered as stored; a user without claims comes back as one row with NULL uri) and its credentials.
_USER_COLUMNS = (users.c.name, users.c.disabled, users.c.admin)
_CLAIM_COLUMNS = (user_claims.c.uri, user_claims.c.value)
_WITH_CLAIMS = users.outerjoin(user_claims, user_claims.c.user_id == users.c.id)
_ENTRY = Prepared(
    select(*_USER_COLUMNS, *_CLAIM_COLUMNS, users.c.digest_secret, users.c.password_hash)
    .select_from(_WITH_CLAIMS)
    .where(users.c.name == bindparam("name"))
    .order_by(user_claims.c.position)
)
#: Users cached per process (unknown names too, so a miss costs what a hit costs); the oldest go first.
MAX_CACHED_USERS = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    """What one request needs of a user, as of configuration ``version`` (None: no such user)."""

    version: int
    record: UserRecord | None
    sealed_secret: bytes | None
    password_hash: str | None


def check_user_name(name: str) -> None:
    """Raise ValueError unless ``name`` is non-empty and free of whitespace and control characters."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"user name must be 1 to {MAX_NAME_LENGTH} characters")
    for char in name:
        # Categories Z* (separators) and C* (control, format, unassigned...) make names that look alike.
        if char.isspace() or unicodedata.category(char)[0] in "ZC":
            raise ValueError(f"user name {name!r} contains whitespace or control characters")


class SqlUserStore:
    """Users in SQL; passwords as scrypt hashes, digest secrets sealed by a ``SecretBox``.

    Without a box no digest secret is kept, and PasswordDigest authentication is unavailable.

    Reads are served from a per-process cache checked against the configuration version, which every user change
    bumps in its own transaction and every request reads once (``config_version_now``): a change made by any
    process or node applies to the next request everywhere. Secrets stay sealed in the cache.
    """

    def __init__(self, engine: Engine, hasher: PasswordHasher, box: SecretBox | None = None,
                 credentials: VerifiedCredentials | None = None) -> None:
        self._engine = engine
        self._hasher = hasher
        self._box = box
        #: Recently verified PasswordText pairs (``password_cache_seconds``); off when None.
        self._credentials = credentials
        self._cache: dict[str, _Entry] = {}
        self._cache_lock = threading.Lock()
        # Opened for unknown and disabled users, so that a PasswordDigest check costs the same for every name.
        self._dummy_sealed: bytes | None = None  # sealed at first need: a shared box's key comes from the database

    # -- management ------------------------------------------------------------------------------------

    def add(
        self, name: str, password: str, claims: Sequence[tuple[str, str]] = (), admin: bool = False
    ) -> None:
        """Create a user; ValueError when the name is invalid or taken."""
        check_user_name(name)
        row = {
            "name": name,
            "password_hash": self._hasher.hash(password),
            "digest_secret": self._seal(name, password),
            "disabled": False,
            "admin": admin,
            "created": utcnow(),
        }
        try:
            with writing(self._engine) as conn:
                key = conn.execute(insert(users).values(row)).inserted_primary_key
                assert key is not None  # a single-row insert always reports its key
                _insert_claims(conn, int(key[0]), claims)
                bump_config_version(conn)
        except IntegrityError:
            raise ValueError(f"user {name} already exists") from None

    def remove(self, name: str) -> bool:
        with writing(self._engine) as conn:
            # Claims go with the user through ON DELETE CASCADE.
            return _changed(conn, conn.execute(delete(users).where(users.c.name == name)).rowcount)

    def set_password(self, name: str, password: str) -> bool:
        """Replace the password (and its digest secret); False when there is no such user."""
        values = {"password_hash": self._hasher.hash(password), "digest_secret": self._seal(name, password)}
        with writing(self._engine) as conn:
            return _changed(conn, conn.execute(update(users).where(users.c.name == name).values(values)).rowcount)

    def set_claims(self, name: str, claims: Sequence[tuple[str, str]]) -> bool:
        """Replace all claims of the user, keeping the given order; False when there is no such user."""
        with writing(self._engine) as conn:
            # FOR UPDATE (PostgreSQL; SQLite's write lock already serialises): a second node replacing the same
            # user's claims waits, then deletes what the first inserted, instead of colliding with it.
            user_id = conn.execute(
                select(users.c.id).where(users.c.name == name).with_for_update()
            ).scalar_one_or_none()
            if user_id is None:
                return False
            conn.execute(delete(user_claims).where(user_claims.c.user_id == user_id))
            _insert_claims(conn, user_id, claims)
            bump_config_version(conn)
            return True

    def set_disabled(self, name: str, disabled: bool) -> bool:
        with writing(self._engine) as conn:
            stmt = update(users).where(users.c.name == name).values(disabled=disabled)
            return _changed(conn, conn.execute(stmt).rowcount)

    def set_admin(self, name: str, admin: bool) -> bool:
        with writing(self._engine) as conn:
            return _changed(conn, conn.execute(update(users).where(users.c.name == name).values(admin=admin)).rowcount)

    # -- reading ---------------------------------------------------------------------------------------

    def get(self, name: str) -> UserRecord | None:
        """The user and its claims, as of this request's configuration version."""
        return self._entry(name).record

    def get_with_secret(self, name: str) -> tuple[UserRecord, str | None] | None:
        """``get`` and ``digest_secret`` together: None for an unknown user, else the record and the digest
        secret, which is None exactly when ``digest_secret`` would be (disabled user, no secret stored, no box).
        Like ``digest_secret``, ValueError when the sealed secret cannot be opened."""
        entry = self._entry(name)
        record = entry.record
        if record is None:
            return None
        if self._box is None or record.disabled or entry.sealed_secret is None:
            return record, None
        return record, self._box.open(entry.sealed_secret, _aad(name))

    def _entry(self, name: str) -> _Entry:
        # Version first, rows second: at worst newer rows are cached under an older version, which costs one
        # more read on the next request, never a stale answer (the relying-party index does the same).
        version = config_version_now(self._engine)
        entry = self._cache.get(name)
        if entry is not None and entry.version == version:
            return entry
        rows = fetch(self._engine, _ENTRY, {"name": name})
        if rows:
            first = rows[0]
            sealed = None if first[5] is None else bytes(first[5])
            entry = _Entry(version, _record(rows), sealed, first[6])
        else:
            entry = _Entry(version, None, None, None)
        with self._cache_lock:
            self._cache.pop(name, None)
            while len(self._cache) >= MAX_CACHED_USERS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[name] = entry
        return entry

    def list(self) -> builtins.list[UserRecord]:
        """Every user, by name."""
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(users.c.id, users.c.name, users.c.disabled, users.c.admin).order_by(users.c.name)
            ).all()
            claim_rows = conn.execute(
                select(user_claims.c.user_id, user_claims.c.uri, user_claims.c.value).order_by(
                    user_claims.c.user_id, user_claims.c.position
                )
            ).all()
        by_user: dict[int, list[tuple[str, str]]] = {}
        for c in claim_rows:
            by_user.setdefault(c.user_id, []).append((c.uri, c.value))
        return [
            UserRecord(r.name, _aggregate(by_user.get(r.id, [])), bool(r.disabled), bool(r.admin))
            for r in rows
        ]

    # -- credentials -----------------------------------------------------------------------------------

    def check_password(self, name: str, password: str) -> bool:
        """True only for an enabled user with this password; every other answer costs the same scrypt, unless
        the pair was verified against the same stored hash within ``password_cache_seconds``."""
        entry = self._entry(name)
        record, stored = entry.record, entry.password_hash
        credentials = self._credentials
        if record is None or record.disabled or stored is None:
            heavy()
            self._hasher.dummy_verify(password)
            return False
        if credentials is not None and credentials.matches(name, password, stored):
            return True
        heavy()  # scrypt: off the event loop (sts.offload)
        ok = self._hasher.verify(password, stored)
        if ok and credentials is not None:
            credentials.remember(name, password, stored)
        return ok

    def digest_secret(self, name: str) -> str | None:
        """The plain password for PasswordDigest checks; None for unknown or disabled users, or no box."""
        if self._box is None:
            return None
        entry = self._entry(name)
        if entry.record is None or entry.record.disabled or entry.sealed_secret is None:
            if self._dummy_sealed is None:
                self._dummy_sealed = self._box.seal(secrets.token_urlsafe(16), _aad(""))
            self._box.open(self._dummy_sealed, _aad(""))  # the same work as for a known user
            return None
        return self._box.open(entry.sealed_secret, _aad(name))

    def _seal(self, name: str, password: str) -> bytes | None:
        return None if self._box is None else self._box.seal(password, _aad(name))


def _changed(conn: Connection, rowcount: int) -> bool:
    """Bump the configuration version when a user row changed (inside the changing transaction)."""
    if rowcount:
        bump_config_version(conn)
    return rowcount > 0


def _aad(name: str) -> bytes:
    # Binds the sealed secret to its user row: copying it to another user makes it unreadable.
    return b"sts-digest-secret\x00" + name.encode("utf-8")


def _record(rows: builtins.list[Any]) -> UserRecord:
    """One UserRecord from the LEFT JOIN rows (name, disabled, admin, uri, value, ...) of one user."""
    first = rows[0]
    pairs = [(row[3], row[4]) for row in rows if row[3] is not None]
    return UserRecord(first[0], _aggregate(pairs), bool(first[1]), bool(first[2]))


def _insert_claims(conn: Connection, user_id: int, claims: Sequence[tuple[str, str]]) -> None:
    rows = [
        {"user_id": user_id, "position": i, "uri": uri, "value": value}
        for i, (uri, value) in enumerate(claims)
    ]
    if rows:
        conn.execute(insert(user_claims), rows)


def _aggregate(pairs: Iterable[tuple[str, str]]) -> tuple[Claim, ...]:
    """(uri, value) rows -> one Claim per URI, URIs and values in first-seen order, values without repeats."""
    grouped: dict[str, list[str]] = {}
    for uri, value in pairs:
        values = grouped.setdefault(uri, [])
        if value not in values:
            values.append(value)
    return tuple(Claim(uri, tuple(values)) for uri, values in grouped.items())
