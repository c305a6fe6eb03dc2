"""The throw-away STS homes a benchmark run serves: one with the default RSA-2048 signing key, one with ECDSA P-256.

Each is what `sts init` makes (the demo user ``alice`` with five claims and the demo relying party
https://service-a.example/, SAML 2.0 signed and encrypted with AES-256-GCM + RSA-OAEP), plus the relying parties
the other scenarios need, users with 1, 10 and 100 claims, and an X.509 client registered as `sts client add` does
(``sts.admin.clients.add_client``). Password hashes use the configured cost (2^15 by default): the PasswordText
scenario measures real scrypt, so the caller must not have made it cheap (``STS_PASSWORD_HASH_N``). A home may
keep its state in another database than its SQLite file (``database_url``: the farm's PostgreSQL).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from sts.admin.base import Actor, AdminContext
from sts.admin.clients import add_client
from sts.config import CONFIG_FILE, Settings, load_settings, render_default_config
from sts.home import DEMO_CLAIMS, DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home, open_stores
from sts.model import RelyingParty
from sts.tokens.crypto.keys import PrivateKey, generate_key_and_cert, load_certificate, load_private_key
from sts.uris import TokenType

ROOT = Path(__file__).resolve().parent.parent
CLIENT = "bench-client"
CLAIM_COUNTS = (1, 10, 100)
PASSWORD = DEMO_PASSWORD


@dataclass(frozen=True)
class Party:
    """A relying party a scenario asks tokens for: its AppliesTo, token type and whether tokens are encrypted."""

    endpoint: str
    token_type: TokenType
    encrypted: bool
    required_claims: tuple[str, ...] = ()


@dataclass
class BenchHome:
    """A home directory, its relying parties by name, the user for each claim count, the X.509 client's key."""

    path: Path
    signing: str  # "rsa" | "ecdsa"
    parties: dict[str, Party] = field(default_factory=dict)
    claim_users: dict[int, str] = field(default_factory=dict)
    client_key: PrivateKey | None = None
    client_cert: x509.Certificate | None = None

    @property
    def rp_key(self) -> PrivateKey:
        """The demo relying party's private key (every encrypted party here uses its certificate)."""
        return load_private_key((self.path / "demo" / "rp.key").read_bytes())

    @property
    def signing_cert(self) -> x509.Certificate:
        return load_certificate(load_settings(self.path).signing_cert_path.read_bytes())


def claim_uri(index: int) -> str:
    return f"urn:bench:claim:{index:03d}"


def make_home(path: Path, *, signing: str = "rsa", database_url: str | None = None) -> BenchHome:
    """A fresh home at ``path`` with everything the scenarios use; its state in ``database_url`` if given."""
    if database_url is not None:
        _write_config(path, database_url)
    init_home(path)
    home = BenchHome(path=path, signing=signing)
    if signing == "ecdsa":
        _use_ec_signing_key(path)
    settings = load_settings(path)
    cert_pem = (path / "demo" / "rp.crt").read_bytes()
    home.parties["saml20-enc"] = Party(DEMO_RP_ENDPOINT, TokenType.SAML20, True)
    stores = open_stores(settings)
    try:
        for name, token_type, encrypted in (("saml20-signed", TokenType.SAML20, False),
                                            ("saml11-enc", TokenType.SAML11, True),
                                            ("saml11-signed", TokenType.SAML11, False)):
            party = Party(f"https://{name}.bench.example/", token_type, encrypted)
            stores.relying_parties.add(RelyingParty(endpoint=party.endpoint, cert_pem=cert_pem if encrypted else None,
                                                    token_type=token_type, encrypt=encrypted))
            home.parties[name] = party
        for count in CLAIM_COUNTS if signing == "rsa" else ():
            uris = tuple(claim_uri(index) for index in range(count))
            user = f"claims{count}"
            stores.users.add(user, PASSWORD, [(uri, f"value {index} of {user}") for index, uri in enumerate(uris)])
            party = Party(f"https://claims-{count}.bench.example/", TokenType.SAML20, True, uris)
            stores.relying_parties.add(RelyingParty(endpoint=party.endpoint, cert_pem=cert_pem, required_claims=uris))
            home.parties[f"claims-{count}"] = party
            home.claim_users[count] = user
        key_pem, client_cert_pem = generate_key_and_cert(CLIENT)
        add_client(AdminContext.for_stores(stores, settings), Actor("bench"), CLIENT, client_cert_pem, DEMO_CLAIMS)
        home.client_key, home.client_cert = load_private_key(key_pem), load_certificate(client_cert_pem)
    finally:
        stores.close()
    return home


def _write_config(path: Path, database_url: str) -> None:
    """The sts.toml `sts init` writes, with ``database_url`` set (before init: the stores open there at once)."""
    path.mkdir(parents=True, exist_ok=True)
    text = render_default_config(Settings(home=path))
    empty = 'database_url = ""'
    if text.count(empty) != 1:
        raise RuntimeError(f"sts.toml as `sts init` writes it has no single line {empty!r} to set")
    config = path / CONFIG_FILE
    config.touch(mode=0o600)  # it holds the database's password: `sts serve` refuses a file others can read
    config.write_text(text.replace(empty, f'database_url = "{database_url}"'))


def _use_ec_signing_key(path: Path) -> None:
    """An EC P-256 key takes over signing at once, as the interop suite's ECDSA target does (`sts keys rollover`)."""
    key_pem, cert_pem = generate_key_and_cert("sts signing (ECDSA)", ec=True)
    (path / "ec-signing.key").write_bytes(key_pem)
    (path / "ec-signing.crt").write_bytes(cert_pem)
    done = subprocess.run([sys.executable, "-m", "sts", "--home", str(path), "keys", "rollover",
                           "--import-key", str(path / "ec-signing.key"),
                           "--import-cert", str(path / "ec-signing.crt"), "--now", "--overlap-days", "0"], check=False, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"`sts keys rollover` failed: {done.stderr.strip() or done.stdout.strip()}")


__all__ = ["BenchHome", "CLAIM_COUNTS", "CLIENT", "DEMO_USER", "PASSWORD", "Party", "make_home"]
