"""The STS signing keyring: the active signing key plus scheduled and still-published ones (key rollover).

Layout in the home::

    keys/sts-signing.key|.crt          the key in use: the first key (id ``sts-signing``) until a rollover's switch
                                       time passes, then a copy of the key that signs (relying parties are pointed
                                       at this certificate file, so it must never name a retired key)
    keys/signing/sts-signing.key|.crt  the first key itself, moved here when the first rollover is scheduled
    keys/signing/<id>.key|.crt         keys added by ``sts keys rollover``
    keys/signing/schedule.json         [{"id", "active_from", "retire_after"}, ...]

The key in use at an instant is the one with the latest ``active_from`` not after it. Relying parties must
learn the next certificate before it signs, and keep trusting the old one while its tokens live: so a key is
*published* (federation metadata, trusted by the token resolver) while active, while scheduled, and after it
was replaced until its ``retire_after`` (the new key's ``active_from`` plus the overlap).

``current(now)`` is cheap: one ``stat`` of the schedule per call; another process's rollover is picked up when
the file changes. Whichever node or command first reads the keyring after a switch time (by its real clock)
rewrites ``keys/sts-signing.key|.crt`` atomically, under a file lock shared by every process of the home.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from sts.tokens.crypto.keys import (SigningKey, fingerprint_sha256, generate_key_and_cert, load_certificate,
                                    load_private_key)
from sts.xmltime import utcnow

LEGACY_ID = "sts-signing"
_log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class KeyEntry:
    id: str
    subject: str
    fingerprint: str
    not_after: datetime
    active_from: datetime
    retire_after: datetime | None
    state: str  # "active" | "next" | "retired-published" | "retired"


@dataclass(frozen=True)
class ExportedKey:
    """A key of the files with its schedule, as stored (PEM bytes)."""

    id: str
    active_from: datetime
    retire_after: datetime | None
    key_pem: bytes
    cert_pem: bytes


@dataclass(frozen=True)
class _Slot:
    id: str
    active_from: datetime
    retire_after: datetime | None
    key: SigningKey


class ScheduledKeys:
    """Signing keys on a schedule: which signs at an instant, which are published. A source of slots underneath
    (the home's files: ``Keyring``; the shared database or an HSM: ``sts.tokens.key_store.DatabaseKeyring``)."""

    _clock: Callable[[], datetime]

    #: Where the keys live ("files", "database", "pkcs11"), as ``sts keys list`` shows it.
    source = "files"

    def current(self, now: datetime) -> SigningKey:
        """The key that signs at ``now``."""
        return _current_slot(self._fresh(), now).key

    def published(self, now: datetime) -> list[x509.Certificate]:
        """Certificates relying parties should trust at ``now``: active, next and still-overlapping old ones."""
        slots = self._fresh(publishing=True)
        return [s.key.certificate for s in slots if _state(slots, s, now) != "retired"]

    def entries(self, now: datetime | None = None) -> list[KeyEntry]:
        moment = now or self._clock()
        slots = self._fresh(publishing=True)
        return [
            KeyEntry(s.id, s.key.certificate.subject.rfc4514_string(), fingerprint_sha256(s.key.certificate),
                     s.key.certificate.not_valid_after_utc, s.active_from, s.retire_after,
                     _state(slots, s, moment))
            for s in slots
        ]

    def schedule(self, key_pem: bytes, cert_pem: bytes | None, *, active_from: datetime,
                 overlap: timedelta) -> str:
        raise NotImplementedError

    def generate_and_schedule(self, active_from: datetime, overlap: timedelta) -> str:
        """A new RSA-2048 key and self-signed certificate, scheduled as ``schedule`` does."""
        key_pem, cert_pem = generate_key_and_cert("sts signing")
        return self.schedule(key_pem, cert_pem, active_from=active_from, overlap=overlap)

    def _fresh(self, *, publishing: bool = False) -> tuple[_Slot, ...]:
        """The slots now; ``publishing``: for what is published (a source with a cache may read afresh)."""
        raise NotImplementedError


#: The most a process's signing key lags behind a schedule another process wrote (seconds): the home's file here,
#: the database's in ``sts.tokens.key_store``.
REFRESH_SECONDS = 2.0


def _current_slot(slots: tuple[_Slot, ...], now: datetime) -> _Slot:
    if len(slots) == 1:  # no rollover scheduled: the usual case, once per token
        return slots[0]
    started = [s for s in slots if s.active_from <= now]
    return max(started, key=lambda s: s.active_from) if started else min(slots, key=lambda s: s.active_from)


def _state(slots: tuple[_Slot, ...], slot: _Slot, now: datetime) -> str:
    if slot is _current_slot(slots, now):
        return "active"
    if slot.active_from > now:
        return "next"
    if slot.retire_after is None or now < slot.retire_after:
        return "retired-published"
    return "retired"


def check_schedule_request(active_from: datetime, overlap: timedelta) -> None:
    """ValueError when a switch time has no time zone or the overlap is negative (every keyring's rule)."""
    if active_from.tzinfo is None:
        raise ValueError("active_from needs a time zone")
    if overlap < timedelta(0):
        raise ValueError("the overlap must not be negative")


def new_key_id(active_from: datetime) -> str:
    """A key's id: its switch time and a random suffix (unique across nodes scheduling at once)."""
    return f"{active_from.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


class Keyring(ScheduledKeys):
    """The home's signing keys and their schedule; one per process (thread-safe)."""

    def __init__(self, keys_dir: Path, *, clock: Callable[[], datetime] = utcnow) -> None:
        """``clock`` is the real time the files in use follow (``current(now)`` may be asked about any instant)."""
        self._keys_dir = keys_dir
        self._dir = keys_dir / "signing"
        self._schedule = self._dir / "schedule.json"
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: object = None
        #: When signing next looks at the schedule file again (``time.monotonic()``): see ``_fresh``.
        self._next_look = 0.0
        self._slots: tuple[_Slot, ...] = ()
        self._in_use_file: str | None = None  # the key id keys/sts-signing.* was last seen or made to hold
        self._reload()
        self._follow(self._slots)

    @classmethod
    def for_home(cls, signing_key_path: Path, *, clock: Callable[[], datetime] = utcnow) -> Keyring:
        """The keyring next to the home's first signing key (``keys/sts-signing.key``)."""
        return cls(signing_key_path.parent, clock=clock)

    # --- changing --------------------------------------------------------------------------------------------

    def schedule(self, key_pem: bytes, cert_pem: bytes | None, *, active_from: datetime,
                 overlap: timedelta) -> str:
        """Add a key that signs from ``active_from``; the key it replaces stays published for ``overlap`` more.

        ``cert_pem`` None: a self-signed certificate is made for the key. ValueError when the certificate is not
        the key's, or ``active_from`` has no time zone.
        """
        check_schedule_request(active_from, overlap)
        if cert_pem is None:
            cert_pem = _self_signed(key_pem)
        key = SigningKey.from_pem(key_pem, cert_pem)  # checks that they belong together
        with self._lock, self._home_lock():
            self._keep_first_key()
            slots = list(self._load())
            replaced = _current_slot(tuple(slots), active_from)
            key_id = new_key_id(active_from)
            self._dir.mkdir(parents=True, exist_ok=True)
            _write_private(self._dir / f"{key_id}.key", key_pem)
            (self._dir / f"{key_id}.crt").write_bytes(key.certificate.public_bytes(serialization.Encoding.PEM))
            slots = [
                _Slot(s.id, s.active_from, active_from + overlap, s.key) if s.id == replaced.id else s
                for s in slots
            ]
            slots.append(_Slot(key_id, active_from.astimezone(UTC), None, key))
            self._write(slots)
            self._stamp = None
        self._fresh(publishing=True)
        return key_id

    def export(self) -> list[ExportedKey]:
        """Every key with its schedule and files' bytes (``sts keys import-to-database`` copies them)."""
        with self._lock:
            slots = self._load()
        result = []
        for slot in slots:
            base = self._base(slot.id)
            result.append(ExportedKey(slot.id, slot.active_from, slot.retire_after,
                                      base.with_suffix(".key").read_bytes(), base.with_suffix(".crt").read_bytes()))
        return result

    # --- the files in use ------------------------------------------------------------------------------------

    def _follow(self, slots: tuple[_Slot, ...]) -> None:
        """Make ``keys/sts-signing.key|.crt`` hold the key that signs now, once per switch and process."""
        live = _current_slot(slots, self._clock())
        if live.id == self._in_use_file:
            return
        self._in_use_file = live.id
        try:
            self._write_in_use(live)
        except OSError as exc:  # a read-only home must not stop signing; the next process tries again
            _log.warning("cannot update %s to the signing key in use (%s): %s", self._in_use("crt"), live.id,
                         exc.strerror or exc)

    def _write_in_use(self, live: _Slot) -> None:
        if self._file_holds(live):
            return
        with self._home_lock():
            self._keep_first_key()
            if self._file_holds(live):  # another process did it while we waited for the lock
                return
            base = self._base(live.id)
            # The key first, then the certificate: a reader of the pair sees at worst a mismatch it reports,
            # never a certificate whose key is missing.
            _replace(self._in_use("key"), base.with_suffix(".key").read_bytes(), private=True)
            _replace(self._in_use("crt"), live.key.certificate.public_bytes(serialization.Encoding.PEM))
            _log.info("signing key %s is in use from %s: %s rewritten", live.id, live.active_from.isoformat(),
                      self._in_use("crt"))

    def _file_holds(self, slot: _Slot) -> bool:
        try:
            return load_certificate(self._in_use("crt").read_bytes()) == slot.key.certificate
        except (FileNotFoundError, ValueError):
            return False

    def _in_use(self, suffix: str) -> Path:
        return self._keys_dir / f"{LEGACY_ID}.{suffix}"

    def _keep_first_key(self) -> None:
        """Copy the first key to ``keys/signing/`` before ``keys/sts-signing.*`` may be rewritten (under the lock).

        The copy is made before any rewrite, so while it is missing the files in use still hold the first key."""
        kept = self._dir / f"{LEGACY_ID}.key"
        if kept.exists() or not self._in_use("key").exists():
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        _replace(self._dir / f"{LEGACY_ID}.crt", self._in_use("crt").read_bytes())
        _replace(kept, self._in_use("key").read_bytes(), private=True)

    @contextmanager
    def _home_lock(self) -> Iterator[None]:
        """An exclusive lock shared by every process of this home (several workers, a CLI command)."""
        self._dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # --- internals -------------------------------------------------------------------------------------------

    def _fresh(self, *, publishing: bool = False) -> tuple[_Slot, ...]:
        """The slots, with the schedule file looked at again when publishing and, for signing, at most every
        ``REFRESH_SECONDS`` (as the database keyring does): a stat per token cost 2 % of one. Switch times in the
        schedule already read are kept to the instant; only a schedule written since by another process (``sts
        keys rollover``) may wait that long, and its new key is published at once."""
        now = time.monotonic()
        if publishing or now >= self._next_look:
            self._next_look = now + REFRESH_SECONDS
            if self._schedule_stamp() != self._stamp:
                with self._lock:
                    self._reload()
        slots = self._slots
        self._follow(slots)
        return slots

    def _reload(self) -> None:
        stamp = self._schedule_stamp()
        self._slots = self._load()
        self._stamp = stamp

    def _schedule_stamp(self) -> object:
        """What tells that the schedule file changed: its mtime, size and inode ("none" while there is none)."""
        try:
            stat = self._schedule.stat()
        except FileNotFoundError:
            return "none"
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _load(self) -> tuple[_Slot, ...]:
        if not self._schedule.exists():
            return (_Slot(LEGACY_ID, _EPOCH, None, self._key(LEGACY_ID)),)
        entries = json.loads(self._schedule.read_text())
        return tuple(
            _Slot(str(e["id"]), datetime.fromisoformat(e["active_from"]),
                  datetime.fromisoformat(e["retire_after"]) if e.get("retire_after") else None, self._key(str(e["id"])))
            for e in entries
        )

    def _key(self, key_id: str) -> SigningKey:
        base = self._base(key_id)
        return SigningKey.load(base.with_suffix(".key"), base.with_suffix(".crt"))

    def _base(self, key_id: str) -> Path:
        """Where a key's own files are (the first key's: in ``keys/`` until a rollover kept a copy aside)."""
        if key_id == LEGACY_ID and not (self._dir / f"{LEGACY_ID}.key").exists():
            return self._keys_dir / LEGACY_ID
        return self._dir / key_id

    def _write(self, slots: list[_Slot]) -> None:
        data = [{"id": s.id, "active_from": s.active_from.isoformat(),
                 "retire_after": s.retire_after.isoformat() if s.retire_after else None} for s in slots]
        tmp = self._schedule.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self._schedule)


def _self_signed(key_pem: bytes) -> bytes:
    key = load_private_key(key_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sts signing")])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _replace(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (a per-process temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


__all__ = ["ExportedKey", "KeyEntry", "Keyring", "LEGACY_ID", "REFRESH_SECONDS", "ScheduledKeys", "check_schedule_request",
           "new_key_id"]
