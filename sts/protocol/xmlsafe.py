"""The only XML parser of the STS: hostile input is the normal case.

No DTDs, no entity expansion, no XInclude, no network access; bounded size, nesting depth, attributes, attribute
and text lengths, element count and namespace declarations (``XmlLimits``); processing instructions are refused
(SOAP 1.1 §3 and SOAP 1.2 Part 1 §5 forbid them); comments are dropped; Ids are resolved through a map that refuses
duplicates (XML signature wrapping relies on two elements with one Id).

The limits cost almost nothing on the normal path: libxml2 parses even a 1 MB flood in well under 100 ms (its hash
tables are randomised), so the tree is built first and then checked, and each exact check (an XPath evaluated in
C, or a walk of the namespace declarations) runs only when a count of bytes shows that the document COULD exceed
the limit: an element cannot have more attributes than the document has ``=``, a document cannot have more
elements than ``<``, nor more namespace declarations than ``xmlns``, nor a text node longer than itself. Those byte
bounds hold only in encodings where markup is literal ASCII; any other encoding (UTF-16, UTF-7, ...) gets the exact
checks every time.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from sts import ns
from sts.errors import InvalidRequest

if TYPE_CHECKING:
    from sts.config import Settings

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_DEPTH = 64

#: Attributes that carry an element's Id in the specs we read.
ID_ATTRIBUTES = (ns.qn(ns.WSU, "Id"), "ID", "AssertionID", "Id")

#: Encodings in which every markup character is its ASCII byte, so that the byte bounds above are sound.
_ASCII_MARKUP_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "latin-1"})


@dataclass(frozen=True)
class XmlLimits:
    """Bounds on one untrusted document; the defaults are the Settings defaults (CXF's and WCF's hardened readers).

    Each field names the setting that configures it, which the fault names too.
    """

    max_bytes: int = DEFAULT_MAX_BYTES  # max_request_bytes
    max_depth: int = DEFAULT_MAX_DEPTH  # max_xml_depth
    max_attributes: int = 500  # max_xml_attributes: on one element
    max_attribute_length: int = 65536  # max_xml_attribute_length: characters in one attribute value
    max_text_length: int = 131072  # max_xml_text_length: characters in one text node
    max_elements: int = 50000  # max_xml_elements: in the document
    max_namespaces_per_element: int = 64  # max_xml_namespaces_per_element: declarations on one element
    max_namespaces: int = 512  # max_xml_namespaces: distinct declarations (prefix, URI) in the document

    @classmethod
    def from_settings(cls, settings: Settings) -> XmlLimits:
        return cls(
            max_bytes=settings.max_request_bytes,
            max_depth=settings.max_xml_depth,
            max_attributes=settings.max_xml_attributes,
            max_attribute_length=settings.max_xml_attribute_length,
            max_text_length=settings.max_xml_text_length,
            max_elements=settings.max_xml_elements,
            max_namespaces_per_element=settings.max_xml_namespaces_per_element,
            max_namespaces=settings.max_xml_namespaces,
        )


DEFAULT_LIMITS = XmlLimits()


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        # Comments are dropped: exclusive c14n without comments (the only c14n we sign and verify with) does not
        # cover them, so dropping them changes nothing that is verified, and nothing reads them.
        remove_comments=True,
        # Processing instructions are kept so that they can be refused: dropping them silently would make the
        # bytes verified differ from the bytes received (a PI splitting a NameID reads as one name).
        remove_pis=False,
        collect_ids=False,
    )


_PARSER = _parser()
# Our own output has no PIs; this parser drops any, as parsing trusted XML did before.
_TRUSTED_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True, remove_pis=True, collect_ids=False
)


def parse(
    data: bytes,
    *,
    limits: XmlLimits | None = None,
    max_bytes: int | None = None,
    max_depth: int | None = None,
) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise ``InvalidRequest`` naming the limit broken.

    ``max_bytes``/``max_depth`` override the two classic bounds of ``limits`` (the defaults when not given).
    """
    limits = limits or DEFAULT_LIMITS
    if max_bytes is not None or max_depth is not None:
        limits = _overridden(limits, max_bytes, max_depth)
    if len(data) > limits.max_bytes:
        message = f"the document of {len(data)} bytes exceeds the limit of {limits.max_bytes} (max_request_bytes)"
        raise InvalidRequest(message, detail=message)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidRequest("document type declarations are refused")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidRequest(f"malformed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise InvalidRequest("document type declarations are refused")
    exact = not _ascii_markup(data, docinfo.encoding)
    check_processing_instructions(root, data, exact=exact)
    check_limits(root, data, limits, exact=exact)
    return root


@functools.lru_cache(maxsize=32)
def _overridden(limits: XmlLimits, max_bytes: int | None, max_depth: int | None) -> XmlLimits:
    return dataclasses.replace(
        limits,
        max_bytes=limits.max_bytes if max_bytes is None else max_bytes,
        max_depth=limits.max_depth if max_depth is None else max_depth,
    )


def _ascii_markup(data: bytes, encoding: str | None) -> bool:
    """Whether libxml2 read ``data`` in an encoding whose markup characters are their ASCII bytes.

    The reported encoding alone is not enough: without a declaration lxml reports UTF-8 even for UTF-16 that
    libxml2 recognised by its byte order mark. So the first markup byte must be ASCII "<" too, not a UTF-16/32
    form (a NUL next to it, or a byte order mark) nor EBCDIC's "<?xm" (4C 6F A7 94).
    """
    if (encoding or "").lower() not in _ASCII_MARKUP_ENCODINGS:
        return False
    head = data[3:67] if data.startswith(b"\xef\xbb\xbf") else data[:64]
    head = head.lstrip(b" \t\r\n")
    return head[:1] == b"<" and head[1:2] not in (b"\x00", b"") and not head.startswith(b"\x4c\x6f\xa7\x94")


def _limit(found: str, limit: int, setting: str) -> InvalidRequest:
    message = f"{found}; the limit is {limit} ({setting})"
    return InvalidRequest(message, detail=message)


def check_processing_instructions(root: etree._Element, data: bytes, *, exact: bool = True) -> None:
    """Refuse any processing instruction, before, inside or after the root element (the XML declaration is none).

    Without ``exact`` (an ASCII-markup encoding), the tree is searched only when ``<?`` occurs after the XML
    declaration.
    """
    if not exact and data.find(b"<?", _after_xml_declaration(data)) < 0:
        return
    found = _PROCESSING_INSTRUCTIONS(root)
    if found:
        target = found[0].target
        raise InvalidRequest(f"processing instruction <?{target}?>", detail=f"processing instruction <?{target}?>")


_PROCESSING_INSTRUCTIONS = etree.XPath("//processing-instruction()")  # absolute: the whole document, prolog too


def _after_xml_declaration(data: bytes) -> int:
    """The offset just after the XML declaration (0 without one; a UTF-8 byte order mark may precede it)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data.startswith(b"<?xml", start) and data[start + 5 : start + 6].isspace():
        end = data.find(b"?>", start)
        return 0 if end < 0 else end + 2
    return 0


def check_limits(root: etree._Element, data: bytes, limits: XmlLimits, *, exact: bool = True) -> None:
    """Every bound of ``limits`` on a parsed document; each exact check runs only when its byte bound is passed."""
    if exact or (len(data) > limits.max_elements and data.count(b"<") > limits.max_elements):
        elements = int(_count_elements(root))
        if elements > limits.max_elements:
            raise _limit(f"the document has {elements} elements", limits.max_elements, "max_xml_elements")
    # An element at depth d + 1 has d ancestors, each closed by an end tag "</": fewer of those, no such element.
    if exact or data.count(b"</") >= limits.max_depth:
        check_depth(root, limits.max_depth)
    if exact or data.count(b"=") > limits.max_attributes:
        _check_attribute_count(root, limits.max_attributes)
    if exact or len(data) > limits.max_attribute_length:
        longest = _longest(root, _long_attribute(limits.max_attribute_length))
        if longest:
            raise _limit(f"an attribute value has {longest} characters", limits.max_attribute_length,
                         "max_xml_attribute_length")
    if exact or len(data) > limits.max_text_length:
        longest = _longest(root, _long_text(limits.max_text_length))
        if longest:
            raise _limit(f"a text node has {longest} characters", limits.max_text_length, "max_xml_text_length")
    if exact or data.count(b"xmlns") > min(limits.max_namespaces_per_element, limits.max_namespaces):
        _check_namespaces(root, limits)


_count_elements = etree.XPath("count(//*)")


def _check_attribute_count(root: etree._Element, limit: int) -> None:
    crowded = _crowded(limit)(root)
    if crowded:
        most = max(len(element.attrib) for element in crowded)
        raise _limit(f"an element has {most} attributes", limit, "max_xml_attributes")


@functools.lru_cache(maxsize=8)
def _crowded(limit: int) -> etree.XPath:
    return etree.XPath(f"//*[count(@*) > {int(limit)}]")


@functools.lru_cache(maxsize=8)
def _long_attribute(limit: int) -> etree.XPath:
    return etree.XPath(f"//@*[string-length(.) > {int(limit)}]")


@functools.lru_cache(maxsize=8)
def _long_text(limit: int) -> etree.XPath:
    return etree.XPath(f"//text()[string-length(.) > {int(limit)}]")


def _longest(root: etree._Element, query: etree.XPath) -> int:
    """The length of the longest string the query finds (0 when it finds none)."""
    found = query(root)
    return max((len(value) for value in found), default=0)


def _check_namespaces(root: etree._Element, limits: XmlLimits) -> None:
    """Count namespace declarations per element, and distinct ones (prefix, URI) in the document.

    Distinct, like WCF's name-table quota: a batch answer's tokens each declare the same few namespaces again, a
    flood declares new ones. XPath sees in-scope namespaces, not declarations, hence the walk.
    """
    distinct: set[tuple[str | None, str]] = set()
    on_element = 0
    for event, item in etree.iterwalk(root, events=("start-ns", "start")):
        if event == "start-ns":
            distinct.add(item)
            on_element += 1
            continue
        if on_element > limits.max_namespaces_per_element:
            raise _limit(f"an element declares {on_element} namespaces", limits.max_namespaces_per_element,
                         "max_xml_namespaces_per_element")
        on_element = 0
    if len(distinct) > limits.max_namespaces:
        raise _limit(f"the document declares {len(distinct)} distinct namespaces", limits.max_namespaces,
                     "max_xml_namespaces")


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
    return etree.fromstring(data, _TRUSTED_PARSER)


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
