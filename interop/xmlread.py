"""The one way the suite parses XML: ``sts.protocol.xmlsafe.parse`` (no DTD, no entities, no network, bounded), with
room for recorded documents (an AD FS MEX answer is 160 KB)."""

from __future__ import annotations

from typing import Final

from lxml import etree

from sts.errors import InvalidRequest
from sts.protocol.xmlsafe import parse

__all__ = ["XmlError", "read_xml"]

MAX_BYTES: Final = 8 * 1024 * 1024
MAX_DEPTH: Final = 128
#: What ``read_xml`` raises for input that is not acceptable XML (its message says why).
XmlError = InvalidRequest


def read_xml(data: bytes) -> etree._Element:
    return parse(data, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH)
