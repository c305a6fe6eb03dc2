"""Templates give the bytes lxml's serialiser gives: escaping of text and attribute values, and the template's own
checks of its marks."""

from __future__ import annotations

import pytest
from lxml import etree

from sts.protocol.xmlbytes import Template, attribute_value, serialised, text_content

#: Every character the serialiser escapes, alone and mixed, with non-ASCII text and the CDATA end marker.
VALUES = ["", "plain", "a&b", "<tag>", "x > y", "]]>", 'say "hi"', "it's", "line\nbreak", "cr\rhere", "tab\there",
          "crlf\r\n", "ünïcødé – ✓", "&amp; already", "https://rp.test/a?b=1&c=2#frag", " spaced  out ",
          "\U0001f511 key", "all &<>\"'\r\n\t at once"]


@pytest.mark.parametrize("value", VALUES)
def test_text_is_escaped_as_lxml_escapes_it(value: str) -> None:
    element = etree.Element("e")
    element.text = value
    assert b"<e>" + text_content(value) + b"</e>" == serialised(element)


@pytest.mark.parametrize("value", VALUES)
def test_an_attribute_value_is_escaped_as_lxml_escapes_it(value: str) -> None:
    element = etree.Element("e", a=value)
    assert b'<e a="' + attribute_value(value) + b'"/>' == serialised(element)


@pytest.mark.parametrize("value", VALUES)
def test_a_filled_template_is_the_filled_tree_serialised(value: str) -> None:
    def tree(text: str, attribute: str) -> etree._Element:
        root = etree.Element("{urn:r}root", nsmap={"r": "urn:r"}, id=attribute)
        etree.SubElement(root, "{urn:r}first").text = text
        etree.SubElement(root, "{urn:r}again").text = text
        return root

    template = Template(tree("slot-text", "slot-attribute"), [b"slot-attribute", b"slot-text", b"slot-text"])
    assert template.slots == 3
    filled = template.fill([attribute_value(value), text_content(value), text_content(value)])
    assert filled == serialised(tree(value, value))
    parsed = etree.fromstring(filled)  # and it reads back as the values, whitespace and CR included
    assert (parsed.get("id"), parsed.findtext("{urn:r}first")) == (value, value)


def test_several_elements_serialise_one_after_another_with_their_own_declarations() -> None:
    first = etree.Element("{urn:a}one", nsmap={"a": "urn:a"})
    first.text = "slot-1"
    second = etree.Element("{urn:a}two", nsmap={"a": "urn:a"})
    second.text = "slot-2"
    template = Template([first, second], [b"slot-1", b"slot-2"])
    assert template.fill([b"x", b"y"]) == b'<a:one xmlns:a="urn:a">x</a:one><a:two xmlns:a="urn:a">y</a:two>'


def test_a_mark_that_is_missing_or_out_of_order_is_refused() -> None:
    element = etree.Element("e", a="slot-a")
    element.text = "slot-b"
    with pytest.raises(ValueError, match="no b'slot-c'"):
        Template(element, [b"slot-c"])
    with pytest.raises(ValueError, match="no b'slot-a'"):
        Template(element, [b"slot-b", b"slot-a"])


def test_a_mark_occurring_more_often_than_listed_is_refused() -> None:
    element = etree.Element("e", a="slot")
    element.text = "slot"
    with pytest.raises(ValueError, match="more often"):
        Template(element, [b"slot"])


def test_filling_with_the_wrong_number_of_values_is_refused() -> None:
    element = etree.Element("e")
    element.text = "slot"
    template = Template(element, [b"slot"])
    with pytest.raises(ValueError, match="2 values for 1 slots"):
        template.fill([b"a", b"b"])


#: One of each kind of character XML 1.0 cannot carry (§2.2), alone and inside ordinary text.
NOT_XML = ["\x00", "\x01", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]


@pytest.mark.parametrize("where", ["alone", "inside"])
@pytest.mark.parametrize("char", NOT_XML, ids=lambda c: f"U+{ord(c):04X}")
def test_what_xml_cannot_carry_is_refused_as_lxml_refuses_it(char: str, where: str) -> None:
    value = char if where == "alone" else f"urn:a{char}b"
    element = etree.Element("e")
    with pytest.raises(ValueError):  # lxml's message for a lone surrogate is the UTF-8 codec's
        element.text = value
    with pytest.raises(ValueError):
        element.set("a", value)
    with pytest.raises(ValueError, match="XML compatible"):
        text_content(value)
    with pytest.raises(ValueError, match="XML compatible"):
        attribute_value(value)
