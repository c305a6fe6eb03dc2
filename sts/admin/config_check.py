"""``sts check-config``: every unsafe setting of one STS home, each with what to do about it.

Five classes are checked (issue 12, "Key hygiene"):

* private keys (and the database, which holds password hashes and sealed secrets) that other users can read;
* plain HTTP off loopback (the advertised base URL, the bind ``sts serve`` is given, clear-text passwords over
  HTTP);
* legacy algorithms enabled anywhere (the STS settings, relying parties, clients);
* certificates expired or expiring within ``certificate_warning_days`` (the STS's, relying parties', clients');
* administrators whose password predates the password policy or breaks it.

The checks only read (the keyring, as in ``sts serve``, brings ``keys/sts-signing.*`` up to date). ``sts serve`` runs :func:`key_permission_findings` before it
starts and refuses world-readable keys unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import stat
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sts.admin.algorithms import DATA_ENCRYPTIONS, KEY_TRANSPORTS, LEGACY, SIGNATURES, short_name
from sts.admin.base import AdminContext
from sts.config import CONFIG_FILE, Settings
from sts.model import ClientRecord, RelyingParty
from sts.store.password_policy import admin_policies

#: Where the private material of a home lives (relative to the home); every ``*.key`` below ``keys/`` too.
_SECRET_FILES = ("keys/secrets.key", "demo/rp.key", "tls.key")
_DEMO_PASSWORD = "wonderland"  # noqa: S105 - the demo user's published password: an admin must not reuse it


@dataclass(frozen=True)
class Finding:
    """One unsafe setting: the class it belongs to, what is wrong, and what fixes it."""

    area: str  # "keys" | "transport" | "algorithms" | "certificates" | "admins"
    problem: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"area": self.area, "problem": self.problem, "fix": self.fix}


@dataclass(frozen=True)
class Bind:
    """How ``sts serve`` will listen, when the caller knows (``sts check-config --host ... --ssl-certfile ...``)."""

    host: str
    tls: bool


def check_configuration(ctx: AdminContext, *, bind: Bind | None = None, extra_keys: Iterable[Path] = (),
                        verify_passwords: bool = True) -> list[Finding]:
    """Every finding for the home ``ctx`` works on, grouped by class in the order above.

    ``extra_keys``: private keys outside the home to check as well (``--ssl-keyfile``)."""
    settings, now = ctx.settings, ctx.clock()
    parties = ctx.stores.relying_parties.list()
    return [
        *key_permission_findings(settings, extra_keys),
        *transport_findings(settings, bind),
        *legacy_algorithm_findings(settings, parties, ctx.stores.clients.list()),
        *certificate_findings(settings, parties, ctx.stores.clients.list(), now),
        *admin_password_findings(ctx, verify_passwords=verify_passwords),
    ]


# --- keys ------------------------------------------------------------------------------------------------------


def private_files(settings: Settings) -> list[Path]:
    """The home's private keys and secrets that exist, and its SQLite database (password hashes live there)."""
    home = settings.home
    found = {path for path in (home / "keys").rglob("*.key") if path.is_file()} if (home / "keys").is_dir() else set()
    found.update(home / name for name in _SECRET_FILES if (home / name).is_file())
    database = settings.sqlite_path
    if database is not None and database.is_file():
        found.add(database)
    config = home / CONFIG_FILE
    if config.is_file() and _has_password(_written_database_url(config)):
        found.add(config)  # its database_url carries the database password (not one from STS_DATABASE_URL)
    return sorted(found)


def _written_database_url(config: Path) -> str:
    """The database_url written in sts.toml itself (an unreadable or broken file is reported elsewhere)."""
    try:
        with config.open("rb") as handle:
            value = tomllib.load(handle).get("database_url", "")
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    return value if isinstance(value, str) else ""


def _has_password(url: str) -> bool:
    try:
        return bool(url) and make_url(url).password is not None
    except ArgumentError:
        return False


def key_permission_findings(settings: Settings, extra: Iterable[Path] = (), *,
                            keys_only: bool = False) -> list[Finding]:
    """Private files (and ``extra`` ones, such as ``--ssl-keyfile``) that a group or other users can read.

    ``keys_only``: the private keys alone, not the database (what ``sts serve`` refuses to start with)."""
    findings = []
    database = settings.sqlite_path
    for path in [*private_files(settings), *extra]:
        if keys_only and path == database:
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            who = "every user" if mode & 0o004 else "its group"
            findings.append(Finding("keys", f"{path} is readable by {who} (mode {mode:04o})",
                                    f"chmod 600 {path}"))
    return findings


# --- transport -------------------------------------------------------------------------------------------------


def transport_findings(settings: Settings, bind: Bind | None) -> list[Finding]:
    """Plain HTTP reachable from other machines, and clear-text passwords allowed over it."""
    findings = []
    advertised = urlsplit(settings.public_base_url) if settings.public_base_url else None
    if advertised is not None and advertised.scheme == "http" and not is_loopback(advertised.hostname or ""):
        findings.append(Finding(
            "transport", f"public_base_url {settings.public_base_url} is plain HTTP off loopback: passwords and "
                         "tokens cross the network in clear",
            "serve over TLS (sts serve --ssl-certfile/--ssl-keyfile) or behind a TLS proxy, and set "
            "public_base_url to the https:// address"))
    if bind is not None and not bind.tls and not is_loopback(bind.host):
        findings.append(Finding(
            "transport", f"sts serve would listen on {bind.host} with plain HTTP",
            "give --ssl-certfile and --ssl-keyfile, or bind 127.0.0.1 behind a TLS proxy"))
    if settings.allow_password_text_over_http:
        findings.append(Finding(
            "transport", "allow_password_text_over_http = true: clear-text passwords are accepted over plain HTTP",
            "set allow_password_text_over_http = false in sts.toml"))
    if settings.auth_throttle_max_delay_ms <= 0 or settings.auth_throttle_base_delay_ms <= 0:
        findings.append(Finding(
            "transport", "the brute-force throttle is off (auth_throttle_base_delay_ms or auth_throttle_max_delay_ms "
                         "is 0): passwords can be guessed as fast as the server answers",
            "remove both settings from sts.toml (defaults 100 and 2000 ms)"))
    findings.extend(_metrics_findings(settings))
    findings.extend(_farm_findings(settings))
    return findings


def _farm_findings(settings: Settings) -> list[Finding]:
    """Behind a load balancer and with a directory: who is believed, and how passwords reach the directory."""
    findings = []
    everyone = [entry for entry in settings.trusted_proxies
                if ipaddress.ip_network(entry, strict=False).prefixlen == 0]
    if everyone:
        findings.append(Finding(
            "transport", f"trusted_proxies holds {', '.join(everyone)}: every client may claim any address "
                         "(X-Forwarded-For) and any certificate (client_cert_header)",
            "list only the load balancers' addresses or networks, e.g. trusted_proxies = [\"10.0.0.0/24\"]"))
    if settings.client_cert_header and not settings.trusted_proxies:
        findings.append(Finding(
            "transport", f"client_cert_header = \"{settings.client_cert_header}\" is never read: no trusted_proxies "
                         "are set, so certificatetransport behind the proxy refuses every client",
            "set trusted_proxies to the TLS proxies that send the header"))
    if settings.user_store.lower().startswith("ldap://") and not settings.ldap_start_tls:
        findings.append(Finding(
            "transport", f"user_store {settings.user_store} without StartTLS: directory users' passwords cross the "
                         "network in clear to the directory",
            "use ldaps:// or set ldap_start_tls = true"))
    return findings


#: A metrics bearer token shorter than this can be guessed.
MIN_METRICS_TOKEN = 16


def _metrics_findings(settings: Settings) -> list[Finding]:
    """GET /metrics names relying parties and their volumes: who else may read it."""
    if not settings.metrics_enabled:
        return []
    findings = []
    if settings.metrics_public:
        findings.append(Finding(
            "transport", "metrics_public = true: anyone who reaches the server reads /metrics (relying parties, "
                         "volumes, fault counts)",
            "set metrics_public = false and give the scraper metrics_token (Authorization: Bearer ...)"))
    if settings.metrics_token and len(settings.metrics_token) < MIN_METRICS_TOKEN:
        findings.append(Finding(
            "transport", f"metrics_token is {len(settings.metrics_token)} characters: it can be guessed",
            f"use at least {MIN_METRICS_TOKEN} random characters (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(24))')"))
    return findings


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- legacy algorithms -------------------------------------------------------------------------------------------


def legacy_algorithm_findings(settings: Settings, parties: Iterable[RelyingParty],
                              clients: Iterable[ClientRecord]) -> list[Finding]:
    """SHA-1, RSA PKCS#1 v1.5 and AES-CBC wherever they are enabled."""
    findings = []
    if settings.allow_sha1_signatures:
        findings.append(Finding("algorithms", f"allow_sha1_signatures = true: every client may sign with SHA-1 "
                                              f"({LEGACY['rsa-sha1']})",
                                "set allow_sha1_signatures = false; allow SHA-1 per client only where needed"))
    for party in parties:
        for name in _legacy_names(party):
            findings.append(Finding(
                "algorithms", f"relying party {party.endpoint} uses {name} ({LEGACY[name]})",
                f"sts rp update {party.endpoint} with a modern algorithm once the relying party supports it"))
    for client in clients:
        if client.allow_sha1:
            findings.append(Finding("algorithms", f"client {client.name} may sign requests with SHA-1",
                                    f"re-register {client.name} without --allow-sha1 once it signs with SHA-256"))
    return findings


def _legacy_names(party: RelyingParty) -> Iterator[str]:
    for table, value in ((SIGNATURES, party.signature_algorithm), (DATA_ENCRYPTIONS, party.data_encryption),
                         (KEY_TRANSPORTS, party.key_transport)):
        name = short_name(table, value)
        if name in LEGACY and (table is SIGNATURES or party.encrypt):
            yield name


# --- certificates ------------------------------------------------------------------------------------------------


def certificate_findings(settings: Settings, parties: Iterable[RelyingParty], clients: Iterable[ClientRecord],
                         now: datetime) -> list[Finding]:
    """Certificates that have expired or expire within ``certificate_warning_days``."""
    horizon = now + timedelta(days=settings.certificate_warning_days)
    findings = []
    for what, certificate, fix in _certificates(settings, parties, clients, now):
        if isinstance(certificate, str):  # it cannot be read: as unsafe as an expired one
            findings.append(Finding("certificates", f"{what}: {certificate}", fix))
            continue
        expires = certificate.not_valid_after_utc
        if expires <= horizon:
            state = "expired" if expires <= now else "expires"
            findings.append(Finding("certificates", f"{what}: certificate {state} {expires:%Y-%m-%d %H:%M} UTC",
                                    fix))
    return findings


def _certificates(settings: Settings, parties: Iterable[RelyingParty], clients: Iterable[ClientRecord],
                  now: datetime) -> Iterator[tuple[str, x509.Certificate | str, str]]:
    """(what, the certificate or why it cannot be read, the fix) for every certificate the home relies on."""
    from sts.home import encryption_cert_path  # noqa: PLC0415 - the home module imports the stores
    from sts.tokens.key_store import published_certificates  # noqa: PLC0415

    rollover = "schedule a new signing key: sts keys rollover (relying parties need the notice)"
    if settings.key_source != "files" or settings.signing_key_path.exists():
        try:  # key_source "database"/"pkcs11": a missing KEK, PIN or HSM key is a finding (KeySourceError)
            published = published_certificates(settings, now)
        except (ValueError, OSError) as exc:
            yield "STS signing keys", f"cannot be read ({exc})", "restore keys/ from a backup, or sts init a new home"
            published = []
        for certificate in published:
            yield f"STS signing certificate {certificate.subject.rfc4514_string()}", certificate, rollover
    encryption = encryption_cert_path(settings)
    if encryption.exists():
        yield ("STS encryption certificate", _read_pem(encryption.read_bytes, str(encryption)),
               f"replace {encryption} and its key, then tell requesters that encrypt entropy for it")
    for party in parties:
        for pem, label in ((party.cert_pem, "certificate"), (party.next_cert_pem, "next certificate")):
            if pem:
                yield (f"relying party {party.endpoint} ({label})", _read_pem(lambda: pem, "the stored PEM"),
                       f"sts rp update {party.endpoint} --next-cert NEW.pem --next-cert-from TIME")
    for client in clients:
        yield (f"client {client.name}", client.certificate,
               f"register {client.name}'s new certificate (sts client add)")


def _read_pem(read: Callable[[], bytes], where: str) -> x509.Certificate | str:
    try:
        return x509.load_pem_x509_certificate(read())
    except (ValueError, OSError) as exc:
        return f"{where} cannot be read as a PEM certificate ({type(exc).__name__})"


# --- administrators ----------------------------------------------------------------------------------------------


def admin_password_findings(ctx: AdminContext, *, verify_passwords: bool = True) -> list[Finding]:
    """Administrators whose password was set before the policy was recorded, or under a weaker one; with
    ``verify_passwords``, also those whose password is their name or the demo password (one hash check each)."""
    minimum = ctx.settings.admin_password_min_length
    findings = []
    for name, recorded in admin_policies(ctx.stores.engine):
        fix = f"sts user password {name}  (at least {minimum} characters, not the user name)"
        if verify_passwords and _guessable(ctx, name):
            findings.append(Finding("admins", f"administrator {name}'s password is guessable (the user name or "
                                              "the demo password)", fix))
        elif recorded is None:
            findings.append(Finding("admins", f"administrator {name}'s password was set before the password "
                                              "policy was recorded: it may break it", fix))
        elif recorded < minimum:
            findings.append(Finding("admins", f"administrator {name}'s password was set when {recorded} "
                                              f"characters were enough; the policy now asks {minimum}", fix))
    return findings


def _guessable(ctx: AdminContext, name: str) -> bool:
    return any(ctx.stores.users.check_password(name, candidate) for candidate in (name, _DEMO_PASSWORD))


__all__ = ["Bind", "Finding", "admin_password_findings", "certificate_findings", "check_configuration",
           "is_loopback", "key_permission_findings", "legacy_algorithm_findings", "private_files",
           "transport_findings"]
