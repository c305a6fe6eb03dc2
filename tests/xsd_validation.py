"""One offline XSD validator over the schemas the STS vendors (sts/schemas), for the tests only.

xmlschema is a test dependency: the library never imports it (tests/test_dependencies.py checks that whatever
sts/ imports comes with `make run`).
"""

from __future__ import annotations

import functools
from typing import Any

import xmlschema
from lxml import etree

from sts import ns
from sts.web.metadata import SCHEMA_DIR, VALIDATION_SCHEMAS


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
