"""X.509 clients: principals that authenticate by signing their requests with a registered certificate.

Adding one checks its name (one namespace with users: a client never gets tokens in a user's name), its
certificate (a certificate, not a private key, valid now, not registered for another client) and its claims
(through the claim dictionary, as for users). Accepting RSA-SHA1 signatures from it is a legacy choice that
``allow_sha1`` opts in to, with the warning of :mod:`sts.admin.algorithms`. Events ``client.add`` and
``client.remove``, with the client as plain data (name, certificate subject, fingerprint and expiry, claims).
"""

from __future__ import annotations

from dataclasses import dataclass

from sts.admin.algorithms import check_legacy_names
from sts.admin.base import (Actor, AdminContext, Change, Conflict, InvalidFields, InvalidInput, NotFound,
                            record_change, refusals_audited)
from sts.admin.certificates import CertificateSummary, certificate_pem, read_certificate
from sts.admin.users import ClaimPairs, resolve_claims
from sts.model import ClientRecord
from sts.store.users import check_user_name


@dataclass(frozen=True)
class ClientChange:
    """What an operation left: the client as stored now, and the warnings the actor should read."""

    client: ClientRecord
    warnings: tuple[str, ...] = ()


def client_data(record: ClientRecord) -> dict[str, object]:
    """A client as plain data (audit before/after, JSON): its certificate summarised, never a key."""
    return {"name": record.name, "certificate": CertificateSummary.of(record.certificate).as_data(),
            "claims": {claim.uri: list(claim.values) for claim in record.claims},
            "allow_sha1": record.allow_sha1, "disabled": record.disabled}


def list_clients(ctx: AdminContext) -> list[ClientRecord]:
    """Every client, by name."""
    return ctx.stores.clients.list()


def get_client(ctx: AdminContext, name: str) -> ClientRecord:
    """The client, or NotFound."""
    record = ctx.stores.clients.get(name)
    if record is None:
        raise NotFound(f"no client named {name}", field="name")
    return record


def add_client(ctx: AdminContext, actor: Actor, name: str, certificate: bytes, claims: ClaimPairs = (), *,
               allow_sha1: bool = False) -> ClientChange:
    """Register a client: ``name`` is the subject of its tokens, ``certificate`` (PEM or DER) what it signs with.
    ``allow_sha1`` is the explicit opt-in to its RSA-SHA1 signatures (legacy). Event ``client.add``."""
    with refusals_audited(ctx, actor, "client.add", name):
        errors: dict[str, str] = {}
        try:
            check_user_name(name)
        except ValueError as exc:
            errors["name"] = str(exc).replace("user name", "client name")
        cert = None
        try:
            cert = read_certificate(certificate, ctx.clock(), field="cert")
        except InvalidInput as exc:
            errors["cert"] = exc.message
        resolved: list[tuple[str, str]] = []
        warnings: tuple[str, ...] = ()
        try:
            resolved, warnings = resolve_claims(claims)
        except InvalidInput as exc:
            errors["claims"] = exc.message
        if errors or cert is None:
            raise InvalidFields(errors)
        warnings = (*check_legacy_names([("allow_sha1", "rsa-sha1")] if allow_sha1 else [],
                                        subject=f"client {name}", opted_in=True), *warnings)
        try:
            record = ctx.stores.clients.add(name, certificate_pem(cert), resolved, allow_sha1=allow_sha1)
        except ValueError as exc:  # what is left are collisions: the name (a user's or a client's), the certificate
            message = str(exc)
            raise Conflict(message, field="cert" if "certificate" in message else "name") from None
    record_change(ctx.audit, actor, Change("client.add", name, None, client_data(record), warnings))
    return ClientChange(record, warnings)


def remove_client(ctx: AdminContext, actor: Actor, name: str) -> ClientRecord:
    """Remove the client: its signed requests are refused from now on. Event ``client.remove``."""
    with refusals_audited(ctx, actor, "client.remove", name):
        record = get_client(ctx, name)
        if not ctx.stores.clients.remove(name):
            raise NotFound(f"no client named {name}", field="name")
    record_change(ctx.audit, actor, Change("client.remove", name, client_data(record), None))
    return record


__all__ = ["ClientChange", "add_client", "client_data", "get_client", "list_clients", "remove_client"]
