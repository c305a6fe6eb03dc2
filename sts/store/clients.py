"""Registered clients: principals that authenticate by signing their requests with an X.509 certificate.

A client has a NAME (the subject of its tokens), CLAIMS like a user, and exactly one certificate, found by each
of the ways a WS-Security KeyInfo can name it (X.509 Token Profile 1.1 §3.2): the certificate itself (SHA-256
fingerprint of the DER, unique), its SubjectKeyIdentifier, its SHA-1 thumbprint, or issuer and serial number.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from sts.tokens.crypto.keys import check_certificate, load_certificate
from sts.interfaces import Clock
from sts.model import ClientRecord
from sts.protocol.wsse.build import subject_key_identifier
from sts.protocol.wsse.signature import parse_issuer_name
from sts.store.prepared import Prepared, fetch
from sts.store.schema import client_claims, clients, users, utcnow
from sts.store.transactions import reading, writing
from sts.store.users import _aggregate, check_user_name


def fingerprint_hex(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


_COLUMNS = (clients.c.name, clients.c.cert_pem, clients.c.allow_sha1, clients.c.disabled)
_WITH_CLAIMS = clients.outerjoin(client_claims, client_claims.c.client_id == clients.c.id)


def _lookup(column: Any) -> Prepared:
    return Prepared(
        select(*_COLUMNS, client_claims.c.uri, client_claims.c.value)
        .select_from(_WITH_CLAIMS)
        .where(column == bindparam("key"))
        .order_by(clients.c.id, client_claims.c.position)
    )


_BY_NAME = _lookup(clients.c.name)
_BY_FINGERPRINT = _lookup(clients.c.fingerprint_sha256)
_BY_THUMBPRINT = _lookup(clients.c.thumbprint_sha1)
_BY_SKI = _lookup(clients.c.ski)
_BY_SERIAL = _lookup(clients.c.serial)


class SqlClientStore:
    """Clients in SQL; every per-request read is one prepared statement."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    # -- management ------------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        cert_pem: bytes,
        claims: Sequence[tuple[str, str]] = (),
        allow_sha1: bool = False,
    ) -> ClientRecord:
        """Register a client; ValueError (fit for a user) for a bad name or certificate, or a duplicate."""
        check_user_name(name)
        cert = load_certificate(cert_pem)
        now: datetime = self._clock()
        try:
            check_certificate(cert, now)
        except ValueError as exc:
            raise ValueError(f"refused: {exc}") from None
        row = {
            "name": name,
            "cert_pem": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "fingerprint_sha256": fingerprint_hex(cert),
            "thumbprint_sha1": cert.fingerprint(hashes.SHA1()).hex(),
            "ski": subject_key_identifier(cert).hex(),
            "issuer": cert.issuer.rfc4514_string(),
            "serial": str(cert.serial_number),
            "not_after": cert.not_valid_after_utc,
            "allow_sha1": allow_sha1,
            "disabled": False,
            "created": now,
        }
        try:
            with writing(self._engine) as conn:
                # One namespace of subjects: a client must not receive tokens in a user's name.
                if conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None:
                    raise ValueError(f"a user named {name} exists: pick another client name")
                if conn.execute(select(clients.c.id).where(clients.c.name == name)).first() is not None:
                    raise ValueError(f"client {name} already exists")
                owner = conn.execute(
                    select(clients.c.name).where(clients.c.fingerprint_sha256 == row["fingerprint_sha256"])
                ).scalar_one_or_none()
                if owner is not None:
                    raise ValueError(f"this certificate is already registered for client {owner}")
                key = conn.execute(insert(clients).values(row)).inserted_primary_key
                assert key is not None
                rows = [
                    {"client_id": int(key[0]), "position": i, "uri": uri, "value": value}
                    for i, (uri, value) in enumerate(claims)
                ]
                if rows:
                    conn.execute(insert(client_claims), rows)
        except IntegrityError:
            raise ValueError(f"client {name} already exists") from None
        return ClientRecord(name, cert, _aggregate(claims), allow_sha1)

    def remove(self, name: str) -> bool:
        with writing(self._engine) as conn:
            return conn.execute(delete(clients).where(clients.c.name == name)).rowcount > 0

    def set_disabled(self, name: str, disabled: bool) -> bool:
        with writing(self._engine) as conn:
            return conn.execute(update(clients).where(clients.c.name == name).values(disabled=disabled)).rowcount > 0

    # -- reading ---------------------------------------------------------------------------------------

    def get(self, name: str) -> ClientRecord | None:
        return _first(fetch(self._engine, _BY_NAME, {"key": name}))

    def list(self) -> builtins.list[ClientRecord]:
        """Every client, by name."""
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(*_COLUMNS, client_claims.c.uri, client_claims.c.value)
                .select_from(_WITH_CLAIMS)
                .order_by(clients.c.name, client_claims.c.position)
            ).all()
        return _records(rows)

    def by_certificate(self, cert: x509.Certificate) -> ClientRecord | None:
        """The client registered with exactly this certificate (same DER), or None."""
        return _first(fetch(self._engine, _BY_FINGERPRINT, {"key": fingerprint_hex(cert)}))

    def by_thumbprint(self, sha1: bytes) -> ClientRecord | None:
        return _first(fetch(self._engine, _BY_THUMBPRINT, {"key": sha1.hex()}))

    def by_ski(self, ski: bytes) -> ClientRecord | None:
        return _unique(_records(fetch(self._engine, _BY_SKI, {"key": ski.hex()})))

    def by_issuer_serial(self, issuer: str | x509.Name, serial: int) -> ClientRecord | None:
        """The client whose certificate has this serial number and issuer (compared as X.500 names)."""
        name = parse_issuer_name(issuer) if isinstance(issuer, str) else issuer
        if name is None:
            return None
        records = _records(fetch(self._engine, _BY_SERIAL, {"key": str(serial)}))
        return _unique([r for r in records if r.certificate.issuer == name])


def _records(rows: Sequence[Any]) -> builtins.list[ClientRecord]:
    """ClientRecords from (name, cert_pem, allow_sha1, disabled, uri, value) rows, grouped in row order."""
    grouped: dict[str, tuple[Any, builtins.list[tuple[str, str]]]] = {}
    for row in rows:
        entry = grouped.setdefault(row[0], (row, []))
        if row[4] is not None:
            entry[1].append((row[4], row[5]))
    return [
        ClientRecord(
            name=first[0],
            certificate=x509.load_pem_x509_certificate(first[1].encode("ascii")),
            claims=_aggregate(pairs),
            allow_sha1=bool(first[2]),
            disabled=bool(first[3]),
        )
        for first, pairs in grouped.values()
    ]


def _first(rows: Sequence[Any]) -> ClientRecord | None:
    records = _records(rows)
    return records[0] if records else None


def _unique(records: builtins.list[ClientRecord]) -> ClientRecord | None:
    # Two clients behind one SKI (a re-issued certificate for the same key) would be ambiguous: refuse both.
    return records[0] if len(records) == 1 else None
