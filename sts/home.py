"""The home directory: configuration, keys, database and demo data (``sts init``, idempotent).

Layout::

    sts.toml                 settings (see config.py)
    keys/sts-signing.key     STS signing key (PKCS#8 PEM, mode 0600) and keys/sts-signing.crt, self-signed:
                             the key in use (the first one until a rollover's switch time, then the new one)
    keys/signing/            keys added by ``sts keys rollover``, the first key kept aside, and their
                             schedule.json (see sts.tokens.keyring)
    keys/sts-encryption.key  STS encryption key (RSA: requester entropy is encrypted for it) and its .crt
    keys/secrets.key         the key that seals PasswordDigest secrets at rest (mode 0600)
    sts.db                   SQLite database (WAL), unless database_url names another
    demo/                    the demo relying party's key and certificate, and DEMO.txt

Existing keys are never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from sts.config import CONFIG_FILE, Settings, load_settings, render_default_config
from sts.tokens.crypto.keys import generate_key_and_cert
from sts.model import RelyingParty
from sts.uris import TokenType

if TYPE_CHECKING:
    from sts.store.database import Database

DEMO_USER = "alice"
DEMO_PASSWORD = "wonderland"
DEMO_RP_ENDPOINT = "https://service-a.example/"
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
DEMO_CLAIMS: tuple[tuple[str, str], ...] = (
    (f"{CLAIMS}/givenname", "Alice"),
    (f"{CLAIMS}/surname", "Liddell"),
    (f"{CLAIMS}/emailaddress", "alice@example.org"),
    (f"{CLAIMS}/dateofbirth", "1990-05-04"),
    ("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "reader"),
)


@dataclass
class InitReport:
    home: Path
    created: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.created.append(what)


def init_home(home: Path, *, demo: bool = True) -> InitReport:
    """Create whatever is missing in the home directory; never replace what exists."""
    report = InitReport(home=home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / CONFIG_FILE
    if not config.exists():
        config.write_text(render_default_config(Settings(home=home)))
        report.note(str(config))
    settings = load_settings(home)
    if not settings.signing_key_path.exists():
        key_pem, cert_pem = generate_key_and_cert("sts signing")
        _write_private(settings.signing_key_path, key_pem)
        settings.signing_cert_path.write_bytes(cert_pem)
        report.note(str(settings.signing_cert_path))
    if not encryption_key_path(settings).exists():
        # A key of its own (not the signing key): RSA, since requesters encrypt entropy for it with RSA-OAEP.
        key_pem, cert_pem = generate_key_and_cert("sts encryption")
        _write_private(encryption_key_path(settings), key_pem)
        encryption_cert_path(settings).write_bytes(cert_pem)
        report.note(str(encryption_cert_path(settings)))
    if not settings.secrets_key_path.exists():
        _write_private(settings.secrets_key_path, os.urandom(32))
        report.note(str(settings.secrets_key_path))
    database = settings.sqlite_path
    if database is not None and not database.exists():
        # Password hashes and sealed secrets live there; SQLite gives its -wal and -shm files the same mode.
        _write_private(database, b"")
    stores = open_stores(settings)
    if settings.key_source != "files":
        from sts.tokens.key_store import seed_secrets_key  # noqa: PLC0415

        if seed_secrets_key(settings, stores.engine):  # before the demo user's secret is sealed with it
            report.note("the farm's secrets key (sealed in the database under the key-encryption key)")
    if demo and not stores.users.list() and not stores.relying_parties.list():
        _add_demo(home, stores)
        report.note("demo user and relying party")
    stores.close()
    return report


def open_stores(settings: Settings) -> Database:
    """The database and its stores (users, relying parties, nonces, tokens) of this home.

    It lives here, below ``sts.runtime``, so that nothing in the home imports the runtime back.
    """
    # Late: the stores import SQLAlchemy, which writing the home's files does not need.
    from sts.store.credential_cache import VerifiedCredentials  # noqa: PLC0415
    from sts.store.database import open_database  # noqa: PLC0415
    from sts.store.passwords import PasswordHasher  # noqa: PLC0415
    from sts.tokens.key_store import secret_box_for  # noqa: PLC0415

    return open_database(
        settings.effective_database_url,
        hasher=PasswordHasher(n=settings.password_hash_n),
        secret_box=secret_box_for(settings),  # every node's: the shared secrets key with key_source database/pkcs11
        credentials=VerifiedCredentials(settings.password_cache_seconds),
        pool_size=settings.database_pool_size,
        timeout_seconds=settings.database_timeout_seconds,
    )


def encryption_key_path(settings: Settings) -> Path:
    """The STS encryption private key (PKCS#8 PEM): what requesters encrypt entropy for, never used to sign."""
    return settings.home / "keys" / "sts-encryption.key"


def encryption_cert_path(settings: Settings) -> Path:
    """The self-signed certificate of the STS encryption key, published in the federation metadata."""
    return settings.home / "keys" / "sts-encryption.crt"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _add_demo(home: Path, stores: object) -> None:
    demo_dir = home / "demo"
    key_pem, cert_pem = generate_key_and_cert("service-a.example")
    if not (demo_dir / "rp.key").exists():
        _write_private(demo_dir / "rp.key", key_pem)
        (demo_dir / "rp.crt").write_bytes(cert_pem)
    cert = (demo_dir / "rp.crt").read_bytes()
    stores.users.add(DEMO_USER, DEMO_PASSWORD, DEMO_CLAIMS)  # type: ignore[attr-defined]
    stores.relying_parties.add(  # type: ignore[attr-defined]
        RelyingParty(endpoint=DEMO_RP_ENDPOINT, cert_pem=cert, token_type=TokenType.SAML20)
    )
    (demo_dir / "DEMO.txt").write_text(
        f"demo user: {DEMO_USER} / password: {DEMO_PASSWORD}\n"
        f"demo relying party: {DEMO_RP_ENDPOINT} (key and certificate in {demo_dir})\n"
    )


def demo_banner(home: Path) -> str | None:
    """What ``sts serve`` prints about the demo data, while it is there."""
    path = home / "demo" / "DEMO.txt"
    return path.read_text() if path.exists() else None
