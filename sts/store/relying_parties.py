"""Trusted relying parties and AppliesTo matching (implements ``sts.interfaces.RelyingPartyRegistry``).

Matching: the exact endpoint first, after normalisation (scheme and host case-insensitive, default port and
trailing slash ignored); else the longest ``match_prefix`` endpoint that covers the AppliesTo on a path
boundary, so ``https://rp.example`` never covers ``https://rp.example.evil.test``.

Lookups are served from an in-process index. Each request reads the ``config_version`` counter once (one
primary-key read, shared with the user cache) and the index is rebuilt when another process changed the
configuration.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from sts.model import RelyingParty
from sts.uris import DataEncryption, KeyTransport, KeyType, SignatureAlgorithm, TokenType, normalize_endpoint
from sts.store.schema import bump_config_version, config_version_now, read_config_version, relying_parties, utcnow
from sts.store.transactions import reading, writing

def check_endpoint(endpoint: str) -> None:
    """Raise ValueError unless ``endpoint`` is an absolute URL (scheme and host) or a ``urn:`` URI."""
    if not endpoint or endpoint != endpoint.strip() or any(c.isspace() for c in endpoint):
        raise ValueError(f"relying party endpoint {endpoint!r} must be a URI without whitespace")
    if endpoint[:4].lower() == "urn:":
        nid, _, nss = endpoint[4:].partition(":")
        if nid and nss:
            return
    else:
        split = urlsplit(endpoint)
        if split.scheme and split.netloc:
            return
    raise ValueError(f"relying party endpoint {endpoint!r} must be an absolute URL or a urn: URI")


def _covers(prefix: str, key: str) -> bool:
    """True when the normalised ``prefix`` endpoint covers the normalised ``key`` on a boundary."""
    if not key.startswith(prefix):
        return False
    if len(key) == len(prefix):
        return True
    boundaries = ":/?#" if prefix.startswith("urn:") else "/?#"
    return key[len(prefix)] in boundaries


@dataclass(frozen=True)
class _Index:
    version: int
    exact: dict[str, RelyingParty]
    prefixes: tuple[tuple[str, RelyingParty], ...]  # longest first

    @classmethod
    def build(cls, version: int, parties: builtins.list[RelyingParty]) -> _Index:
        keyed = [(normalize_endpoint(rp.endpoint), rp) for rp in parties]
        prefixes = sorted(((k, rp) for k, rp in keyed if rp.match_prefix), key=lambda kr: -len(kr[0]))
        return cls(version, dict(keyed), tuple(prefixes))

    def find(self, applies_to: str) -> RelyingParty | None:
        key = normalize_endpoint(applies_to)
        exact = self.exact.get(key)
        if exact is not None:
            return exact
        return next((rp for prefix, rp in self.prefixes if _covers(prefix, key)), None)


class SqlRelyingPartyStore:
    """Relying parties in SQL, with a per-process lookup index kept fresh through ``config_version``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._index: _Index | None = None

    def lookup(self, applies_to: str) -> RelyingParty | None:
        if not applies_to or not applies_to.strip():
            return None
        # Version first, rows second: at worst newer rows get cached under an older version, which only
        # costs one more rebuild on the next lookup, never a stale answer. So the version read needs no
        # transaction around it, and the common case is that single statement.
        version = config_version_now(self._engine)
        index = self._index
        if index is None or index.version != version:
            with reading(self._engine) as conn:
                # Re-read inside the snapshot the rows come from, so the pair is consistent.
                version = read_config_version(conn)
                index = _Index.build(version, _load_all(conn))
            self._index = index
        return index.find(applies_to)

    def add(self, rp: RelyingParty) -> None:
        """Register ``rp``; ValueError when the endpoint is invalid or already registered."""
        check_endpoint(rp.endpoint)
        now = utcnow()
        try:
            with writing(self._engine) as conn:
                conn.execute(insert(relying_parties).values({**_to_row(rp), "created": now, "updated": now}))
                bump_config_version(conn)
        except IntegrityError:
            raise ValueError(f"relying party {rp.endpoint} already exists") from None

    def update(self, rp: RelyingParty) -> bool:
        """Replace the policy of the registered endpoint that ``rp.endpoint`` matches; False when none does."""
        check_endpoint(rp.endpoint)
        key = normalize_endpoint(rp.endpoint)
        with writing(self._engine) as conn:
            stmt = (
                update(relying_parties)
                .where(relying_parties.c.match_key == key)
                .values({**_to_row(rp), "updated": utcnow()})
            )
            changed = conn.execute(stmt).rowcount > 0
            if changed:
                bump_config_version(conn)
        return changed

    def remove(self, endpoint: str) -> bool:
        key = normalize_endpoint(endpoint)
        with writing(self._engine) as conn:
            removed = conn.execute(delete(relying_parties).where(relying_parties.c.match_key == key)).rowcount > 0
            if removed:
                bump_config_version(conn)
        return removed

    def get(self, endpoint: str) -> RelyingParty | None:
        """The party registered under ``endpoint`` (normalised; no prefix matching)."""
        with reading(self._engine) as conn:
            row = conn.execute(
                select(relying_parties).where(relying_parties.c.match_key == normalize_endpoint(endpoint))
            ).one_or_none()
        return None if row is None else _from_row(row._mapping)

    def list(self) -> builtins.list[RelyingParty]:
        with reading(self._engine) as conn:
            return _load_all(conn)


def _load_all(conn: Connection) -> list[RelyingParty]:
    rows = conn.execute(select(relying_parties).order_by(relying_parties.c.endpoint)).all()
    return [_from_row(row._mapping) for row in rows]


def _to_row(rp: RelyingParty) -> dict[str, Any]:
    return {
        "endpoint": rp.endpoint,
        "match_key": normalize_endpoint(rp.endpoint),
        "match_prefix": rp.match_prefix,
        "cert_pem": None if rp.cert_pem is None else rp.cert_pem.decode("ascii"),
        "token_type": rp.token_type.value,
        "required_claims": list(rp.required_claims),
        "permitted_claims": list(rp.permitted_claims),
        "encrypt": rp.encrypt,
        "default_lifetime_s": int(rp.default_lifetime.total_seconds()),
        "max_lifetime_s": int(rp.max_lifetime.total_seconds()),
        "refuse_long_lifetime": rp.refuse_long_lifetime,
        "name_id_claim": rp.name_id_claim,
        "signature_algorithm": rp.signature_algorithm.value,
        "data_encryption": rp.data_encryption.value,
        "key_transport": rp.key_transport.value,
        "allowed_token_types": [t.value for t in rp.allowed_token_types],
        "allowed_key_types": [k.value for k in rp.allowed_key_types],
        "additional_audiences": list(rp.additional_audiences),
        "next_cert_pem": None if rp.next_cert_pem is None else rp.next_cert_pem.decode("ascii"),
        "next_cert_from": rp.next_cert_from,
    }


def _from_row(row: Any) -> RelyingParty:
    return RelyingParty(
        endpoint=row["endpoint"],
        cert_pem=None if row["cert_pem"] is None else row["cert_pem"].encode("ascii"),
        match_prefix=bool(row["match_prefix"]),
        token_type=TokenType(row["token_type"]),
        required_claims=tuple(row["required_claims"]),
        permitted_claims=tuple(row["permitted_claims"]),
        encrypt=bool(row["encrypt"]),
        default_lifetime=timedelta(seconds=row["default_lifetime_s"]),
        max_lifetime=timedelta(seconds=row["max_lifetime_s"]),
        refuse_long_lifetime=bool(row["refuse_long_lifetime"]),
        name_id_claim=row["name_id_claim"],
        signature_algorithm=SignatureAlgorithm(row["signature_algorithm"]),
        data_encryption=DataEncryption(row["data_encryption"]),
        key_transport=KeyTransport(row["key_transport"]),
        allowed_token_types=tuple(TokenType(t) for t in row["allowed_token_types"] or ()),
        allowed_key_types=tuple(KeyType(k) for k in row["allowed_key_types"] or ()),
        additional_audiences=tuple(row["additional_audiences"] or ()),
        next_cert_pem=None if row["next_cert_pem"] is None else row["next_cert_pem"].encode("ascii"),
        next_cert_from=row["next_cert_from"],
    )
