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


_SECURITY = ns.qn(ns.WSSE, "Security")
_TIMESTAMP = ns.qn(ns.WSU, "Timestamp")
_USERNAME_TOKEN = ns.qn(ns.WSSE, "UsernameToken")
_USERNAME = ns.qn(ns.WSSE, "Username")
_PASSWORD = ns.qn(ns.WSSE, "Password")
_NONCE = ns.qn(ns.WSSE, "Nonce")
_CREATED = ns.qn(ns.WSU, "Created")
_EXPIRES = ns.qn(ns.WSU, "Expires")


def parse_security_header(envelope: Envelope) -> SecurityHeader:
    """Parse the one wsse:Security header block (none -> empty); more than one of a kind is refused."""
    blocks = [b for b in envelope.headers if b.tag == _SECURITY]
    if not blocks:
        return EMPTY
    if len(blocks) > 1:
        raise SecurityHeaderError("more than one wsse:Security header")
    # One pass over the block's children (comments and PIs have non-string tags and match nothing).
    timestamps: list[etree._Element] = []
    tokens: list[etree._Element] = []
    for child in blocks[0]:
        tag = child.tag
        if tag == _TIMESTAMP:
            timestamps.append(child)
        elif tag == _USERNAME_TOKEN:
            tokens.append(child)
    if len(timestamps) > 1 or len(tokens) > 1:
        raise SecurityHeaderError("more than one Timestamp or UsernameToken")
    return SecurityHeader(
        timestamp=_parse_timestamp(timestamps[0]) if timestamps else None,
        username_token=_parse_username_token(tokens[0]) if tokens else None,
    )


def _first_children(element: etree._Element, tags: frozenset[str]) -> dict[str, etree._Element]:
    """The first child of each of ``tags``, in one pass (what ``find`` per tag returns, without a pass each)."""
    found: dict[str, etree._Element] = {}
    for child in element:
        tag = child.tag
        if tag in tags and tag not in found:
            found[tag] = child
    return found


def _text_of(found: dict[str, etree._Element], tag: str) -> str | None:
    """``findtext``: None when the child is absent, its text ('' when none) otherwise."""
    child = found.get(tag)
    return None if child is None else child.text or ""


_TIMESTAMP_CHILDREN = frozenset({_CREATED, _EXPIRES})
_USERNAME_TOKEN_CHILDREN = frozenset({_USERNAME, _PASSWORD, _NONCE, _CREATED})


def _parse_timestamp(element: etree._Element) -> Timestamp:
    found = _first_children(element, _TIMESTAMP_CHILDREN)
    return Timestamp(
        created=_optional_time(_text_of(found, _CREATED)),
        expires=_optional_time(_text_of(found, _EXPIRES)),
    )


def _optional_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_datetime(text)
    except ValueError:
        raise SecurityHeaderError(f"malformed time {text!r}") from None


def _parse_username_token(element: etree._Element) -> UsernameToken:
    found = _first_children(element, _USERNAME_TOKEN_CHILDREN)
    username = _text_of(found, _USERNAME)
    if username is None or not username.strip():
        raise SecurityHeaderError("UsernameToken without Username")
    password_el = found.get(_PASSWORD)
    # msal, adal and adal-node send no Type: WSS says the default is PasswordText.
    password_type = password_el.get("Type", PASSWORD_TEXT).strip() if password_el is not None else PASSWORD_TEXT
    if password_type not in _PASSWORD_TYPES:
        raise UnsupportedSecurityToken(f"password type {password_type!r}")
    created = _text_of(found, _CREATED)
    return UsernameToken(
        username=username.strip(),
        password=password_el.text or "" if password_el is not None else None,
        digest=password_type == PASSWORD_DIGEST,
        nonce=_nonce(_text_of(found, _NONCE)),
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
