"""The admin core's token operations, without HTTP: search, a readable detail, audited revocation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sts.admin import tokens
from sts.admin.base import Actor, AdminContext, Conflict, InvalidInput, NotFound
from sts.config import Settings
from sts.model import TokenRecord
from sts.store.audit import AuditTrail
from sts.store.database import open_database
from sts.store.passwords import PasswordHasher, SecretBox
from sts.uris import TokenType

GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ROOT = Actor.console("root")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AdminContext]:
    stores = open_database(f"sqlite:///{tmp_path / 'sts.db'}", hasher=PasswordHasher(n=2**4),
                           secret_box=SecretBox(bytes(range(32))))
    yield AdminContext.for_stores(stores, Settings(home=tmp_path), clock=lambda: NOW)
    stores.close()


def put(ctx: AdminContext, token_id: str, subject: str = "alice", **details: object) -> None:
    ctx.stores.tokens.put(TokenRecord(token_id, TokenType.SAML20, subject, "https://rp.example/", NOW,
                                      NOW + timedelta(hours=1), details=dict(details)))


def test_search_filters_and_query_from_text(ctx: AdminContext) -> None:
    put(ctx, "_a")
    put(ctx, "_b", subject="bob")
    assert [t.token_id for t in tokens.list_tokens(ctx, tokens.TokenQuery.from_text({"subject": "bob"}))] == ["_b"]
    assert len(tokens.list_tokens(ctx, tokens.TokenQuery.from_text({"subject": "", "status": "valid"}))) == 2
    assert tokens.TokenQuery.from_text({"limit": "99999"}).limit == tokens.MAX_LIMIT
    with pytest.raises(InvalidInput, match="status must be one of") as caught:
        tokens.TokenQuery.from_text({"status": "bogus"})
    assert caught.value.field == "status"
    with pytest.raises(InvalidInput, match="whole number"):
        tokens.TokenQuery.from_text({"limit": "-3"})


def test_detail_shows_claims_as_rows_and_empty_values_as_a_dash(ctx: AdminContext) -> None:
    put(ctx, "_a", claims=[{"uri": GIVEN, "values": ["Alice"]}, {"uri": "urn:x:age", "values": ["41", "42"]}],
        delegation=None, delegates=[], encrypted=True, renew_ok=False, proof_secret="never shown",
        name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        key_type="bearer")
    detail = tokens.token_detail(ctx, "_a")
    assert [(c.name, c.uri, c.values) for c in detail.claims] == [
        ("givenname", GIVEN, ("Alice",)), ("urn:x:age", "urn:x:age", ("41", "42"))]
    rows = dict(detail.rows)
    assert rows["Delegation"] == "—" and rows["Delegates"] == "—"
    assert rows["Encrypted"] == "yes" and rows["Renewal after expiry allowed"] == "no"
    assert rows["Key type"] == "bearer"
    assert not any("proof" in label.lower() or "never shown" in text for label, text in detail.rows)
    assert not any(text in ("None", "[]", "{}") or text.startswith(("[", "{")) for _, text in detail.rows)
    assert detail.to_dict()["claims"][0] == {"name": "givenname", "uri": GIVEN, "values": ["Alice"]}


def test_display_of_delegates_and_times() -> None:
    assert tokens.display([{"name": "svc", "instant": "2026-01-01T00:00:00+00:00"}]) == \
        "svc (at 2026-01-01T00:00:00+00:00)"
    assert tokens.display(NOW) == NOW.isoformat()
    assert tokens.display(TokenType.SAML11) == TokenType.SAML11.value
    assert tokens.display(0) == "0" and tokens.display(None) == "—"


def test_unknown_token_is_not_found(ctx: AdminContext) -> None:
    with pytest.raises(NotFound, match="no token _missing"):
        tokens.token_detail(ctx, "_missing")
    with pytest.raises(NotFound, match="no token _missing"):
        tokens.cancel_token(ctx, ROOT, "_missing")
    [entry] = AuditTrail(ctx.stores.engine).search()
    assert (entry.event, entry.outcome, entry.subject) == ("token.cancel", "refused", "_missing")


def test_cancel_is_audited_and_cannot_repeat(ctx: AdminContext) -> None:
    put(ctx, "_a")
    assert tokens.cancel_token(ctx, ROOT, "_a").status == "cancelled"
    [entry] = AuditTrail(ctx.stores.engine).search()
    assert (entry.event, entry.actor, entry.outcome) == ("token.cancel", "root", "ok")
    assert entry.detail["before"]["status"] == "valid" and entry.detail["after"]["status"] == "cancelled"
    with pytest.raises(Conflict, match="not valid any more \\(it is cancelled\\)"):
        tokens.cancel_token(ctx, ROOT, "_a")
