"""Reading console forms into the admin core's input, and showing what is stored back in them.

Only reading happens here (lines, numbers, checkboxes). Every decision about the values (claim names, algorithms,
certificates, the legacy opt-in) is the admin core's; its errors come back keyed by the field they belong next to.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from sts.admin.algorithms import DATA_ENCRYPTIONS, KEY_TRANSPORTS, KEY_TYPES, SIGNATURES, short_name
from sts.admin.relying_parties import RelyingPartyPolicy
from sts.model import ANY_CLAIM, RelyingParty
from sts.tokens.crypto.keys import fingerprint_sha256, load_certificate

WARN_DAYS = 30

_RP_FIELDS = {f.name for f in dataclasses.fields(RelyingParty)}


def rp_supports(name: str) -> bool:
    """Whether the back-end's RelyingParty has this policy field (rollover, audiences, allowed types...)."""
    return name in _RP_FIELDS


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


@dataclass
class RpForm:
    """The relying-party form: raw values (kept on errors) and errors by field name."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def lines(self, name: str) -> tuple[str, ...]:
        raw = str(self.values.get(name, "") or "")
        return tuple(line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip())

    def integer(self, name: str, label: str) -> int | None:
        raw = str(self.values.get(name, "") or "").strip()
        if not raw:
            return None
        if not raw.isdigit() or int(raw) < 1:
            self.errors[name] = f"{label} must be a whole number of seconds, at least 1"
            return None
        return int(raw)

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name))

    def text(self, name: str) -> str:
        return str(self.values.get(name) or "").strip()

    def time(self, name: str) -> datetime | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            return user_time(raw).astimezone(UTC)
        except ValueError:
            self.errors[name] = "not a date and time (YYYY-MM-DDTHH:MM, UTC)"
            return None


def rp_policy(form: RpForm) -> RelyingPartyPolicy:
    """The whole policy as the form gives it (the console always sends every field). Only the lifetimes are
    read here (a number or not); everything else is checked by the admin core."""
    return RelyingPartyPolicy(
        match_prefix=form.flag("match_prefix"),
        token_type=form.text("token_type") or "saml20",
        required_claims=form.lines("required_claims"),
        permitted_claims=form.lines("permitted_claims"),
        encrypt=form.flag("encrypt"),
        default_lifetime=form.integer("default_lifetime", "default lifetime"),
        max_lifetime=form.integer("max_lifetime", "lifetime cap"),
        refuse_long_lifetime=form.flag("refuse_long_lifetime"),
        name_id_claim=form.text("name_id_claim"),
        signature=form.text("signature") or "rsa-sha256",
        data_encryption=form.text("data_encryption") or "aes256-gcm",
        key_transport=form.text("key_transport") or "rsa-oaep-mgf1p",
        allowed_token_types=tuple(_list(form.values.get("allowed_token_types"))),
        allowed_key_types=tuple(_list(form.values.get("allowed_key_types"))),
        additional_audiences=form.lines("additional_audiences"),
    )


def rp_form_values(rp: RelyingParty) -> dict[str, Any]:
    """The stored relying party as form values: saved unchanged, it stays as it is."""
    return {
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
        "signature": short_name(SIGNATURES, rp.signature_algorithm),
        "data_encryption": short_name(DATA_ENCRYPTIONS, rp.data_encryption),
        "key_transport": short_name(KEY_TRANSPORTS, rp.key_transport),
        "allowed_token_types": [t.short for t in rp.allowed_token_types],
        "allowed_key_types": [short_name(KEY_TYPES, k) for k in rp.allowed_key_types],
        "additional_audiences": "\n".join(rp.additional_audiences),
        "next_cert_from": rp.next_cert_from.strftime("%Y-%m-%dT%H:%M") if rp.next_cert_from else "",
    }


def _list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]
