"""Users, their claims and credentials (implements ``sts.interfaces.UserDirectory``)."""

from __future__ import annotations

import builtins
import secrets
import unicodedata
from collections.abc import Iterable, Sequence

from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from sts.model import Claim, UserRecord
from sts.store.passwords import PasswordHasher, SecretBox
from sts.store.prepared import Prepared, fetch
from sts.store.schema import user_claims, users, utcnow
from sts.store.transactions import reading, writing

MAX_NAME_LENGTH = 255

# The per-request reads, one statement each (a single SELECT is one consistent snapshot): the user and its
# claims in one LEFT JOIN, ordered as stored; a user without claims comes back as one row with NULL uri.
_USER_COLUMNS = (users.c.name, users.c.disabled, users.c.admin)
_CLAIM_COLUMNS = (user_claims.c.uri, user_claims.c.value)
_WITH_CLAIMS = users.outerjoin(user_claims, user_claims.c.user_id == users.c.id)
_GET = Prepared(
    select(*_USER_COLUMNS, *_CLAIM_COLUMNS)
    .select_from(_WITH_CLAIMS)
    .where(users.c.name == bindparam("name"))
    .order_by(user_claims.c.position)
)
_GET_WITH_SECRET = Prepared(
    select(*_USER_COLUMNS, *_CLAIM_COLUMNS, users.c.digest_secret)
    .select_from(_WITH_CLAIMS)
    .where(users.c.name == bindparam("name"))
    .order_by(user_claims.c.position)
)
_DIGEST_SECRET = Prepared(
    select(users.c.digest_secret, users.c.disabled).where(users.c.name == bindparam("name"))
)
_PASSWORD_HASH = Prepared(
    select(users.c.password_hash, users.c.disabled).where(users.c.name == bindparam("name"))
)


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
    """

    def __init__(self, engine: Engine, hasher: PasswordHasher, box: SecretBox | None = None) -> None:
        self._engine = engine
        self._hasher = hasher
        self._box = box
        # Opened for unknown and disabled users, so that a PasswordDigest check costs the same for every name.
        self._dummy_sealed = None if box is None else box.seal(secrets.token_urlsafe(16), _aad(""))

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
        except IntegrityError:
            raise ValueError(f"user {name} already exists") from None

    def remove(self, name: str) -> bool:
        with writing(self._engine) as conn:
            # Claims go with the user through ON DELETE CASCADE.
            return conn.execute(delete(users).where(users.c.name == name)).rowcount > 0

    def set_password(self, name: str, password: str) -> bool:
        """Replace the password (and its digest secret); False when there is no such user."""
        values = {"password_hash": self._hasher.hash(password), "digest_secret": self._seal(name, password)}
        with writing(self._engine) as conn:
            return conn.execute(update(users).where(users.c.name == name).values(values)).rowcount > 0

    def set_claims(self, name: str, claims: Sequence[tuple[str, str]]) -> bool:
        """Replace all claims of the user, keeping the given order; False when there is no such user."""
        with writing(self._engine) as conn:
            user_id = conn.execute(select(users.c.id).where(users.c.name == name)).scalar_one_or_none()
            if user_id is None:
                return False
            conn.execute(delete(user_claims).where(user_claims.c.user_id == user_id))
            _insert_claims(conn, user_id, claims)
            return True

    def set_disabled(self, name: str, disabled: bool) -> bool:
        with writing(self._engine) as conn:
            stmt = update(users).where(users.c.name == name).values(disabled=disabled)
            return conn.execute(stmt).rowcount > 0

    def set_admin(self, name: str, admin: bool) -> bool:
        with writing(self._engine) as conn:
            return conn.execute(update(users).where(users.c.name == name).values(admin=admin)).rowcount > 0

    # -- reading ---------------------------------------------------------------------------------------

    def get(self, name: str) -> UserRecord | None:
        """The user and its claims, read fresh on every call (one statement)."""
        rows = fetch(self._engine, _GET, {"name": name})
        return _record(rows) if rows else None

    def get_with_secret(self, name: str) -> tuple[UserRecord, str | None] | None:
        """``get`` and ``digest_secret`` in one statement: None for an unknown user, else the record and
        the digest secret, which is None exactly when ``digest_secret`` would be (disabled user, no secret
        stored, no box). Like ``digest_secret``, ValueError when the sealed secret cannot be opened."""
        rows = fetch(self._engine, _GET_WITH_SECRET, {"name": name})
        if not rows:
            return None
        record = _record(rows)
        sealed = rows[0][5]
        if self._box is None or record.disabled or sealed is None:
            return record, None
        return record, self._box.open(bytes(sealed), _aad(name))

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
        """True only for an enabled user with this password; every other answer costs the same scrypt."""
        rows = fetch(self._engine, _PASSWORD_HASH, {"name": name})
        if not rows or rows[0][1]:
            self._hasher.dummy_verify(password)
            return False
        return self._hasher.verify(password, rows[0][0])

    def digest_secret(self, name: str) -> str | None:
        """The plain password for PasswordDigest checks; None for unknown or disabled users, or no box."""
        if self._box is None:
            return None
        rows = fetch(self._engine, _DIGEST_SECRET, {"name": name})
        if not rows or rows[0][1] or rows[0][0] is None:
            if self._dummy_sealed is not None:
                self._box.open(self._dummy_sealed, _aad(""))  # the same work as for a known user
            return None
        return self._box.open(bytes(rows[0][0]), _aad(name))

    def _seal(self, name: str, password: str) -> bytes | None:
        return None if self._box is None else self._box.seal(password, _aad(name))


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
