"""sts.ns: Clark-notation names split the same way whether or not the split is cached."""

from __future__ import annotations

import pytest

from sts import ns


@pytest.mark.parametrize("tag,expected", [
    (f"{{{ns.WST13}}}RequestSecurityToken", (ns.WST13, "RequestSecurityToken")),
    ("Local", ("", "Local")),
    ("{}Local", ("", "Local")),
    ("{urn:x}", ("urn:x", "")),
    ("{urn:unclosed", ("urn:unclosed", "")),
])
def test_split_qn(tag: str, expected: tuple[str, str]) -> None:
    assert ns.split_qn(tag) == expected
    assert ns.split_qn(tag) == expected


def test_long_tags_split_alike() -> None:
    namespace = "urn:" + "x" * 1000
    assert ns.split_qn(ns.qn(namespace, "Local")) == (namespace, "Local")


def test_qn_round_trips() -> None:
    assert ns.split_qn(ns.qn(ns.WSA, "Action")) == (ns.WSA, "Action")
