"""Schema validation against the official XSDs vendored in ``sts/schemas`` (a clone needs nothing else)."""

from __future__ import annotations

from typing import Final

from lxml import etree

from sts.metadata import validator

__all__ = ["xsd_problems"]

_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_MAX_REPORTED: Final = 3


def xsd_problems(data: bytes) -> list[str]:
    """The first few schema errors of a message (empty: valid); lax where a schema has xs:any."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as err:
        return [f"not XML: {err}"]
    errors = []
    for error in validator().iter_errors(root):
        errors.append(f"{error.path}: {error.reason}")
        if len(errors) == _MAX_REPORTED:
            break
    return errors
