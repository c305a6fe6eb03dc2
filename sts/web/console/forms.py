"""Server-side validation of console forms: each error is keyed by the field it belongs next to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sts.tokens.crypto.keys import check_certificate, fingerprint_sha256, load_certificate
from sts.model import ANY_CLAIM, RelyingParty
from sts.store.relying_parties import check_endpoint
from sts.uris import DataEncryption, KeyTransport, KeyType, SignatureAlgorithm, TokenType

SIGNATURES = {"rsa-sha256": SignatureAlgorithm.RSA_SHA256, "ecdsa-sha256": SignatureAlgorithm.ECDSA_SHA256,
              "rsa-sha1": SignatureAlgorithm.RSA_SHA1}
DATA_ENCRYPTIONS = {"aes256-gcm": DataEncryption.AES256_GCM, "aes128-gcm": DataEncryption.AES128_GCM,
                    "aes256-cbc": DataEncryption.AES256_CBC, "aes128-cbc": DataEncryption.AES128_CBC}
KEY_TRANSPORTS = {"rsa-oaep-mgf1p": KeyTransport.RSA_OAEP_MGF1P, "rsa-1_5": KeyTransport.RSA_1_5}
#: Only chosen with the explicit legacy opt-in: SHA-1 signatures, RSA PKCS#1 v1.5 key transport, CBC.
LEGACY = {"rsa-sha1", "rsa-1_5", "aes256-cbc", "aes128-cbc"}
KEY_TYPES = {"bearer": KeyType.BEARER, "symmetric": KeyType.SYMMETRIC, "public-key": KeyType.PUBLIC_KEY}
TOKEN_TYPES = {"saml20": TokenType.SAML20, "saml11": TokenType.SAML11}
WARN_DAYS = 30

_RP_FIELDS = {f.name for f in dataclasses.fields(RelyingParty)}


def rp_supports(name: str) -> bool:
    """Whether the back-end's RelyingParty has this policy field (rollover, audiences, allowed types...)."""
    return name in _RP_FIELDS


def short_of(mapping: dict[str, Any], value: object) -> str:
    return next((k for k, v in mapping.items() if v == value), str(value))


@dataclass
class CertInfo:
    subject: str
    issuer: str
    fingerprint: str
    not_after: datetime
    days_left: int

    @property
    def expiring(self) -> bool:
        return self.days_left < WARN_DAYS


def cert_info(cert_pem: bytes | None, now: datetime | None = None) -> CertInfo | None:
    if not cert_pem:
        return None
    try:
        cert = load_certificate(cert_pem)
    except ValueError:
        return None
    return describe(cert, now)


def describe(cert: x509.Certificate, now: datetime | None = None) -> CertInfo:
    now = now or datetime.now(UTC)
    return CertInfo(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), fingerprint_sha256(cert),
                    cert.not_valid_after_utc, (cert.not_valid_after_utc - now).days)


def user_time(text: str) -> datetime:
    """An ISO 8601 date or date and time as a person types it; no zone means UTC. ValueError when it is not one."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def read_certificate(data: bytes, now: datetime) -> bytes:
    """PEM of the certificate in ``data`` (PEM or DER); ValueError with a message for the user."""
    cert = load_certificate(data)
    check_certificate(cert, now)
    return cert.public_bytes(Encoding.PEM)


@dataclass
class RpForm:
    """The relying-party form: raw values (kept on errors) and errors by field name."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def lines(self, name: str) -> list[str]:
        raw = str(self.values.get(name, "") or "")
        return [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]

    def integer(self, name: str, label: str) -> int | None:
        raw = str(self.values.get(name, "") or "").strip()
        if not raw:
            return None
        if not raw.isdigit() or int(raw) < 1:
            self.errors[name] = f"{label} must be a whole number of seconds, at least 1"
            return None
        return int(raw)

    def choice(self, name: str, options: dict[str, Any], default: str) -> Any:
        raw = str(self.values.get(name) or default)
        if raw not in options:
            self.errors[name] = f"unknown choice {raw!r}"
            return options[default]
        if raw in LEGACY and not self.values.get("legacy"):
            self.errors[name] = f"{raw} is a legacy algorithm: tick 'allow legacy algorithms' to choose it"
        return options[raw]


def rp_form_values(rp: RelyingParty) -> dict[str, Any]:
    values: dict[str, Any] = {
        "endpoint": rp.endpoint,
        "token_type": rp.token_type.short,
        "encrypt": rp.encrypt,
        "match_prefix": rp.match_prefix,
        "required_claims": "\n".join(rp.required_claims),
        "permitted_claims": "\n".join(c for c in rp.permitted_claims if c != ANY_CLAIM),
        "default_lifetime": str(int(rp.default_lifetime.total_seconds())),
        "max_lifetime": str(int(rp.max_lifetime.total_seconds())),
        "refuse_long_lifetime": rp.refuse_long_lifetime,
        "name_id_claim": rp.name_id_claim or "",
        "signature": short_of(SIGNATURES, rp.signature_algorithm),
        "data_encryption": short_of(DATA_ENCRYPTIONS, rp.data_encryption),
        "key_transport": short_of(KEY_TRANSPORTS, rp.key_transport),
    }
    values["legacy"] = any(values[k] in LEGACY for k in ("signature", "data_encryption", "key_transport"))
    if rp_supports("allowed_token_types"):
        values["allowed_token_types"] = [t.short for t in getattr(rp, "allowed_token_types")]
    if rp_supports("allowed_key_types"):
        values["allowed_key_types"] = [short_of(KEY_TYPES, k) for k in getattr(rp, "allowed_key_types")]
    if rp_supports("additional_audiences"):
        values["additional_audiences"] = "\n".join(getattr(rp, "additional_audiences"))
    if rp_supports("next_cert_from"):
        when = getattr(rp, "next_cert_from")
        values["next_cert_from"] = when.strftime("%Y-%m-%dT%H:%M") if when else ""
    return values


def build_rp(form: RpForm, *, base: RelyingParty | None, cert_pem: bytes | None, next_cert_pem: bytes | None,
             defaults: tuple[int, int], now: datetime) -> RelyingParty | None:
    """A RelyingParty from the form (``base`` when editing); None when ``form.errors`` got any entry."""
    endpoint = base.endpoint if base is not None else str(form.values.get("endpoint", "")).strip()
    if base is None:
        try:
            check_endpoint(endpoint)
        except ValueError as exc:
            form.errors["endpoint"] = str(exc)
    encrypt = bool(form.values.get("encrypt"))
    if cert_pem is None and base is not None:
        cert_pem = base.cert_pem
    if encrypt and cert_pem is None and "cert" not in form.errors:
        form.errors["cert"] = "a certificate is needed to encrypt tokens (or untick 'encrypt tokens')"
    default_s = form.integer("default_lifetime", "default lifetime") or defaults[0]
    max_s = form.integer("max_lifetime", "lifetime cap") or defaults[1]
    if default_s > max_s:
        default_s = max_s
    kwargs: dict[str, Any] = {
        "endpoint": endpoint,
        "cert_pem": cert_pem,
        "match_prefix": bool(form.values.get("match_prefix")),
        "token_type": form.choice("token_type", TOKEN_TYPES, "saml20"),
        "required_claims": tuple(form.lines("required_claims")),
        "permitted_claims": tuple(form.lines("permitted_claims")) or (ANY_CLAIM,),
        "encrypt": encrypt,
        "default_lifetime": timedelta(seconds=default_s),
        "max_lifetime": timedelta(seconds=max_s),
        "refuse_long_lifetime": bool(form.values.get("refuse_long_lifetime")),
        "name_id_claim": str(form.values.get("name_id_claim") or "").strip() or None,
        "signature_algorithm": form.choice("signature", SIGNATURES, "rsa-sha256"),
        "data_encryption": form.choice("data_encryption", DATA_ENCRYPTIONS, "aes256-gcm"),
        "key_transport": form.choice("key_transport", KEY_TRANSPORTS, "rsa-oaep-mgf1p"),
    }
    for uri in [*kwargs["required_claims"], *(c for c in kwargs["permitted_claims"] if c != ANY_CLAIM)]:
        if ":" not in uri or any(ch.isspace() for ch in uri):
            form.errors.setdefault("required_claims" if uri in kwargs["required_claims"] else "permitted_claims",
                                   f"{uri!r} is not a claim URI")
    if rp_supports("allowed_token_types"):
        kwargs["allowed_token_types"] = tuple(
            TOKEN_TYPES[t] for t in _list(form.values.get("allowed_token_types")) if t in TOKEN_TYPES)
    if rp_supports("allowed_key_types"):
        kwargs["allowed_key_types"] = tuple(
            KEY_TYPES[t] for t in _list(form.values.get("allowed_key_types")) if t in KEY_TYPES)
    if rp_supports("additional_audiences"):
        audiences = form.lines("additional_audiences")
        for audience in audiences:
            try:
                check_endpoint(audience)
            except ValueError:
                form.errors["additional_audiences"] = f"{audience!r} is not an absolute URL or urn: URI"
        kwargs["additional_audiences"] = tuple(audiences)
    if rp_supports("next_cert_pem") and rp_supports("next_cert_from"):
        when_raw = str(form.values.get("next_cert_from") or "").strip()
        when = None
        if when_raw:
            try:
                when = user_time(when_raw).astimezone(UTC)
            except ValueError:
                form.errors["next_cert_from"] = "not a date and time (YYYY-MM-DDTHH:MM, UTC)"
        if next_cert_pem is None and base is not None and not form.values.get("clear_next_cert"):
            next_cert_pem = getattr(base, "next_cert_pem")
            when = when or getattr(base, "next_cert_from")
        if next_cert_pem is not None and when is None and "next_cert_from" not in form.errors:
            form.errors["next_cert_from"] = "give the time from which the next certificate is used"
        kwargs["next_cert_pem"] = next_cert_pem
        kwargs["next_cert_from"] = when if next_cert_pem is not None else None
    if form.errors:
        return None
    return replace(base, **kwargs) if base is not None else RelyingParty(**kwargs)


def _list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]
