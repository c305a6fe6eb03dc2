"""Issued tokens, for Validate/Renew/Cancel and the console (implements ``sts.interfaces.TokenStore``).

Only metadata is kept (never a proof key). Every write is its own committed transaction, so a process that
dies after ``put`` returns has lost nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from sts.model import TokenDetails, TokenRecord
from sts.uris import TokenType
from sts.store.prepared import Prepared, fetch, write_later
from sts.store.schema import tokens
from sts.store.transactions import reading, writing

_FIELDS = {f.name for f in dataclasses.fields(TokenRecord)}
_UPDATABLE = _FIELDS - {"token_id"}
_FIELD_ORDER = tuple(f.name for f in dataclasses.fields(TokenRecord))
# One INSERT per issued token: at once outside a request, else with the request's other rows before its answer.
_PUT = Prepared(insert(tokens).values({name: bindparam(name, type_=tokens.c[name].type) for name in _FIELD_ORDER}))
_COLUMNS = tuple(tokens.c[name] for name in _FIELD_ORDER)
# Validate, Renew and Cancel look a token up by id or hash: a prepared read, not a Core statement built, compiled and
# processed each time (that took 150 µs of a Validate's CPU; this, about a tenth).
_GET = Prepared(select(*_COLUMNS).where(tokens.c.token_id == bindparam("token_id")))
# A hash is of one token's exact bytes, so at most one row holds it (a LIMIT would make SQLite want an OFFSET).
_GET_BY_HASH = Prepared(select(*_COLUMNS).where(tokens.c.token_hash == bindparam("token_hash")))


class SqlTokenStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect
        #: The dialect's own result processors of the columns ``get`` reads (UtcDateTime, JSON), as Core applies them.
        self._results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in _COLUMNS)

    def put(self, record: TokenRecord) -> None:
        """Record a newly issued token; ValueError when its id is already recorded."""
        row = {name: getattr(record, name) for name in _FIELD_ORDER}
        details = record.details
        # TokenDetails keeps its JSON form; dict() of it would rebuild the mapping key by key.
        row["details"] = details.to_json() if isinstance(details, TokenDetails) else dict(details)
        try:
            # Committed before the answer leaves, with the request's other rows (sts.store.prepared.write_later).
            write_later(self._engine, _PUT, _to_row(row))
        except IntegrityError:
            raise ValueError(f"token {record.token_id} already recorded") from None

    def get(self, token_id: str) -> TokenRecord | None:
        return self._first(_GET, {"token_id": token_id})

    def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The token recorded with this hash (how an encrypted token the STS cannot read is recognised)."""
        return self._first(_GET_BY_HASH, {"token_hash": token_hash})

    def _first(self, prepared: Prepared, values: dict[str, str]) -> TokenRecord | None:
        rows = fetch(self._engine, prepared, values)
        if not rows:
            return None
        read = (raw if process is None else process(raw) for raw, process in zip(rows[0], self._results, strict=True))
        return _from_row(dict(zip(_FIELD_ORDER, read, strict=True)))

    def transition(self, token_id: str, from_status: str, to_status: str) -> bool:
        """Move a token from one status to another atomically; False when it was not in ``from_status``."""
        with writing(self._engine) as conn:
            stmt = (update(tokens).where(tokens.c.token_id == token_id, tokens.c.status == from_status)
                    .values(status=to_status))
            return conn.execute(stmt).rowcount > 0

    def update(self, token_id: str, **changes: object) -> bool:
        """Change fields of a recorded token (e.g. ``status``, ``expires``); False when it is unknown."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise TypeError(f"TokenRecord fields that cannot be updated: {', '.join(sorted(unknown))}")
        if not changes:
            return self.get(token_id) is not None
        with writing(self._engine) as conn:
            stmt = update(tokens).where(tokens.c.token_id == token_id).values(_to_row(dict(changes)))
            return conn.execute(stmt).rowcount > 0

    def search(
        self,
        subject: str | None = None,
        applies_to: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[TokenRecord]:
        """Tokens matching every given filter, newest first."""
        stmt = select(tokens).order_by(tokens.c.issued.desc(), tokens.c.token_id).limit(limit)
        if subject is not None:
            stmt = stmt.where(tokens.c.subject == subject)
        if applies_to is not None:
            stmt = stmt.where(tokens.c.applies_to == applies_to)
        if status is not None:
            stmt = stmt.where(tokens.c.status == status)
        with reading(self._engine) as conn:
            return [_from_row(row._mapping) for row in conn.execute(stmt)]

    def counts_since(self, since: datetime) -> dict[str, int]:
        """How many tokens issued at or after ``since`` are in each status, e.g. ``{"valid": 3, "cancelled": 1}``."""
        stmt = (
            select(tokens.c.status, func.count())
            .where(tokens.c.issued >= since)
            .group_by(tokens.c.status)
        )
        with reading(self._engine) as conn:
            rows: list[Any] = list(conn.execute(stmt))
        return {str(status): int(count) for status, count in rows}


def _to_row(values: dict[str, Any]) -> dict[str, Any]:
    token_type = values.get("token_type")
    if isinstance(token_type, TokenType):
        values["token_type"] = token_type.value
    return values


def _from_row(row: Any) -> TokenRecord:
    values = {name: row[name] for name in _FIELDS}
    values["token_type"] = TokenType(values["token_type"])
    values["details"] = dict(values["details"] or {})
    return TokenRecord(**values)
