"""Keys shared by every node: signing keys and the secrets key in the database, sealed under a key-encryption key.

``key_source`` says where a node's keys come from:

* ``files``: the home's ``keys/`` (``sts.tokens.keyring.Keyring``) and ``keys/secrets.key``: one node.
* ``database``: the table ``key_material``. Each private key, and the secrets key (console sessions and CSRF,
  passwords at rest), is sealed with AES-256-GCM under the key-encryption key (KEK): 32 random bytes, base64, in
  the environment variable named by ``key_encryption_key_env``, the same on every node and never in the database.
  The associated data binds a sealed value to its row (kind, id, the KEK's id, the certificate): a value moved to
  another row, or a certificate swapped under a key, does not open. The rollover schedule is the rows' times.
* ``pkcs11``: the signing keys stay in an HSM (``sts.tokens.crypto.pkcs11``); the rows of ``key_material`` name
  them by label (the schedule is in the database as above). The secrets key is a symmetric secret the nodes must
  all hold in memory (an HMAC key and an AES key used per request), so it is kept as with ``database``: sealed
  under the KEK in the database.

Every node follows the schedule in the database by its own clock: a key is published (federation metadata,
trusted for validation) from the moment it is scheduled and signs from its ``active_from``. ``published`` reads
the rows afresh on every call (metadata and validation; one primary-key-sized table); ``current``, called for
every token issued, re-reads them at most every ``REFRESH_SECONDS`` (so a node may keep signing with the old key
for that long after a switch: the old key is still published then, so nothing breaks).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from sts.config import Settings
from sts.store.passwords import SecretBox
from sts.store.schema import key_material
from sts.store.transactions import reading, writing
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, load_certificate
from sts.tokens.crypto.pkcs11 import HsmConfig, HsmError, HsmToken, open_token
from sts.tokens.keyring import (LEGACY_ID, REFRESH_SECONDS, Keyring, ScheduledKeys, _current_slot, _Slot,
                                check_schedule_request, new_key_id)
from sts.xmltime import utcnow

SECRETS_ID = "secrets"
KEK_BYTES = 32
_NONCE_BYTES = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_log = logging.getLogger(__name__)


class KeySourceError(ValueError):
    """The keys cannot be loaded from where ``key_source`` says: what is wrong and what to fix."""


@dataclass(frozen=True)
class Kek:
    """The key-encryption key and its id (the first 16 hex digits of its SHA-256, stored beside what it seals)."""

    key: bytes
    id: str

    @classmethod
    def from_environment(cls, variable: str) -> Kek:
        value = os.environ.get(variable, "").strip()
        fix = (f"set the environment variable {variable} (setting key_encryption_key_env) to the same 32 random "
               f"bytes, base64, on every node, e.g. from `openssl rand -base64 32`")
        if not value:
            raise KeySourceError(f"the key-encryption key is missing: {fix}")
        try:
            key = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise KeySourceError(f"the key-encryption key in {variable} is not base64: {fix}") from None
        if len(key) != KEK_BYTES:
            raise KeySourceError(f"the key-encryption key in {variable} is {len(key)} bytes, not {KEK_BYTES}: {fix}")
        return cls(key, hashlib.sha256(key).hexdigest()[:16])


@dataclass(frozen=True)
class StoredKey:
    """One row of ``key_material`` (sealed values stay sealed until ``KeyStore.open`` is asked)."""

    id: str
    kind: str
    active_from: datetime | None
    retire_after: datetime | None
    certificate: str | None
    sealed: bytes | None
    hsm_label: str | None
    kek_id: str | None


class KeyStore:
    """The ``key_material`` rows: sealing, opening, reading and the rollover's two writes."""

    def __init__(self, engine: Engine, kek: Kek | None, variable: str = "STS_KEY_ENCRYPTION_KEY") -> None:
        self.engine = engine
        self._kek = kek
        self._variable = variable  # named in errors

    # --- sealing ---------------------------------------------------------------------------------------------

    def seal(self, row_id: str, kind: str, plaintext: bytes, certificate: str | None = None) -> tuple[bytes, str]:
        kek = self._need_kek()
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(kek.key).encrypt(nonce, plaintext, _aad(row_id, kind, kek.id, certificate)), kek.id

    def open(self, row: StoredKey) -> bytes:
        """The plaintext of a sealed row; KeySourceError when the KEK is not the one that sealed it."""
        kek = self._need_kek()
        if row.sealed is None:
            raise KeySourceError(f"key {row.id!r} in the database holds no sealed value")
        if row.kek_id != kek.id:
            raise KeySourceError(f"key {row.id!r} in the database was sealed under key-encryption key {row.kek_id}, "
                                 f"but {self._variable} holds key {kek.id}: give this node the same KEK as the "
                                 f"others")
        nonce, ciphertext = row.sealed[:_NONCE_BYTES], row.sealed[_NONCE_BYTES:]
        try:
            return AESGCM(kek.key).decrypt(nonce, ciphertext, _aad(row.id, row.kind, kek.id, row.certificate))
        except InvalidTag:
            raise KeySourceError(f"key {row.id!r} in the database does not open under the key-encryption key in "
                                 f"{self._variable}: the row was altered or moved") from None

    def _need_kek(self) -> Kek:
        if self._kek is None:
            return Kek.from_environment(self._variable)  # raises, saying what to set
        return self._kek

    # --- reading and writing ---------------------------------------------------------------------------------

    def rows(self, kind: str = "signing") -> list[StoredKey]:
        try:
            with reading(self.engine) as conn:
                found = conn.execute(select(key_material).where(key_material.c.kind == kind)
                                     .order_by(key_material.c.active_from, key_material.c.id)).all()
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise KeySourceError(f"cannot read the keys from the database (run `sts db upgrade`?): {reason}") from None
        return [StoredKey(r.id, r.kind, r.active_from, r.retire_after, r.certificate, r.sealed, r.hsm_label,
                          r.kek_id) for r in found]

    def secret(self) -> bytes | None:
        """The secrets key, or None when none was stored."""
        found = self.rows("secret")
        return self.open(found[0]) if found else None

    def put_secret(self, key: bytes) -> bool:
        """Store the secrets key unless one is there (True: stored); KeySourceError when a different one is."""
        existing = self.secret()
        if existing is not None:
            if existing != key:
                raise KeySourceError("the database already holds a different secrets key (from another home): the "
                                     "nodes share the one in the database; nothing was changed")
            return False
        sealed, kek_id = self.seal(SECRETS_ID, "secret", key)
        with writing(self.engine) as conn:
            conn.execute(insert(key_material).values(id=SECRETS_ID, kind="secret", sealed=sealed, kek_id=kek_id,
                                                     created=utcnow()))
        return True

    def add_signing(self, key_id: str, active_from: datetime, retire_after: datetime | None, certificate: str,
                    *, key_pem: bytes | None = None, hsm_label: str | None = None,
                    replaces: tuple[str, datetime] | None = None, first: StoredKey | None = None) -> None:
        """Insert a signing key (sealed, or an HSM label); in the same transaction, ``replaces`` (id, its new
        retire_after) and the implicit first key ``first`` (an HSM key not yet in the table)."""
        sealed, kek_id = self.seal(key_id, "signing", key_pem, certificate) if key_pem is not None else (None, None)
        with writing(self.engine) as conn:
            if first is not None:
                conn.execute(insert(key_material).values(
                    id=first.id, kind="signing", active_from=first.active_from, certificate=first.certificate,
                    hsm_label=first.hsm_label, created=utcnow()))
            if replaces is not None:
                conn.execute(update(key_material).where(key_material.c.id == replaces[0])
                             .values(retire_after=replaces[1]))
            conn.execute(insert(key_material).values(
                id=key_id, kind="signing", active_from=active_from, retire_after=retire_after,
                certificate=certificate, sealed=sealed, hsm_label=hsm_label, kek_id=kek_id, created=utcnow()))


def _aad(row_id: str, kind: str, kek_id: str, certificate: str | None) -> bytes:
    cert_hash = hashlib.sha256(certificate.encode("ascii")).hexdigest() if certificate else ""
    return "\0".join(("sts-key-material-v1", kind, row_id, kek_id, cert_hash)).encode("utf-8")


class DatabaseKeyring(ScheduledKeys):
    """The signing keys and schedule in ``key_material`` (thread-safe; one per process)."""

    def __init__(self, store: KeyStore, *, clock: Callable[[], datetime] = utcnow, hsm: HsmToken | None = None,
                 hsm_label: str = "", refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._store = store
        self._clock = clock
        self._hsm = hsm
        self._hsm_label = hsm_label
        self._refresh = refresh_seconds
        self.source = "pkcs11" if hsm is not None else "database"
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], SigningKey] = {}  # (id, certificate): opened once per process
        self._slots: tuple[_Slot, ...] = ()
        self._loaded = float("-inf")
        self._fresh(publishing=True)  # a key that does not load stops the node at startup, not at first request

    def _fresh(self, *, publishing: bool = False) -> tuple[_Slot, ...]:
        if publishing or time.monotonic() - self._loaded >= self._refresh:
            with self._lock:
                try:
                    self._slots = self._load()
                except KeySourceError as exc:
                    if publishing or not self._slots:
                        raise
                    # Signing may go on with the schedule last read (a switch it holds still happens on time);
                    # the request fails anyway if its token cannot be recorded.
                    _log.warning("signing keys not re-read from the database, the schedule read %.0f s ago "
                                 "stays in use: %s", time.monotonic() - self._loaded, exc)
                self._loaded = time.monotonic()
        return self._slots

    def _load(self) -> tuple[_Slot, ...]:
        rows = self._store.rows()
        if not rows:
            first = self._implicit_first()
            if first is None:
                raise KeySourceError("key_source is \"database\" but the database holds no signing keys: run "
                                     "`sts keys import-to-database` on the node whose keys/ should be shared")
            rows = [first]
        return tuple(_Slot(r.id, r.active_from or _EPOCH, r.retire_after, self._key(r)) for r in rows)

    def _implicit_first(self) -> StoredKey | None:
        """With an HSM, the key labelled ``pkcs11_key_label`` signs until the first rollover adds rows."""
        if self._hsm is None:
            return None
        cert = self._hsm.certificate(self._hsm_label).public_bytes(serialization.Encoding.PEM).decode("ascii")
        return StoredKey(LEGACY_ID, "signing", _EPOCH, None, cert, None, self._hsm_label, None)

    def _key(self, row: StoredKey) -> SigningKey:
        cached = self._keys.get((row.id, row.certificate or ""))
        if cached is not None:
            return cached
        if row.hsm_label is not None:
            if self._hsm is None:
                raise KeySourceError(f"signing key {row.id!r} is in an HSM (label {row.hsm_label!r}): set "
                                     f"key_source = \"pkcs11\" and the pkcs11_* settings on this node")
            try:
                key = self._hsm.signing_key(row.hsm_label)
            except HsmError as exc:
                raise KeySourceError(str(exc)) from None
        else:
            opened = self._store.open(row)  # KeySourceError as it is: it says what to fix
            try:
                key = SigningKey.from_pem(opened, (row.certificate or "").encode("ascii"))
            except ValueError as exc:
                raise KeySourceError(f"signing key {row.id!r} in the database: {exc}") from None
        self._keys[(row.id, row.certificate or "")] = key
        return key

    def schedule(self, key_pem: bytes, cert_pem: bytes | None, *, active_from: datetime,
                 overlap: timedelta) -> str:
        """Add a software key (sealed under the KEK) that signs from ``active_from``; ValueError as the files'."""
        check_schedule_request(active_from, overlap)
        if self._hsm is not None:
            raise ValueError("with key_source \"pkcs11\" new keys are made inside the HSM: schedule the rollover "
                             "without a key to import")
        if cert_pem is None:
            from sts.tokens.keyring import _self_signed  # noqa: PLC0415

            cert_pem = _self_signed(key_pem)
        key = SigningKey.from_pem(key_pem, cert_pem)  # checks that they belong together
        pkcs8 = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
        return self._add(active_from, overlap, _pem(key), key_pem=pkcs8)

    def generate_and_schedule(self, active_from: datetime, overlap: timedelta) -> str:
        """A new key (in the HSM with ``pkcs11``, else RSA-2048 sealed in the database), scheduled."""
        check_schedule_request(active_from, overlap)
        if self._hsm is None:
            key_pem, cert_pem = generate_key_and_cert("sts signing")
            return self.schedule(key_pem, cert_pem, active_from=active_from, overlap=overlap)
        key_id = new_key_id(active_from)
        label = f"{self._hsm_label}-{key_id}"
        try:
            cert = self._hsm.generate_key_pair(label)
        except HsmError as exc:
            raise ValueError(str(exc)) from None
        return self._add(active_from, overlap, cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                         hsm_label=label, key_id=key_id)

    def _add(self, active_from: datetime, overlap: timedelta, certificate: str, *, key_pem: bytes | None = None,
             hsm_label: str | None = None, key_id: str | None = None) -> str:
        active_from = active_from.astimezone(UTC)
        key_id = key_id or new_key_id(active_from)
        rows = self._store.rows()
        first = None if rows else self._implicit_first()
        if first is not None:
            rows = [first]
        slots = tuple(_Slot(r.id, r.active_from or _EPOCH, r.retire_after, None) for r in rows)  # type: ignore[arg-type]
        replaced = _current_slot(slots, active_from) if slots else None
        self._store.add_signing(key_id, active_from, None, certificate, key_pem=key_pem, hsm_label=hsm_label,
                                replaces=(replaced.id, active_from + overlap) if replaced else None, first=first)
        self._fresh(publishing=True)
        return key_id


def _pem(key: SigningKey) -> str:
    return key.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


# --- the node's keys from its settings ---------------------------------------------------------------------------


def open_keyring(settings: Settings, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> ScheduledKeys:
    """The signing keys where ``key_source`` says; KeySourceError (what to fix) when they cannot be loaded."""
    if settings.key_source == "files":
        return Keyring.for_home(settings.signing_key_path, clock=clock)
    if settings.key_source == "database":
        return DatabaseKeyring(_store(settings, engine, kek_required=True), clock=clock)
    try:
        hsm = open_token(HsmConfig.from_settings(settings.pkcs11_module, settings.pkcs11_token_label,
                                                 settings.pkcs11_pin_env))
        return DatabaseKeyring(_store(settings, engine, kek_required=False), clock=clock, hsm=hsm,
                               hsm_label=settings.pkcs11_key_label)
    except HsmError as exc:
        raise KeySourceError(str(exc)) from None


def published_certificates(settings: Settings, now: datetime) -> list[x509.Certificate]:
    """The signing certificates published at ``now`` wherever ``key_source`` keeps them (``sts check-config``:
    a connection of its own to the database)."""
    if settings.key_source == "files":
        return Keyring.for_home(settings.signing_key_path).published(now)
    from sts.store.database import create_database_engine  # noqa: PLC0415

    engine = create_database_engine(settings.effective_database_url)
    try:
        return open_keyring(settings, engine).published(now)
    finally:
        engine.dispose()


def secrets_key(settings: Settings, engine: Engine | None = None) -> bytes:
    """The secrets key (console session and CSRF keys are derived from it; it seals passwords at rest).

    ``files``: ``keys/secrets.key``; otherwise the one in the database, under the KEK (``engine`` None: a
    connection of its own, for callers that have no engine yet)."""
    if settings.key_source == "files":
        return settings.secrets_key_path.read_bytes()
    own = engine is None
    if engine is None:
        from sts.store.database import create_database_engine  # noqa: PLC0415

        engine = create_database_engine(settings.effective_database_url)
    try:
        key = _store(settings, engine, kek_required=True).secret()
    finally:
        if own:
            engine.dispose()
    if key is None:
        raise KeySourceError(f"key_source is \"{settings.key_source}\" but the database holds no secrets key: run "
                             f"`sts keys import-to-database` on the node whose keys/secrets.key should be shared")
    return key


def check_key_source(settings: Settings) -> None:
    """Load the signing keys and the secrets key once, as a node starting would: KeySourceError (what to fix)
    when they cannot be (``sts serve`` checks before it starts its workers)."""
    if settings.key_source == "files":
        return
    from sts.store.database import create_database_engine  # noqa: PLC0415

    engine = create_database_engine(settings.effective_database_url)
    try:
        open_keyring(settings, engine).current(utcnow())
        secrets_key(settings, engine)
    finally:
        engine.dispose()


def secret_box_for(settings: Settings) -> SecretBox:
    """The box of this node's passwords at rest: keyed by ``keys/secrets.key`` (key_source "files"), or by the
    secrets key every node shares, sealed in the database under the key-encryption key (fetched at first use,
    when the database has been opened and migrated)."""
    if settings.key_source == "files":
        return SecretBox(settings.secrets_key_path.read_bytes())
    return SecretBox(lambda: secrets_key(settings))


def seed_secrets_key(settings: Settings, engine: Engine) -> bool:
    """``sts init`` of a node whose keys are shared: the secrets key in the database stays the farm's; when there is
    none yet (the farm's first node), this home's ``keys/secrets.key`` becomes it. True when it was stored."""
    store = _store(settings, engine, kek_required=True)
    if store.secret() is not None:
        return False
    try:
        return store.put_secret(settings.secrets_key_path.read_bytes())
    except KeySourceError:
        return False  # another node's init stored its own a moment ago: that one is the farm's


@dataclass(frozen=True)
class Imported:
    """What ``import_home`` stored: signing key ids (already present ones skipped) and whether the secrets key."""

    signing: tuple[str, ...]
    skipped: tuple[str, ...]
    secrets: bool


def import_home(settings: Settings, engine: Engine) -> Imported:
    """Copy this home's keys into the database, sealed under the KEK: the signing keys and their schedule (not
    with ``pkcs11``: those keys are in the HSM) and ``keys/secrets.key``. Keys already there are kept."""
    store = _store(settings, engine, kek_required=True)
    signing: list[str] = []
    skipped: list[str] = []
    if settings.key_source != "pkcs11":
        present = {row.id: row for row in store.rows()}
        for exported in Keyring.for_home(settings.signing_key_path).export():
            if exported.id in present:
                if present[exported.id].certificate != exported.cert_pem.decode("ascii"):
                    raise KeySourceError(f"the database already holds a different signing key {exported.id!r}: "
                                         f"nothing more was imported")
                skipped.append(exported.id)
                continue
            certificate = load_certificate(exported.cert_pem).public_bytes(serialization.Encoding.PEM)
            store.add_signing(exported.id, exported.active_from, exported.retire_after, certificate.decode("ascii"),
                              key_pem=exported.key_pem)
            signing.append(exported.id)
    stored = store.put_secret(settings.secrets_key_path.read_bytes())
    return Imported(tuple(signing), tuple(skipped), stored)


def _store(settings: Settings, engine: Engine, *, kek_required: bool) -> KeyStore:
    variable = settings.key_encryption_key_env
    kek = Kek.from_environment(variable) if kek_required or os.environ.get(variable) else None
    return KeyStore(engine, kek, variable)


__all__ = ["DatabaseKeyring", "Imported", "Kek", "KeySourceError", "KeyStore", "REFRESH_SECONDS", "StoredKey",
           "check_key_source", "import_home", "open_keyring", "published_certificates", "secret_box_for",
           "secrets_key", "seed_secrets_key"]
