"""Issued tokens for administrators: search, a readable detail, and revocation (Cancel by the administrator).

The detail speaks in rows an administrator reads (claims as a table of short name, URI and values; an empty
value as "—"), never Python reprs. Revocation records ``token.cancel`` with the status before and after.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from sts.admin.base import Actor, AdminContext, Change, Conflict, InvalidInput, NotFound, record_change
from sts.admin.base import refusals_audited
from sts.model import TokenRecord
from sts.claim_dictionary import short_name

EMPTY = "—"
STATUSES = ("valid", "cancelled", "renewed")
MAX_LIMIT = 1000
# Detail keys that could hold key material: never shown (the store has none; belt and braces).
_SECRET_WORDS = ("proof", "secret", "password", "private", "entropy")
_LABELS = {
    "name_id_format": "Name ID format", "authn_instant": "Authenticated at", "authn_method": "Authentication method",
    "key_type": "Key type", "renew_allow": "Renewal allowed", "renew_ok": "Renewal after expiry allowed",
    "encrypted": "Encrypted", "signature_algorithm": "Signature algorithm", "data_encryption": "Data encryption",
    "key_transport": "Key transport", "identity": "Authenticated identity", "delegation": "Delegation",
    "delegates": "Delegates",
}


@dataclass(frozen=True)
class TokenQuery:
    subject: str | None = None
    applies_to: str | None = None
    status: str | None = None
    limit: int = 100

    @classmethod
    def from_text(cls, values: Mapping[str, str]) -> TokenQuery:
        """From query-string or form values (empty means no filter); a bad status or limit is InvalidInput."""
        status = values.get("status") or None
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        limit_text = (values.get("limit") or "100").strip()
        if not limit_text.isdigit() or int(limit_text) < 1:
            raise InvalidInput("limit must be a whole number, at least 1", field="limit")
        return cls(values.get("subject") or None, values.get("applies_to") or None, status,
                   min(int(limit_text), MAX_LIMIT))


@dataclass(frozen=True)
class ClaimRow:
    name: str  # the short name, or the URI when the dictionary does not know it
    uri: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class TokenDetail:
    """One token as an administrator reads it: the record, its claims, and the other details as text rows."""

    record: TokenRecord
    claims: tuple[ClaimRow, ...]
    rows: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        return {"token_id": r.token_id, "token_type": r.token_type.value, "subject": r.subject,
                "applies_to": r.applies_to, "issued": r.issued.isoformat(), "expires": r.expires.isoformat(),
                "status": r.status, "renewal_count": r.renewal_count, "requester": r.requester,
                "claims": [{"name": c.name, "uri": c.uri, "values": list(c.values)} for c in self.claims],
                "details": dict(self.rows)}


def list_tokens(ctx: AdminContext, query: TokenQuery) -> list[TokenRecord]:
    """Tokens matching every given filter, newest first."""
    return ctx.stores.tokens.search(subject=query.subject, applies_to=query.applies_to, status=query.status,
                                    limit=max(1, min(query.limit, MAX_LIMIT)))


def token_detail(ctx: AdminContext, token_id: str) -> TokenDetail:
    """The token for display, or NotFound."""
    record = ctx.stores.tokens.get(token_id)
    if record is None:
        raise NotFound(f"no token {token_id}", field="token_id")
    return describe(record)


def describe(record: TokenRecord) -> TokenDetail:
    """The claims as rows and every other recorded detail as (label, text), empty values as "—"."""
    details = _mapping(record.details)
    claims = tuple(ClaimRow(short_name(uri), uri, values) for uri, values in _claims(details.get("claims")))
    rows = tuple((_label(key), display(value)) for key, value in details.items()
                 if key != "claims" and not any(word in key.lower() for word in _SECRET_WORDS))
    return TokenDetail(record, claims, rows)


def cancel_token(ctx: AdminContext, actor: Actor, token_id: str) -> TokenRecord:
    """Revoke a valid token (Validate then answers it is invalid; Renew refuses it). Event ``token.cancel``."""
    with refusals_audited(ctx, actor, "token.cancel", token_id):
        before = ctx.stores.tokens.get(token_id)
        if before is None:
            raise NotFound(f"no token {token_id}", field="token_id")
        if before.status != "valid" or not ctx.stores.tokens.transition(token_id, "valid", "cancelled"):
            raise Conflict(f"token {token_id} is not valid any more (it is {before.status})", field="token_id")
    after = ctx.stores.tokens.get(token_id)
    assert after is not None  # tokens are never deleted by a transition
    record_change(ctx.audit, actor, Change("token.cancel", token_id, _token_data(before), _token_data(after)))
    return after


def display(value: object) -> str:
    """A recorded value as text: "—" for nothing, yes/no for flags, lists joined, delegates by name and time."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        if "name" in value:
            when = value.get("instant")
            return f"{value['name']} (at {when})" if when else str(value["name"])
        return ", ".join(f"{k}: {display(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(display(v) for v in value)
    enum_value = getattr(value, "value", None)
    if enum_value is not None and not isinstance(value, (int, float, str)):
        return display(enum_value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _token_data(record: TokenRecord) -> dict[str, object]:
    return {"token_id": record.token_id, "subject": record.subject, "applies_to": record.applies_to,
            "status": record.status}


def _mapping(details: object) -> dict[str, object]:
    """The recorded details as a dict, whether the store hands a mapping or a typed record."""
    if isinstance(details, Mapping):  # the JSON form (a typed record is a mapping of it too)
        return {str(k): v for k, v in details.items()}
    if is_dataclass(details) and not isinstance(details, type):
        return {k: v for k, v in asdict(details).items() if not k.startswith("_")}
    return {}


def _claims(recorded: object) -> list[tuple[str, tuple[str, ...]]]:
    if not isinstance(recorded, (list, tuple)):
        return []
    rows = []
    for item in recorded:
        item = _mapping(item)
        if "uri" in item:
            values = item.get("values") or ()
            rows.append((str(item["uri"]), tuple(str(v) for v in values) if isinstance(values, (list, tuple))
                         else (str(values),)))
    return rows


def _label(key: str) -> str:
    return _LABELS.get(key, key.replace("_", " ").capitalize())


__all__ = ["EMPTY", "ClaimRow", "TokenDetail", "TokenQuery", "cancel_token", "describe", "display", "list_tokens",
           "token_detail"]
