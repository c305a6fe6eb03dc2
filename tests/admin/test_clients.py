"""The X.509 client operations of the admin core, without HTTP: add, list, remove, and every refusal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from signing import key_pem, make_client
from sts.admin import clients as core
from sts.admin.algorithms import LEGACY
from sts.admin.base import Actor, AdminContext, Conflict, InvalidFields, InvalidInput, NotFound, field_errors
from sts.claim_dictionary import BY_NAME
from sts.store.audit import AuditRecord
from sts.tokens.crypto.keys import fingerprint_sha256

LastAudit = Callable[[str], AuditRecord]
ROLE = BY_NAME["role"].uri


@pytest.fixture(scope="module")
def client_pem() -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of a client."""
    key, _, pem = make_client("svc")
    return pem, key_pem(key)


def test_add_stores_the_client_with_resolved_claims_and_audits_it(ctx: AdminContext, actor: Actor,
                                                                    client_pem: tuple[bytes, bytes],
                                                                    last_audit: LastAudit) -> None:
    change = core.add_client(ctx, actor, "svc", client_pem[0], [("role", "robot"), ("urn:c:team", "blue")])
    record = ctx.stores.clients.get("svc")
    assert record is not None and record.certificate == change.client.certificate
    assert [(c.uri, c.values) for c in record.claims] == [(ROLE, ("robot",)), ("urn:c:team", ("blue",))]
    assert len(change.warnings) == 1 and "urn:c:team is not in the claim dictionary" in change.warnings[0]
    audit = last_audit("client.add")
    assert (audit.actor, audit.outcome, audit.subject, audit.detail["before"]) == ("root", "ok", "svc", None)
    after = audit.detail["after"]
    assert after["certificate"]["fingerprint"] == fingerprint_sha256(record.certificate)
    assert after["claims"] == {ROLE: ["robot"], "urn:c:team": ["blue"]} and after["allow_sha1"] is False
    assert "BEGIN" not in str(audit.detail)


def test_der_is_accepted_and_sha1_is_a_legacy_opt_in_with_its_warning(ctx: AdminContext, actor: Actor,
                                                                      client_pem: tuple[bytes, bytes],
                                                                      last_audit: LastAudit) -> None:
    from cryptography import x509

    der = x509.load_pem_x509_certificate(client_pem[0]).public_bytes(Encoding.DER)
    change = core.add_client(ctx, actor, "legacy", der, allow_sha1=True)
    assert change.client.allow_sha1
    assert change.warnings == (f"legacy algorithm rsa-sha1 for client legacy: {LEGACY['rsa-sha1']}",)
    assert last_audit("client.add").detail["warnings"] == list(change.warnings)


def test_every_bad_input_is_reported_at_once(ctx: AdminContext, actor: Actor, client_pem: tuple[bytes, bytes],
                                             last_audit: LastAudit) -> None:
    with pytest.raises(InvalidFields) as refused:
        core.add_client(ctx, actor, "two words", client_pem[1], [("bogusclaimname", "x")])
    errors = refused.value.errors
    assert set(errors) == {"name", "cert", "claims"}
    assert "client name 'two words' contains whitespace" in errors["name"]
    assert "this is a private key" in errors["cert"]
    assert "unknown claim name 'bogusclaimname'" in errors["claims"] and "emailaddress" in errors["claims"]
    assert last_audit("client.add").outcome == "refused" and ctx.stores.clients.list() == []


def test_an_expired_certificate_is_refused(ctx: AdminContext, actor: Actor) -> None:
    _, _, old = make_client("old", not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    with pytest.raises(InvalidInput) as refused:
        core.add_client(ctx, actor, "old", old)
    assert "the certificate expired" in field_errors(refused.value)["cert"]


def test_collisions_are_conflicts(ctx: AdminContext, actor: Actor, client_pem: tuple[bytes, bytes]) -> None:
    core.add_client(ctx, actor, "svc", client_pem[0])
    with pytest.raises(Conflict, match="already exists") as same_name:
        core.add_client(ctx, actor, "svc", make_client("other")[2])
    assert same_name.value.field == "name"
    with pytest.raises(Conflict, match="already registered for client svc") as same_cert:
        core.add_client(ctx, actor, "svc2", client_pem[0])
    assert same_cert.value.field == "cert"
    ctx.stores.users.add("alice", "pw")
    with pytest.raises(Conflict, match="a user named alice exists"):
        core.add_client(ctx, actor, "alice", make_client("alice")[2])


def test_list_get_and_remove(ctx: AdminContext, actor: Actor, client_pem: tuple[bytes, bytes],
                             last_audit: LastAudit) -> None:
    core.add_client(ctx, actor, "svc", client_pem[0], [("role", "robot")])
    assert [c.name for c in core.list_clients(ctx)] == ["svc"]
    assert core.get_client(ctx, "svc").name == "svc"
    removed = core.remove_client(ctx, actor, "svc")
    assert removed.name == "svc" and ctx.stores.clients.get("svc") is None
    audit = last_audit("client.remove")
    assert audit.detail["before"]["claims"] == {ROLE: ["robot"]} and audit.detail["after"] is None
    with pytest.raises(NotFound, match="no client named svc"):
        core.remove_client(ctx, actor, "svc")
    assert last_audit("client.remove").outcome == "refused"
    with pytest.raises(NotFound):
        core.get_client(ctx, "svc")
