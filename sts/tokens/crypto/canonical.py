"""Text written directly in exclusive-c14n form (Canonical XML 1.0 §2.2-§2.3, Exclusive XML Canonicalization 1.0).

A token written in its canonical form needs no canonicalisation pass before its digest: the bytes hashed are the
bytes sent. Only the two escapes differ from ordinary serialisation: in character data ``&``, ``<``, ``>`` and CR
become references; in attribute values ``&``, ``<``, ``"``, TAB, LF and CR do. A string XML 1.0 cannot carry (a
NUL, another C0 control, a lone surrogate, U+FFFE/U+FFFF) is refused with the ValueError lxml gives, rather than
written into a token no parser would read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sts.protocol.xmlbytes import refuse_non_xml

_TEXT_ESCAPES: Final = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#xD;"))
_ATTRIBUTE_ESCAPES: Final = (
    ("&", "&amp;"), ("<", "&lt;"), ('"', "&quot;"), ("\t", "&#x9;"), ("\n", "&#xA;"), ("\r", "&#xD;"),
)
_TEXT_SPECIAL: Final = frozenset(char for char, _ in _TEXT_ESCAPES)
_ATTRIBUTE_SPECIAL: Final = frozenset(char for char, _ in _ATTRIBUTE_ESCAPES)


def text(value: str) -> str:
    """``value`` as canonical character data."""
    return _escaped(value, _TEXT_SPECIAL, _TEXT_ESCAPES)


def attribute(value: str) -> str:
    """``value`` as a canonical attribute value (to go between double quotes)."""
    return _escaped(value, _ATTRIBUTE_SPECIAL, _ATTRIBUTE_ESCAPES)


def _escaped(value: str, special: frozenset[str], escapes: tuple[tuple[str, str], ...]) -> str:
    refuse_non_xml(value)
    if special.isdisjoint(value):
        return value
    for char, reference in escapes:  # "&" first: the references added after it must stay as written
        value = value.replace(char, reference)
    return value


@dataclass(frozen=True)
class SignableParts:
    """A token in canonical form around the place of its enveloped Signature.

    ``head + tail`` is the exclusive c14n of the token without its Signature: what the enveloped-signature and
    exc-c14n transforms give a verifier, so what the digest covers. ``sent_head`` is ``head`` as sent: it may
    declare more namespaces on the root (needed by a QName in an attribute value, which c14n does not count as
    a use), which canonicalisation drops again.
    """

    head: bytes
    tail: bytes
    sent_head: bytes

    def signed(self, signature: bytes) -> bytes:
        """The token as sent, with ``signature`` (a ds:Signature in its canonical form) in its place."""
        return b"".join((self.sent_head, signature, self.tail))
