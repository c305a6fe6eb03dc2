"""The only XML parser of the STS: hostile input is the normal case.

No DTDs, no entity expansion, no XInclude, no network access; bounded size and nesting depth; comments and
processing instructions are dropped; Ids are resolved through a map that refuses duplicates (XML signature
wrapping relies on two elements with one Id).
"""

from __future__ import annotations

import functools

from lxml import etree

from sts import ns
from sts.errors import InvalidRequest

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_DEPTH = 64

#: Attributes that carry an element's Id in the specs we read.
ID_ATTRIBUTES = (ns.qn(ns.WSU, "Id"), "ID", "AssertionID", "Id")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_PARSER = _parser()


def parse(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise ``InvalidRequest``."""
    if len(data) > max_bytes:
        raise InvalidRequest(f"document of {len(data)} bytes exceeds {max_bytes}")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidRequest("document type declarations are refused")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidRequest(f"malformed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise InvalidRequest("document type declarations are refused")
    check_depth(root, max_depth)
    return root


def check_depth(root: etree._Element, max_depth: int) -> None:
    """Refuse trees nested deeper than ``max_depth`` (libxml2 itself stops at 256 without huge_tree).

    One XPath step per level, evaluated in C: any element at depth ``max_depth + 1`` is too deep.
    """
    if _too_deep(max_depth)(root):
        raise InvalidRequest(f"nesting deeper than {max_depth}")


@functools.lru_cache(maxsize=8)
def _too_deep(max_depth: int) -> etree.XPath:
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


def parse_trusted(data: bytes) -> etree._Element:
    """Parse XML this process produced itself (a token it just built): still no DTD or network, no limits."""
    return etree.fromstring(data, _PARSER)


def id_map(root: etree._Element) -> dict[str, etree._Element]:
    """Every element's Id (wsu:Id, ID, AssertionID, Id) -> element; a duplicate Id is an error."""
    ids: dict[str, etree._Element] = {}
    for element in root.iter(etree.Element):
        for attr in ID_ATTRIBUTES:
            value = element.get(attr)
            if value is None:
                continue
            if value in ids and ids[value] is not element:
                raise InvalidRequest(f"duplicate Id {value!r}", detail=value)
            ids[value] = element
    return ids
