"""XML answers as bytes from templates: a tree built once by the element renderer, serialised with a marker in each
variable position and split there; each answer joins the parts with its values escaped as libxml2's serialiser
escapes them. The bytes are the ones serialising the filled tree would give (``tests/protocol/test_xmlbytes.py``
and the renderers' tests compare them), without building, moving and serialising a tree per answer: on the Issue
path that work cost about a tenth of a token's CPU.

Only text content and attribute values are slots; the structure, namespaces and prefixes are the element
renderer's, so there is one definition of each answer's shape. A value XML 1.0 cannot carry is refused with the
ValueError lxml gives for it (:func:`refuse_non_xml`, also the rule of ``sts.tokens.crypto.canonical``), never
written into an answer no parser would read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from lxml import etree

__all__ = ["Template", "attribute_value", "refuse_non_xml", "serialised", "text_content"]

# XML 1.0 §2.2 Char, inverted.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: libxml2's escaping of text content (xmlEscapeContent): the markup characters, and CR (kept through parsing).
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
#: ... and of an attribute value (xmlBufAttrSerializeTxtContent): also the quote and the whitespace that attribute
#: value normalisation would otherwise turn into spaces.
_ATTRIBUTE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;", "\n": "&#10;",
                            "\t": "&#9;"})
_SPECIAL_TEXT = frozenset("&<>\r")
_SPECIAL_ATTRIBUTE = frozenset('&<>"\r\n\t')


def serialised(element: etree._Element) -> bytes:
    """One element as the response renderers serialise it: UTF-8, no XML declaration."""
    return bytes(etree.tostring(element, encoding="utf-8", xml_declaration=False))


def refuse_non_xml(value: str) -> None:
    """ValueError, as lxml's, for a string XML 1.0 cannot carry (a NUL, another C0 control, a lone surrogate,
    U+FFFE/U+FFFF)."""
    if _NOT_XML.search(value) is not None:
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")


def text_content(value: str) -> bytes:
    """``value`` as the text of an element, in UTF-8."""
    refuse_non_xml(value)
    if _SPECIAL_TEXT.isdisjoint(value):
        return value.encode("utf-8")
    return value.translate(_TEXT).encode("utf-8")


def attribute_value(value: str) -> bytes:
    """``value`` inside a double-quoted attribute, in UTF-8."""
    refuse_non_xml(value)
    if _SPECIAL_ATTRIBUTE.isdisjoint(value):
        return value.encode("utf-8")
    return value.translate(_ATTRIBUTE).encode("utf-8")


class Template:
    """``elements`` serialised one after another (UTF-8, no declaration, each with the namespace declarations it
    needs) and split at ``marks``, which must each occur where the serialisation has them, in this order (a mark is
    listed again for a value that occurs twice)."""

    __slots__ = ("_parts",)

    def __init__(self, elements: etree._Element | Sequence[etree._Element], marks: Sequence[bytes]) -> None:
        if isinstance(elements, etree._Element):
            elements = [elements]
        rest = b"".join(serialised(element) for element in elements)
        parts: list[bytes] = []
        for mark in marks:
            before, found, rest = rest.partition(mark)
            if not found:
                raise ValueError(f"the template has no {mark!r} where expected")
            parts.append(before)
        parts.append(rest)
        if any(mark in part for mark in marks for part in parts):
            raise ValueError("a mark occurs more often than the template lists it")
        self._parts = tuple(parts)

    @property
    def slots(self) -> int:
        return len(self._parts) - 1

    def fill(self, values: Sequence[bytes]) -> bytes:
        """The parts joined with ``values`` (escaped already, one per mark)."""
        parts = self._parts
        if len(values) != len(parts) - 1:
            raise ValueError(f"{len(values)} values for {len(parts) - 1} slots")
        out = [parts[0]]
        for value, part in zip(values, parts[1:]):
            out.append(value)
            out.append(part)
        return b"".join(out)
