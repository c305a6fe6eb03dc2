"""The algorithm names administrators type, and the one rule for legacy algorithms.

Every front-end names algorithms the same short way (``rsa-sha256``, ``aes256-gcm``, ``rsa-oaep-mgf1p``). Three
families are legacy (DESIGN.md, "Cryptography"): RSA-SHA1 signatures, RSA PKCS#1 v1.5 key transport and AES-CBC.
Choosing one needs an explicit opt-in, and :func:`check_legacy` is the only place that decides: without the
opt-in it raises :class:`ConfirmationRequired` with the risk; with it, it returns the warning the actor sees and
the audit record keeps. On the command line the flag that names the algorithm (``--signature rsa-sha1``) is the
opt-in; in the console it is the "allow legacy algorithms" confirmation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeVar

from sts.admin.base import ConfirmationRequired, InvalidInput
from sts.uris import (DATA_ENCRYPTION_NAMES, KEY_TRANSPORT_NAMES, SIGNATURE_NAMES, DataEncryption, KeyTransport,
                      KeyType, SignatureAlgorithm, TokenType)

SIGNATURES: Final[Mapping[str, SignatureAlgorithm]] = SIGNATURE_NAMES
DATA_ENCRYPTIONS: Final[Mapping[str, DataEncryption]] = DATA_ENCRYPTION_NAMES
KEY_TRANSPORTS: Final[Mapping[str, KeyTransport]] = KEY_TRANSPORT_NAMES
TOKEN_TYPES: Final[Mapping[str, TokenType]] = {"saml20": TokenType.SAML20, "saml11": TokenType.SAML11}
#: ``public`` is the CLI's spelling of ``public-key`` (kept: flags are a contract).
KEY_TYPES: Final[Mapping[str, KeyType]] = {
    "bearer": KeyType.BEARER, "symmetric": KeyType.SYMMETRIC, "public-key": KeyType.PUBLIC_KEY,
    "public": KeyType.PUBLIC_KEY}

_SHA1_RISK = ("SHA-1 is broken for collisions (SHAttered, 2017): a well-funded attacker can forge what a SHA-1 "
              "signature covers")
_CBC_RISK = ("AES-CBC has no integrity: padding-oracle attacks on XML Encryption (Jager and Somorovsky, 2011) "
             "recover a token's plaintext")
#: Each legacy algorithm and what choosing it risks.
LEGACY: Final[Mapping[str, str]] = {
    "rsa-sha1": _SHA1_RISK,
    "rsa-1_5": ("RSA PKCS#1 v1.5 key transport is open to Bleichenbacher padding-oracle attacks that recover the "
                "key a token is encrypted with"),
    "aes256-cbc": _CBC_RISK,
    "aes128-cbc": _CBC_RISK,
}

E = TypeVar("E", bound=Enum)


def choose(table: Mapping[str, E], text: str, *, field: str, what: str) -> E:
    """The algorithm (or type) named ``text`` in ``table``; InvalidInput listing the names it knows."""
    value = table.get(text.strip().lower())
    if value is None:
        raise InvalidInput(f"unknown {what} {text!r}: use one of {', '.join(table)}", field=field)
    return value


def short_name(table: Mapping[str, E], value: E) -> str:
    """The name administrators type for ``value`` (its URI when the table has none)."""
    return next((name for name, known in table.items() if known == value), str(value.value))


@dataclass(frozen=True)
class AlgorithmChoice:
    """The algorithms of one relying party's tokens."""

    signature: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA256
    data_encryption: DataEncryption = DataEncryption.AES256_GCM
    key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P

    def named(self) -> dict[str, str]:
        """Field -> short name, as forms, flags and the audit log name them."""
        return {"signature": short_name(SIGNATURES, self.signature),
                "data_encryption": short_name(DATA_ENCRYPTIONS, self.data_encryption),
                "key_transport": short_name(KEY_TRANSPORTS, self.key_transport)}

    def legacy(self) -> dict[str, str]:
        """Field -> short name of each legacy algorithm in the choice."""
        return {field: name for field, name in self.named().items() if name in LEGACY}


def legacy_warning(name: str, subject: str) -> str:
    """The one text an actor reads (CLI stderr, the console, the audit record) when a legacy algorithm is chosen."""
    return f"legacy algorithm {name} for {subject}: {LEGACY[name]}"


def check_legacy(chosen: AlgorithmChoice, *, subject: str, opted_in: bool,
                 before: AlgorithmChoice | None = None) -> tuple[str, ...]:
    """The one legacy-algorithm rule: a legacy algorithm the change introduces needs the explicit opt-in.

    Returns the warnings to show and audit; raises ConfirmationRequired (field, risk) without the opt-in. One
    already in ``before`` is not chosen again, so keeping it needs no new confirmation."""
    kept = set(before.legacy().values()) if before is not None else set()
    introduced = {field: name for field, name in chosen.legacy().items() if name not in kept}
    return check_legacy_names(introduced.items(), subject=subject, opted_in=opted_in)


def check_legacy_names(choices: Iterable[tuple[str, str]], *, subject: str, opted_in: bool) -> tuple[str, ...]:
    """:func:`check_legacy` on (field, short name) pairs (a client's SHA-1 signatures use it too)."""
    warnings = []
    for field, name in choices:
        if name not in LEGACY:
            continue
        if not opted_in:
            raise ConfirmationRequired(f"{name} is a legacy algorithm: choosing it needs an explicit confirmation "
                                       f"({LEGACY[name]})", field=field, risk=LEGACY[name])
        warnings.append(legacy_warning(name, subject))
    return tuple(dict.fromkeys(warnings))


__all__ = ["DATA_ENCRYPTIONS", "KEY_TRANSPORTS", "KEY_TYPES", "LEGACY", "SIGNATURES", "TOKEN_TYPES",
           "AlgorithmChoice", "check_legacy", "check_legacy_names", "choose", "legacy_warning", "short_name"]
