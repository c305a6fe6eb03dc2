"""Schema validation against the official XSDs vendored in ``sts/schemas`` (a clone needs nothing else).

One offline validator for the interop suite and the tests; xmlschema is a test dependency, never imported by the
library (tests/test_dependencies.py checks that).
"""

from __future__ import annotations

import functools
from typing import Any, Final

import xmlschema
from lxml import etree

from sts import ns
from sts.web.metadata import SCHEMA_DIR, VALIDATION_SCHEMAS

from .xmlread import XmlError, read_xml

__all__ = ["validator", "xsd_problems"]

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


def _driver_schema() -> bytes:
    """An empty schema that imports every vendored namespace, so one validator covers them all."""
    xs = "{%s}" % ns.XSD
    root = etree.Element(xs + "schema", nsmap={"xs": ns.XSD})
    for namespace, name in VALIDATION_SCHEMAS.items():
        etree.SubElement(root, xs + "import", namespace=namespace, schemaLocation=name)
    return bytes(etree.tostring(root))


@functools.cache
def validator() -> xmlschema.XMLSchema10:
    """One cached ``xmlschema`` validator over the vendored copies, built fully offline .

    ``allow="sandbox"`` confines every resource to :data:`SCHEMA_DIR`: a stray remote import fails loudly
    instead of reaching the network. Validate with ``validator().validate(element)`` or ``iter_errors``.
    """
    kwargs: dict[str, Any] = {"base_url": str(SCHEMA_DIR), "allow": "sandbox", "defuse": "always", "validation": "lax"}
    return xmlschema.XMLSchema10(_driver_schema().decode(), **kwargs)
