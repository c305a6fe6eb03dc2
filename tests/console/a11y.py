"""An HTML accessibility smoke check: a <title>, an <h1>, and a label for every form control."""

from __future__ import annotations

import lxml.html


def check_page(html: str, where: str) -> None:
    doc = lxml.html.fromstring(html)
    title = doc.findtext(".//title")
    assert title and title.strip(), f"{where}: no <title>"
    assert doc.findall(".//h1") and doc.find(".//h1").text_content().strip(), f"{where}: no <h1>"
    labelled = {label.get("for") for label in doc.iter("label") if label.get("for")}
    for control in doc.iter("input", "select", "textarea"):
        if control.tag == "input" and control.get("type") in ("hidden", "submit", "button", "reset", "image"):
            continue
        inside_label = any(a.tag == "label" for a in control.iterancestors())
        has_label = control.get("id") in labelled or control.get("aria-label") or control.get("aria-labelledby")
        assert inside_label or has_label, f"{where}: form control {control.get('name')!r} has no label"
