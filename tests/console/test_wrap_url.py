"""URLs in the console wrap only after a separator, never at a hyphen or inside a word; the text is escaped."""

from __future__ import annotations

import re

from sts.web.console.core import wrap_url


def test_pieces_end_at_separators_and_the_scheme_stays_whole() -> None:
    html = str(wrap_url("https://service-a.example/app?x=1"))
    pieces = re.findall(r'<span class="nobr">(.*?)</span>', html)
    assert pieces == ["https://service-a.", "example/", "app?", "x=", "1"]
    assert html.count("<wbr>") == len(pieces) - 1


def test_a_urn_and_hostile_text_are_escaped() -> None:
    html = str(wrap_url('urn:x:<script>"'))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&#34;" in html
