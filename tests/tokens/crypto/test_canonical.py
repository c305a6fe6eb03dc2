"""Text written in exclusive-c14n form is what lxml's c14n writes for the same value, and a value XML cannot carry
is refused as lxml refuses it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from sts.tokens.crypto import canonical

# Everything XML 1.0 can carry, weighted towards what the escapes are about.
_XML_CHARS = st.one_of(
    st.sampled_from(list("&<>\"'\t\n\r ]]>")),
    st.characters(min_codepoint=0x20, max_codepoint=0xD7FF),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFD),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
)
_XML_TEXT = st.text(_XML_CHARS, max_size=40)


def _lxml_c14n(value: str) -> bytes:
    element = etree.Element("e", a=value)
    element.text = value
    return etree.tostring(element, method="c14n", exclusive=True)


@settings(max_examples=400, deadline=None)
@given(_XML_TEXT)
def test_text_and_attribute_values_are_written_as_c14n_writes_them(value: str) -> None:
    ours = f'<e a="{canonical.attribute(value)}">{canonical.text(value)}</e>'.encode()
    assert ours == _lxml_c14n(value)
    # And the bytes read back as the value.
    parsed = etree.fromstring(ours)
    assert parsed.get("a") == value and (parsed.text or "") == value


@pytest.mark.parametrize("value", ["\x00", "a\x01b", "\x1f", "\ud800", "x\udfffy", "\ufffe", "\uffff", "\x0b"])
def test_what_xml_cannot_carry_is_refused_as_lxml_refuses_it(value: str) -> None:
    with pytest.raises(ValueError):
        etree.Element("e").text = value  # the behaviour this follows
    with pytest.raises(ValueError, match="XML compatible"):
        canonical.text(value)
    with pytest.raises(ValueError, match="XML compatible"):
        canonical.attribute(value)
