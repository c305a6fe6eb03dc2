"""Settings: ``sts.toml`` in the home directory, overridden by ``STS_*`` environment variables.

The home directory is ``--home DIR``, else ``$STS_HOME``, else ``./var``. Everything below is a default that
``sts init`` writes into ``sts.toml`` so that an administrator sees and can change it.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

CONFIG_FILE = "sts.toml"
CLIENT_PROOFS = ("username", "signature", "either")
LOG_FORMATS = ("text", "json")
KEY_SOURCES = ("files", "database", "pkcs11")
CLIENT_CERT_HEADER_FORMATS = ("escaped-pem", "xfcc")
#: The settings that name one of a few choices, and the choices (checked when the settings are read).
_CHOICES = {"client_proof": CLIENT_PROOFS, "log_format": LOG_FORMATS, "key_source": KEY_SOURCES,
            "client_cert_header_format": CLIENT_CERT_HEADER_FORMATS}


@dataclass(frozen=True)
class Settings:
    """Every knob of one STS node (see README, "Configuration")."""

    home: Path
    public_base_url: str = ""  # empty: http(s)://HOST:PORT of `sts serve`
    issuer: str = ""  # empty: the public base URL + /services/sts
    database_url: str = ""  # empty: SQLite file sts.db in the home directory
    clock_skew_seconds: int = 300
    nonce_window_seconds: int = 300
    max_request_bytes: int = 1024 * 1024
    max_xml_depth: int = 64
    allow_password_text_over_http: bool = False
    allow_unregistered_audiences: bool = False
    default_lifetime_seconds: int = 1800
    max_lifetime_seconds: int = 8 * 3600
    password_hash_n: int = 2**15
    #: A PasswordText pair verified against the stored hash is trusted for this many seconds without scrypt
    #: again (an HMAC-keyed in-memory cache; a password change or disable applies at once). 0 switches it off.
    password_cache_seconds: int = 60
    log_level: str = "info"
    # What a client must prove: "username" (a UsernameToken), "signature" (a request signed by a registered
    # client certificate) or "either". A per-relying-party override is not there yet.
    client_proof: str = "either"
    allow_sha1_signatures: bool = False
    #: Requesters that may ask for tokens ActAs / OnBehalfOf another identity.
    delegates: tuple[str, ...] = ()
    #: Identities that may renew or cancel any token (besides each token's own requester).
    token_admins: tuple[str, ...] = ()
    renew_after_expiry_seconds: int = 1800
    #: Console administrators' passwords: at least this many characters, and never the user name.
    admin_password_min_length: int = 12
    #: How far ahead a signing-key rollover must be scheduled: the time relying parties need to fetch the
    #: federation metadata that lists the next key. Sooner needs an explicit override (``--now``, a confirmation).
    rollover_min_lead_seconds: int = 86400
    # --- hardening (issue 12) ---
    #: XML resource limits, checked on every parsed message before anything reads it (defaults follow Apache
    #: CXF's hardened StAX reader and WCF's reader quotas; max_request_bytes and max_xml_depth are above).
    max_xml_attributes: int = 500  # attributes on one element (CXF maxAttributeCount)
    max_xml_attribute_length: int = 65536  # characters in one attribute value (CXF maxAttributeSize)
    max_xml_text_length: int = 131072  # characters in one text node (16 x WCF's MaxStringContentLength)
    max_xml_elements: int = 50000  # elements in one document (CXF maxChildElements)
    max_xml_namespaces_per_element: int = 64  # namespace declarations on one element
    max_xml_namespaces: int = 512  # namespace declarations in one document
    #: Failed password checks: after ``auth_throttle_free_failures`` failures (per user name and per client
    #: address, within ``auth_throttle_window_seconds``) the next check waits a delay that doubles from
    #: ``auth_throttle_base_delay_ms`` per failure up to ``auth_throttle_max_delay_ms``. Never a lock-out.
    auth_throttle_free_failures: int = 3
    auth_throttle_base_delay_ms: int = 100
    auth_throttle_max_delay_ms: int = 2000
    auth_throttle_window_seconds: int = 900
    #: How long ``sts serve`` lets requests in flight finish after SIGTERM before it exits.
    graceful_shutdown_seconds: int = 30
    #: Certificates (the STS's, relying parties', clients') expiring within this many days are flagged by
    #: ``sts check-config``.
    certificate_warning_days: int = 30
    # --- operations (issue 14) ---
    #: ``GET /metrics`` (Prometheus text format); it names relying parties and their volumes, so it is served to
    #: loopback clients only, unless ``metrics_public`` or the request carries ``Authorization: Bearer <token>``.
    metrics_enabled: bool = True
    metrics_public: bool = False
    metrics_token: str = ""
    #: "text": uvicorn's log lines; "json": one JSON object a line, one line per request, with a correlation id.
    log_format: str = "text"
    # --- farm (issue 15): several nodes on one PostgreSQL, keys shared, users from a directory ---
    #: Connections each node's pool keeps open to a server database (PostgreSQL), and how long a connection,
    #: a lock or a statement may take before the request fails with wst:RequestFailed (fail fast, never hang).
    database_pool_size: int = 5
    database_timeout_seconds: int = 5
    #: Where the STS signing keys live: "files" (keys/ in the home), "database" (in the shared database,
    #: encrypted under the key-encryption key held by the environment variable ``key_encryption_key_env``) or
    #: "pkcs11" (an HSM through the PKCS#11 module ``pkcs11_module``, token ``pkcs11_token_label``, the user PIN
    #: in the environment variable ``pkcs11_pin_env``, the key pair labelled ``pkcs11_key_label``).
    key_source: str = "files"
    key_encryption_key_env: str = "STS_KEY_ENCRYPTION_KEY"
    pkcs11_module: str = ""
    pkcs11_token_label: str = ""
    pkcs11_pin_env: str = "STS_PKCS11_PIN"
    pkcs11_key_label: str = "sts-signing"
    #: Addresses or networks (CIDR) of the load balancers / TLS-terminating proxies in front of the nodes: only
    #: their X-Forwarded-For, and their client-certificate header, are believed.
    trusted_proxies: tuple[str, ...] = ()
    #: The request header a trusted proxy puts the TLS client certificate in (empty: none is read), in the
    #: format ``client_cert_header_format``: "escaped-pem" (nginx ``$ssl_client_escaped_cert``) or "xfcc"
    #: (Envoy's ``x-forwarded-client-cert``).
    client_cert_header: str = ""
    client_cert_header_format: str = "escaped-pem"
    #: Users from a directory besides the local ones: "" (local users only) or "ldap://host[:port]" /
    #: "ldaps://host[:port]". The ldap_* settings below say how (README, "Running a farm").
    user_store: str = ""
    ldap_bind_dn: str = ""
    ldap_bind_password_env: str = "STS_LDAP_BIND_PASSWORD"
    ldap_user_base: str = ""
    ldap_user_filter: str = "(uid={username})"
    ldap_start_tls: bool = False
    ldap_ca_file: str = ""
    ldap_timeout_seconds: int = 5
    ldap_pool_size: int = 4
    #: Claims read from directory attributes, as "claim-uri=attribute" items.
    ldap_claims: tuple[str, ...] = ()
    #: Group membership as role claims: groups under ``ldap_group_base`` matching ``ldap_group_filter`` (``{dn}``
    #: is the user's DN), each giving the value of its ``ldap_role_attribute``.
    ldap_group_base: str = ""
    ldap_group_filter: str = "(member={dn})"
    ldap_role_attribute: str = "cn"

    @property
    def effective_issuer(self) -> str:
        return self.issuer or f"{self.public_base_url.rstrip('/')}/services/sts"

    def with_bind(self, host: str, port: int, tls: bool) -> Settings:
        """Fill an empty public base URL from where ``sts serve`` listens."""
        if self.public_base_url:
            return self
        shown = f"[{host}]" if ":" in host else host
        return replace(self, public_base_url=f"{'https' if tls else 'http'}://{shown}:{port}")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'sts.db').resolve()}"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, when the database is SQLite (it holds password hashes: mode 0600)."""
        url = self.effective_database_url
        return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None

    @property
    def rollover_min_lead(self) -> timedelta:
        return timedelta(seconds=self.rollover_min_lead_seconds)

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)

    @property
    def nonce_window(self) -> timedelta:
        return timedelta(seconds=self.nonce_window_seconds)

    @property
    def signing_key_path(self) -> Path:
        return self.home / "keys" / "sts-signing.key"

    @property
    def signing_cert_path(self) -> Path:
        return self.home / "keys" / "sts-signing.crt"

    @property
    def secrets_key_path(self) -> Path:
        return self.home / "keys" / "secrets.key"


def resolve_home(option: str | os.PathLike[str] | None) -> Path:
    return Path(option or os.environ.get("STS_HOME") or "./var")


def load_settings(home: Path) -> Settings:
    """Read ``sts.toml`` (if any) and the ``STS_*`` environment; unknown keys are an error that says which."""
    settings = Settings(home=home)
    path = home / CONFIG_FILE
    values: dict[str, object] = {}
    if path.exists():
        with path.open("rb") as handle:
            try:
                values.update(tomllib.load(handle))
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: {exc}") from None
    known = {f.name: f for f in fields(Settings) if f.name != "home"}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    for name in known:
        env = os.environ.get(env_name(name))
        if env is not None:
            values[name] = env
    coerced: dict[str, Any] = {k: _coerce(known[k].type, k, v) for k, v in values.items()}
    for entry in coerced.get("trusted_proxies", ()):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"setting trusted_proxies: {entry!r} is not an IP address or network (e.g. 10.0.0.5 or "
                             f"10.0.0.0/8)") from None
    for name, allowed in _CHOICES.items():
        if name in coerced and coerced[name] not in allowed:
            raise ValueError(f"setting {name} must be one of {', '.join(allowed)}, not {coerced[name]!r}")
    return replace(settings, **coerced)


def env_name(setting: str) -> str:
    """The environment variable that overrides ``setting`` (``database_url`` -> ``STS_DATABASE_URL``)."""
    return f"STS_{setting.upper()}"


def environment_for(values: Mapping[str, object]) -> dict[str, str]:
    """``values`` (setting: value) as the environment variables ``load_settings`` reads back: how every node of a
    farm gets the same settings. A list is written comma-separated; booleans as true/false."""
    def text(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (tuple, list)):
            return ",".join(str(item) for item in value)
        return str(value)

    return {env_name(name): text(value) for name, value in values.items()}


def _coerce(kind: object, name: str, value: object) -> object:
    kind = str(kind)
    if kind.startswith("tuple"):
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(str(item).strip() for item in items if str(item).strip())
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"setting {name} must be true or false, not {value!r}")
    if kind == "int":
        try:
            return int(str(value))
        except ValueError:
            raise ValueError(f"setting {name} must be an integer, not {value!r}") from None
    return str(value)


def render_default_config(settings: Settings) -> str:
    """The commented ``sts.toml`` that ``sts init`` writes."""
    return f"""# sts configuration; environment variables STS_<NAME> override these.
# Public base URL advertised in the WSDL, MEX and federation metadata (set it behind a TLS proxy);
# empty means http(s)://HOST:PORT of `sts serve`.
public_base_url = "{settings.public_base_url}"
# Issuer name in tokens; empty means <public_base_url>/services/sts.
issuer = ""
# SQLAlchemy URL; empty means SQLite sts.db in this directory. PostgreSQL: postgresql+psycopg://...
database_url = ""
clock_skew_seconds = {settings.clock_skew_seconds}
nonce_window_seconds = {settings.nonce_window_seconds}
max_request_bytes = {settings.max_request_bytes}
max_xml_depth = {settings.max_xml_depth}
# Clear-text passwords over plain HTTP are refused except on a loopback bind, unless this is true.
allow_password_text_over_http = false
# Issue unencrypted tokens for AppliesTo values that match no registered relying party.
allow_unregistered_audiences = false
# Defaults for relying parties added without their own lifetime policy.
default_lifetime_seconds = {settings.default_lifetime_seconds}
max_lifetime_seconds = {settings.max_lifetime_seconds}
# scrypt cost for stored password hashes (N, a power of two).
password_hash_n = {settings.password_hash_n}
# Seconds a verified PasswordText (user, password) pair skips scrypt on repeated requests; 0 turns the cache off.
password_cache_seconds = {settings.password_cache_seconds}
log_level = "{settings.log_level}"
# What clients must prove: "username" (a UsernameToken), "signature" (a request signed with a certificate
# registered by `sts client add`, over Body and Timestamp) or "either".
client_proof = "{settings.client_proof}"
# Accept RSA-SHA1/SHA-1 request signatures from every client (per client: `sts client add --allow-sha1`).
allow_sha1_signatures = {str(settings.allow_sha1_signatures).lower()}
# Requesters allowed to ask for tokens ActAs / OnBehalfOf another identity, e.g. ["portal"].
delegates = []
# Identities that may renew or cancel any token, besides each token's requester.
token_admins = []
# How long after expiry a token issued with Renewing OK="true" may still be renewed.
renew_after_expiry_seconds = {settings.renew_after_expiry_seconds}
# The least notice a signing-key rollover gives relying parties (seconds); a sooner switch needs an explicit
# override (`sts keys rollover --now` / `--allow-short-lead`, or the console's confirmation).
rollover_min_lead_seconds = {settings.rollover_min_lead_seconds}
# XML resource limits on every message (defaults after Apache CXF's and WCF's hardened readers).
max_xml_attributes = {settings.max_xml_attributes}
max_xml_attribute_length = {settings.max_xml_attribute_length}
max_xml_text_length = {settings.max_xml_text_length}
max_xml_elements = {settings.max_xml_elements}
max_xml_namespaces_per_element = {settings.max_xml_namespaces_per_element}
max_xml_namespaces = {settings.max_xml_namespaces}
# Failed password checks (per user name and per client address): after the free failures, the next check waits
# a delay doubling from the base up to the maximum (milliseconds). Never a lock-out: the right password works.
auth_throttle_free_failures = {settings.auth_throttle_free_failures}
auth_throttle_base_delay_ms = {settings.auth_throttle_base_delay_ms}
auth_throttle_max_delay_ms = {settings.auth_throttle_max_delay_ms}
auth_throttle_window_seconds = {settings.auth_throttle_window_seconds}
# Seconds `sts serve` lets requests in flight finish after SIGTERM.
graceful_shutdown_seconds = {settings.graceful_shutdown_seconds}
# `sts check-config` flags certificates expiring within this many days.
certificate_warning_days = {settings.certificate_warning_days}
# Prometheus metrics at GET /metrics: always to loopback clients (not forwarded by a proxy); to others only when
# metrics_public is true or with the header `Authorization: Bearer <metrics_token>`.
metrics_enabled = {str(settings.metrics_enabled).lower()}
metrics_public = {str(settings.metrics_public).lower()}
metrics_token = ""
# "text" (uvicorn's log lines) or "json" (one JSON object a line: a line per request, with its correlation id).
log_format = "{settings.log_format}"
# --- farm (README, "Running a farm") ---
# Server databases (PostgreSQL): pooled connections per node; seconds before a slow or unreachable database fails
# the request with wst:RequestFailed.
database_pool_size = {settings.database_pool_size}
database_timeout_seconds = {settings.database_timeout_seconds}
# Signing keys: "files" (keys/ here), "database" (shared, encrypted under the key in $STS_KEY_ENCRYPTION_KEY)
# or "pkcs11" (an HSM: pkcs11_module, pkcs11_token_label, the PIN in $STS_PKCS11_PIN, pkcs11_key_label).
key_source = "{settings.key_source}"
pkcs11_module = ""
pkcs11_token_label = ""
# Load balancers / TLS proxies (addresses or CIDR networks) whose X-Forwarded-For and client-certificate header
# are believed, e.g. ["10.0.0.0/8"]; the header ("" for none) and its format: "escaped-pem" (nginx) or "xfcc" (Envoy).
trusted_proxies = []
client_cert_header = ""
client_cert_header_format = "{settings.client_cert_header_format}"
# Users from a directory besides the local ones: "" or "ldap://host" / "ldaps://host" (see the ldap_* settings
# in README, "Running a farm").
user_store = ""
"""
