"""Schema validation against the official XSDs vendored in ``sts/schemas`` (a clone needs nothing else)."""

from __future__ import annotations

from typing import Final


from sts.web.metadata import validator

from .xmlread import XmlError, read_xml

__all__ = ["xsd_problems"]

_MAX_REPORTED: Final = 3


def xsd_problems(data: bytes) -> list[str]:
    """The first few schema errors of a message (empty: valid); lax where a schema has xs:any."""
    try:
        root = read_xml(data)
    except XmlError as err:
        return [f"not acceptable XML: {err}"]
    errors = []
    for error in validator().iter_errors(root):
        errors.append(f"{error.path}: {error.reason}")
        if len(errors) == _MAX_REPORTED:
            break
    return errors
