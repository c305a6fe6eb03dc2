"""Read subject, audiences and claims out of an assertion a peer verified, and compare them with a case.

``read_assertion`` serves the peers whose library verifies but does not read SAML (xmlsec1, signxml): the values
are read from the bytes the peer verified, never from the token as received. Peers that read SAML themselves
(python3-saml, pysaml2, passport-wsfed-saml2) build a ``Read`` from their library's answer; all are judged by
``mismatches`` / ``judge``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sts.tokens.tokeninfo import describe_token

from ..model import Expected, Verdict

__all__ = ["Read", "judge", "mismatches", "read_assertion"]


@dataclass(frozen=True)
class Read:
    subject: str | None
    audiences: tuple[str, ...]
    claims: dict[str, tuple[str, ...]]


def read_assertion(assertion: etree._Element) -> Read:
    """Subject, audiences and claims as ``sts token show`` reads them (``sts.tokens.tokeninfo``), SAML 1.1 or 2.0."""
    info = describe_token(assertion)
    claims = info.get("claims") or {}
    return Read(info.get("subject"), tuple(a for a in info.get("audiences") or () if a),
                {str(uri): tuple(values) for uri, values in claims.items()})


def mismatches(read: Read, expected: Expected) -> list[str]:
    """What the peer read that differs from the case (empty: all as expected)."""
    found = []
    if read.subject != expected.subject:
        found.append(f"subject {read.subject!r}, expected {expected.subject!r}")
    if expected.audience not in read.audiences:
        found.append(f"audiences {list(read.audiences)} lack {expected.audience}")
    for uri, values in expected.claims.items():
        missing = [v for v in values if v not in read.claims.get(uri, ())]
        if missing:
            found.append(f"claim {uri} lacks {missing}")
    return found


def judge(read: Read, expected: Expected, how: str) -> Verdict:
    """PASS (saying ``how`` the peer verified) when what it read matches the case; else FAIL naming each mismatch."""
    found = mismatches(read, expected)
    if found:
        return Verdict.failed("; ".join(found))
    return Verdict.passed(f"{how}; subject, audience and {len(expected.claims)} claim(s) match")
