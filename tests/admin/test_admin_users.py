"""The admin core's user operations, without HTTP: real SQLite, every change audited, every refusal typed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sts.admin import users
from sts.admin.base import Actor, AdminContext, Conflict, InvalidInput, NotFound
from sts.config import Settings
from sts.store.audit import AuditRecord, AuditTrail
from sts.store.database import open_database
from sts.store.passwords import PasswordHasher, SecretBox

GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
ROOT = Actor.console("root")
GOOD_PASSWORD = "correct horse battery"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AdminContext]:
    stores = open_database(f"sqlite:///{tmp_path / 'sts.db'}", hasher=PasswordHasher(n=2**4),
                           secret_box=SecretBox(bytes(range(32))))
    yield AdminContext.for_stores(stores, Settings(home=tmp_path))
    stores.close()


def trail(ctx: AdminContext) -> list[AuditRecord]:
    return AuditTrail(ctx.stores.engine).search()


def test_add_user_expands_short_names_and_audits_without_the_password(ctx: AdminContext) -> None:
    change = users.add_user(ctx, ROOT, "alice", "pw", [("givenname", "Alice"), (EMAIL, "a@x.example")])
    assert [(c.uri, c.values) for c in change.user.claims] == [(GIVEN, ("Alice",)), (EMAIL, ("a@x.example",))]
    assert change.warnings == ()
    [entry] = trail(ctx)
    assert (entry.event, entry.actor, entry.outcome, entry.subject) == ("user.add", "root", "ok", "alice")
    assert entry.detail["before"] is None
    assert entry.detail["after"] == {"name": "alice", "admin": False, "disabled": False,
                                     "claims": {GIVEN: ["Alice"], EMAIL: ["a@x.example"]}}
    assert "pw" not in repr(entry.detail)


def test_unknown_short_name_is_refused_listing_the_known_ones(ctx: AdminContext) -> None:
    with pytest.raises(InvalidInput) as caught:
        users.add_user(ctx, ROOT, "alice", "pw", [("givname", "Alice")])
    assert caught.value.field == "claims" and "givenname" in caught.value.message and "surname" in caught.value.message
    assert ctx.stores.users.get("alice") is None
    [entry] = trail(ctx)
    assert entry.outcome == "refused" and entry.detail["field"] == "claims"


def test_unknown_uri_is_stored_with_a_warning(ctx: AdminContext) -> None:
    change = users.add_user(ctx, Actor.cli(), "bob", "pw", [("urn:example:age", "42")])
    assert change.user.claims[0].uri == "urn:example:age"
    assert len(change.warnings) == 1 and "not in the claim dictionary" in change.warnings[0]
    [entry] = trail(ctx)
    assert entry.actor is not None and entry.actor.startswith("cli:")
    assert entry.detail["warnings"] == list(change.warnings)


def test_duplicate_bad_name_and_empty_password(ctx: AdminContext) -> None:
    users.add_user(ctx, ROOT, "alice", "pw")
    with pytest.raises(Conflict, match="already exists"):
        users.add_user(ctx, ROOT, "alice", "pw")
    with pytest.raises(InvalidInput, match="whitespace") as bad_name:
        users.add_user(ctx, ROOT, "al ice", "pw")
    assert bad_name.value.field == "name"
    with pytest.raises(InvalidInput, match="give a password"):
        users.add_user(ctx, ROOT, "carol", "")


@pytest.mark.parametrize(("name", "password", "message"), [
    ("eve", "short", "at least 12 characters"),
    ("administrator", "Administrator", "may not be the user name"),
])
def test_admin_password_policy(ctx: AdminContext, name: str, password: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        users.add_admin(ctx, ROOT, name, password)
    assert caught.value.field == "password" and ctx.stores.users.get(name) is None
    assert trail(ctx)[0].outcome == "refused" and password not in repr(trail(ctx)[0].detail)


def test_admin_password_minimum_is_a_setting(ctx: AdminContext, tmp_path: Path) -> None:
    lenient = AdminContext.for_stores(ctx.stores, Settings(home=tmp_path, admin_password_min_length=4))
    change = users.add_user(lenient, ROOT, "eve", "s3cr", admin=True)
    assert change.user.admin and trail(ctx)[0].event == "admin.add"
    with pytest.raises(InvalidInput, match="at least 12"):
        users.set_password(ctx, ROOT, "eve", "tiny")
    users.set_password(ctx, ROOT, "eve", GOOD_PASSWORD)
    assert ctx.stores.users.check_password("eve", GOOD_PASSWORD)


def test_set_claims_records_before_and_after(ctx: AdminContext) -> None:
    users.add_user(ctx, ROOT, "alice", "pw", [("givenname", "Alice")])
    change = users.set_claims(ctx, ROOT, "alice", [("emailaddress", "a@x.example")])
    assert [c.uri for c in change.user.claims] == [EMAIL]
    entry = trail(ctx)[0]
    assert entry.event == "user.update"
    assert entry.detail["before"]["claims"] == {GIVEN: ["Alice"]}
    assert entry.detail["after"]["claims"] == {EMAIL: ["a@x.example"]}


def test_password_reset_disable_and_remove(ctx: AdminContext) -> None:
    users.add_user(ctx, ROOT, "alice", "pw")
    users.set_password(ctx, ROOT, "alice", "new")
    assert ctx.stores.users.check_password("alice", "new")
    assert trail(ctx)[0].event == "user.password" and "new" not in repr(trail(ctx)[0].detail)
    assert users.set_disabled(ctx, ROOT, "alice", True).user.disabled
    entry = trail(ctx)[0]
    assert entry.detail["before"]["disabled"] is False and entry.detail["after"]["disabled"] is True
    removed = users.remove_user(ctx, ROOT, "alice")
    assert removed.name == "alice" and ctx.stores.users.get("alice") is None
    entry = trail(ctx)[0]
    assert (entry.event, entry.detail["after"]) == ("user.remove", None)


@pytest.mark.parametrize("operation", ["claims", "password", "disable", "remove", "promote"])
def test_unknown_user_is_not_found(ctx: AdminContext, operation: str) -> None:
    calls: dict[str, Callable[[], object]] = {"claims": lambda: users.set_claims(ctx, ROOT, "ghost", []),
             "password": lambda: users.set_password(ctx, ROOT, "ghost", "pw"),
             "disable": lambda: users.set_disabled(ctx, ROOT, "ghost", True),
             "remove": lambda: users.remove_user(ctx, ROOT, "ghost"),
             "promote": lambda: users.promote(ctx, ROOT, "ghost", GOOD_PASSWORD)}
    with pytest.raises(NotFound, match="no user named ghost"):
        calls[operation]()
    assert trail(ctx)[0].outcome == "refused"


def test_an_administrator_cannot_lock_themselves_out(ctx: AdminContext) -> None:
    users.add_admin(ctx, Actor.cli(), "root", GOOD_PASSWORD)
    for call in (lambda: users.set_disabled(ctx, ROOT, "root", True), lambda: users.remove_user(ctx, ROOT, "root"),
                 lambda: users.demote(ctx, ROOT, "root")):
        with pytest.raises(InvalidInput, match="your own account"):
            call()
    record = ctx.stores.users.get("root")
    assert record is not None and record.admin and not record.disabled


def test_promote_needs_a_policy_password_and_demote(ctx: AdminContext) -> None:
    users.add_user(ctx, ROOT, "bob", "pw")
    with pytest.raises(InvalidInput, match="at least 12"):
        users.promote(ctx, ROOT, "bob", "pw")
    change = users.promote(ctx, ROOT, "bob", GOOD_PASSWORD)
    assert change.user.admin and ctx.stores.users.check_password("bob", GOOD_PASSWORD)
    entry = trail(ctx)[0]
    assert entry.event == "admin.add" and entry.detail["after"]["admin"] is True
    with pytest.raises(Conflict, match="already an administrator"):
        users.promote(ctx, ROOT, "bob", GOOD_PASSWORD)
    assert not users.demote(ctx, ROOT, "bob").user.admin


def test_parse_claim_lines() -> None:
    assert users.parse_claim_lines(["givenname=Alice", "", f"{EMAIL} = a@x"]) == [
        ("givenname", "Alice"), (EMAIL, "a@x")]
    with pytest.raises(InvalidInput, match="is not NAME=VALUE or URI=VALUE"):
        users.parse_claim_lines(["oops"])
