"""Mutations of valid messages: what finds bugs in a parser far faster than random bytes.

``mutate(data, seed)`` applies one to three mutations drawn by hypothesis (so failures shrink to a short list of
operations): byte flips, insertions, deletions, duplications and truncation; element deletion, duplication,
moving and wrapping; attribute changes (including Ids copied from elsewhere, the stuff of signature wrapping);
namespace swaps; text changes; hostile snippets (DOCTYPE, entity references, PIs, comments, CDATA); encodings.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from hypothesis import strategies as st
from lxml import etree

from sts import ns

NAMESPACES = (ns.SOAP11, ns.SOAP12, ns.WST13, ns.WST2005, ns.WSSE, ns.WSU, ns.WSA, ns.SAML1, ns.SAML2, ns.DS,
              ns.XENC, "", "urn:fuzz")
ATTRIBUTES = ("ID", "AssertionID", "Id", f"{{{ns.WSU}}}Id", "URI", "Algorithm", "ValueType", "EncodingType",
              "NotBefore", "NotOnOrAfter", f"{{{ns.SOAP12}}}mustUnderstand", f"{{{ns.SOAP11}}}mustUnderstand",
              "Type", "Format")
SNIPPETS = (
    b"<!DOCTYPE x [<!ENTITY e 'boom'>]>", b"&e;", b"&amp;", b"&#0;", b"&#x110000;", b"<?pi x?>", b"<!-- c -->",
    b"<![CDATA[<x/>]]>", b"<x:y xmlns:x='urn:fuzz'/>", b"\x00", b"\xff\xfe", b"\xc0\xbc", b"</", b"<", b">", b"'",
    b'"', b"xmlns='urn:fuzz'", b" ID='_dup'", b"\r\n", b"\t", b"\xef\xbb\xbf",
)
TEXTS = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "true", "1", "2030-01-01T00:00:00Z", "not-a-date", "#", "#_0", "AAAA",
                     "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "urn:attacker:action", "x" * 300,
                     "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Cancel", "alice", "=", "\u202e"]),
    st.text(max_size=20),
)

Mutation = Callable[[st.DataObject, bytes], bytes]


# --- bytes ---------------------------------------------------------------------------------------------------------


def _position(data: st.DataObject, blob: bytes) -> int:
    return data.draw(st.integers(0, len(blob)), label="position")


def flip_byte(data: st.DataObject, blob: bytes) -> bytes:
    if not blob:
        return blob
    i = data.draw(st.integers(0, len(blob) - 1), label="byte")
    return blob[:i] + bytes([blob[i] ^ data.draw(st.integers(1, 255), label="xor")]) + blob[i + 1:]


def insert_snippet(data: st.DataObject, blob: bytes) -> bytes:
    i = _position(data, blob)
    return blob[:i] + data.draw(st.sampled_from(SNIPPETS), label="snippet") + blob[i:]


def delete_range(data: st.DataObject, blob: bytes) -> bytes:
    i = _position(data, blob)
    return blob[:i] + blob[i + data.draw(st.integers(1, 64), label="length"):]


def duplicate_range(data: st.DataObject, blob: bytes) -> bytes:
    i = _position(data, blob)
    j = min(len(blob), i + data.draw(st.integers(1, 256), label="length"))
    return blob[:j] + blob[i:j] + blob[j:]


def truncate(data: st.DataObject, blob: bytes) -> bytes:
    return blob[:_position(data, blob)]


def reencode(data: st.DataObject, blob: bytes) -> bytes:
    """The same document in another encoding, declared or not (or wrongly)."""
    text = blob.decode("utf-8", "replace")
    choice = data.draw(st.sampled_from(["utf-16", "utf-16-be-declared-le", "latin-1", "bom", "decl-ascii"]))
    if choice == "utf-16":
        return text.encode("utf-16")
    if choice == "utf-16-be-declared-le":
        return ('<?xml version="1.0" encoding="UTF-16LE"?>' + text).encode("utf-16-be")
    if choice == "latin-1":
        return b'<?xml version="1.0" encoding="ISO-8859-1"?>' + text.encode("latin-1", "replace")
    if choice == "bom":
        return b"\xef\xbb\xbf" + blob
    return b'<?xml version="1.0" encoding="US-ASCII"?>' + blob


# --- the tree ------------------------------------------------------------------------------------------------------


def _tree_mutation(change: Callable[[st.DataObject, etree._Element, list[etree._Element]], None]) -> Mutation:
    """Parse the blob (a seed or an earlier mutation's output), change the tree, serialise it again."""

    def mutation(data: st.DataObject, blob: bytes) -> bytes:
        try:
            root = etree.fromstring(blob, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
        except etree.XMLSyntaxError:
            return blob
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        change(data, root, elements)
        serialised: bytes = etree.tostring(root)
        return serialised

    mutation.__name__ = change.__name__.lstrip("_")
    return mutation


def _pick(data: st.DataObject, elements: list[etree._Element], label: str, *, root_ok: bool = True) -> etree._Element:
    candidates = elements if root_ok else elements[1:] or elements
    return candidates[data.draw(st.integers(0, len(candidates) - 1), label=label)]


@_tree_mutation
def _delete_element(data: st.DataObject, root: etree._Element, elements: list[etree._Element]) -> None:
    victim = _pick(data, elements, "delete", root_ok=False)
    parent = victim.getparent()
    if parent is not None:
        parent.remove(victim)


@_tree_mutation
def _duplicate_element(data: st.DataObject, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(data, elements, "duplicate", root_ok=False)
    if element.getparent() is not None:
        element.addnext(copy.deepcopy(element))


@_tree_mutation
def _move_element(data: st.DataObject, root: etree._Element, elements: list[etree._Element]) -> None:
    """Move an element (with a copy left behind or not) under another one: the signature-wrapping move."""
    element = _pick(data, elements, "move", root_ok=False)
    target = _pick(data, elements, "to")
    if element.getparent() is None or element in target.iterancestors() or element is target:
        return
    moved = copy.deepcopy(element) if data.draw(st.booleans(), label="keep original") else element
    target.insert(data.draw(st.integers(0, len(target)), label="index"), moved)


@_tree_mutation
def _wrap_element(data: st.DataObject, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(data, elements, "wrap", root_ok=False)
    if element.getparent() is None:
        return
    wrapper = etree.Element(f"{{{data.draw(st.sampled_from(NAMESPACES), label='ns')}}}Wrapper"
                            if data.draw(st.booleans()) else "Wrapper")
    element.addprevious(wrapper)
    wrapper.append(element)


@_tree_mutation
def _set_attribute(data: st.DataObject, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(data, elements, "attribute on")
    name = data.draw(st.sampled_from([*element.attrib.keys(), *ATTRIBUTES]), label="attribute")
    # An Id taken from another element (duplicate Ids, re-pointed References) or a drawn value.
    ids = [value for e in elements for key, value in e.attrib.items() if key in ATTRIBUTES[:4]]
    values = st.one_of(TEXTS, st.sampled_from(ids or [""]), st.sampled_from(["#" + i for i in ids] or ["#"]))
    try:
        element.set(name, data.draw(values, label="value"))
    except ValueError:  # a value lxml cannot hold (control characters): nothing to send
        pass


@_tree_mutation
def _delete_attribute(data: st.DataObject, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(data, elements, "attribute of")
    if element.attrib:
        del element.attrib[data.draw(st.sampled_from(list(element.attrib.keys())), label="attribute")]


@_tree_mutation
def _swap_namespace(data: st.DataObject, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(data, elements, "rename")
    local = etree.QName(element).localname
    namespace = data.draw(st.sampled_from(NAMESPACES), label="namespace")
    element.tag = f"{{{namespace}}}{local}" if namespace else local


@_tree_mutation
def _set_text(data: st.DataObject, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(data, elements, "text of")
    try:
        element.text = data.draw(TEXTS, label="text")
    except ValueError:
        pass


BYTE_MUTATIONS: tuple[Mutation, ...] = (flip_byte, insert_snippet, delete_range, duplicate_range, truncate, reencode)
TREE_MUTATIONS: tuple[Mutation, ...] = (
    _delete_element, _duplicate_element, _move_element, _wrap_element, _set_attribute, _delete_attribute,
    _swap_namespace, _set_text,
)
#: Tree mutations twice as likely: most byte mutations end at the XML parser, tree ones reach the code behind it.
MUTATIONS: tuple[Mutation, ...] = BYTE_MUTATIONS + TREE_MUTATIONS * 2


def mutate(data: st.DataObject, seed: bytes) -> bytes:
    """One to three mutations of ``seed``, each drawn (and shrunk) by hypothesis."""
    blob = seed
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        blob = data.draw(st.sampled_from(MUTATIONS), label="mutation")(data, blob)
    return blob
