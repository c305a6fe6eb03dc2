"""The wsse:Security header (WSS 1.0 §6): find its Timestamp and UsernameToken, refuse ambiguity."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from sts import ns
from sts.errors import SecurityHeaderError, UnsupportedSecurityToken
from sts.protocol.soap import Envelope
from sts.uris import PASSWORD_DIGEST, PASSWORD_TEXT
from sts.xmltime import parse_datetime

_PASSWORD_TYPES = frozenset({PASSWORD_TEXT, PASSWORD_DIGEST})


@dataclass(frozen=True)
class Timestamp:
    created: datetime | None
    expires: datetime | None


@dataclass(frozen=True)
class UsernameToken:
    username: str
    password: str | None
    digest: bool
    nonce: bytes | None
    created: str | None  # kept as sent: the digest is computed over the exact text
    created_at: datetime | None


@dataclass(frozen=True)
class SecurityHeader:
    timestamp: Timestamp | None
    username_token: UsernameToken | None


EMPTY = SecurityHeader(timestamp=None, username_token=None)


def parse_security_header(envelope: Envelope) -> SecurityHeader:
    """Parse the one wsse:Security header block (none -> empty); more than one of a kind is refused."""
    blocks = [b for b in envelope.headers if b.tag == ns.qn(ns.WSSE, "Security")]
    if not blocks:
        return EMPTY
    if len(blocks) > 1:
        raise SecurityHeaderError("more than one wsse:Security header")
    timestamps = blocks[0].findall(ns.qn(ns.WSU, "Timestamp"))
    tokens = blocks[0].findall(ns.qn(ns.WSSE, "UsernameToken"))
    if len(timestamps) > 1 or len(tokens) > 1:
        raise SecurityHeaderError("more than one Timestamp or UsernameToken")
    return SecurityHeader(
        timestamp=_parse_timestamp(timestamps[0]) if timestamps else None,
        username_token=_parse_username_token(tokens[0]) if tokens else None,
    )


def _parse_timestamp(element: etree._Element) -> Timestamp:
    return Timestamp(
        created=_optional_time(element.findtext(ns.qn(ns.WSU, "Created"))),
        expires=_optional_time(element.findtext(ns.qn(ns.WSU, "Expires"))),
    )


def _optional_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_datetime(text)
    except ValueError:
        raise SecurityHeaderError(f"malformed time {text!r}") from None


def _parse_username_token(element: etree._Element) -> UsernameToken:
    username = element.findtext(ns.qn(ns.WSSE, "Username"))
    if username is None or not username.strip():
        raise SecurityHeaderError("UsernameToken without Username")
    password_el = element.find(ns.qn(ns.WSSE, "Password"))
    # msal, adal and adal-node send no Type: WSS says the default is PasswordText.
    password_type = password_el.get("Type", PASSWORD_TEXT).strip() if password_el is not None else PASSWORD_TEXT
    if password_type not in _PASSWORD_TYPES:
        raise UnsupportedSecurityToken(f"password type {password_type!r}")
    created = element.findtext(ns.qn(ns.WSU, "Created"))
    return UsernameToken(
        username=username.strip(),
        password=password_el.text or "" if password_el is not None else None,
        digest=password_type == PASSWORD_DIGEST,
        nonce=_nonce(element.findtext(ns.qn(ns.WSSE, "Nonce"))),
        created=created.strip() if created is not None else None,
        created_at=_optional_time(created),
    )


def _nonce(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SecurityHeaderError("Nonce is not base64") from None
