"""Metadata the STS publishes about itself: WSDL, WS-MetadataExchange, WS-Federation metadata, and the XSDs.

The official schemas live flat in ``sts/schemas`` (provenance in ``sts/schemas/SOURCES.md``); their imports point at
each other by bare file name, so they resolve offline. This module serves them to clients with those imports
rewritten to ``{base}/services/sts?xsd=NAME``, and builds an offline validator over them for tests.

The renderers live in the submodules: :mod:`sts.web.metadata.wsdl`, :mod:`sts.web.metadata.mex`,
:mod:`sts.web.metadata.federation`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from sts import ns


SCHEMA_DIR: Path = Path(__file__).resolve().parents[2] / "schemas"

#: Path of the SOAP endpoint under the base URL; the WSDL and the XSDs hang off it as ``?wsdl`` / ``?xsd=NAME``.
STS_PATH = "/services/sts"

_SCHEMA_LOCATION_TAGS = (ns.qn(ns.XSD, "import"), ns.qn(ns.XSD, "include"), ns.qn(ns.XSD, "redefine"))

# Vendored files are trusted, but read them with the same restrictions as anything else: no DTD, no network.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@functools.cache
def schema_names() -> frozenset[str]:
    """The file names that may be served: exactly the ``*.xsd`` files in :data:`SCHEMA_DIR` (read once)."""
    return frozenset(p.name for p in SCHEMA_DIR.glob("*.xsd") if p.is_file())


def schema_path(name: str) -> Path:
    """The local path of a vendored schema; ``KeyError`` for anything not in the listing (no path traversal)."""
    if name not in schema_names():
        raise KeyError(name)
    return SCHEMA_DIR / name


def base(base_url: str) -> str:
    """The base URL without a trailing slash, so ``base + path`` never doubles the slash."""
    return base_url.rstrip("/")


def sts_url(base_url: str) -> str:
    return base(base_url) + STS_PATH


def wsdl_url(base_url: str) -> str:
    return sts_url(base_url) + "?wsdl"


def xsd_url(base_url: str, name: str) -> str:
    return f"{sts_url(base_url)}?xsd={name}"


@functools.cache
def _schema_bytes(name: str) -> bytes:
    return schema_path(name).read_bytes()


def load_xsd_for_serving(name: str, base_url: str) -> bytes | None:
    """A vendored XSD whose imports point at this STS (``?xsd=NAME``); ``None`` if ``name`` is not served.

    ``name`` comes straight from the query string: it is only ever looked up in the directory listing, never
    joined to a path. Pass the configured public base URL, not one derived from the Host header: results are
    cached per (name, base URL).
    """
    if name not in schema_names():
        return None
    return _rewritten_xsd(name, base(base_url))


@functools.lru_cache(maxsize=256)
def _rewritten_xsd(name: str, base_url: str) -> bytes:
    tree = etree.ElementTree(etree.fromstring(_schema_bytes(name), _PARSER))
    for element in tree.getroot():
        if element.tag in _SCHEMA_LOCATION_TAGS:
            location = element.get("schemaLocation")
            # Every location in the vendored set is a sibling file name (SOURCES.md); anything else stays as is.
            if location in schema_names():
                element.set("schemaLocation", xsd_url(base_url, location))
    # Serialise the tree, not the root: the publishers' copyright comments sit before the root element.
    return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))


def preload_xsds(base_url: str) -> None:
    """Rewrite every served XSD for ``base_url`` now (at startup) rather than on the first request."""
    for name in schema_names():
        _rewritten_xsd(name, base(base_url))


#: Namespace -> vendored file for everything the offline validator knows.
VALIDATION_SCHEMAS: dict[str, str] = {
    ns.SOAP11: "soap-envelope-1.1.xsd",
    ns.SOAP12: "soap-envelope-1.2.xsd",
    ns.WSA: "ws-addr.xsd",
    ns.WSA2004: "addressing.xsd",
    ns.WSSE: "oasis-200401-wss-wssecurity-secext-1.0.xsd",
    ns.WSSE11: "oasis-wss-wssecurity-secext-1.1.xsd",
    ns.WSU: "oasis-200401-wss-wssecurity-utility-1.0.xsd",
    ns.WST2005: "ws-trust-200502.xsd",
    ns.WST13: "ws-trust-1.3.xsd",
    ns.WST14: "ws-trust-1.4.xsd",
    ns.SAML1: "oasis-sstc-saml-schema-assertion-1.1.xsd",
    "urn:oasis:names:tc:SAML:1.0:protocol": "oasis-sstc-saml-schema-protocol-1.1.xsd",
    ns.SAML2: "saml-schema-assertion-2.0.xsd",
    ns.DELEGATION: "sstc-saml-delegation.xsd",
    "urn:oasis:names:tc:SAML:2.0:protocol": "saml-schema-protocol-2.0.xsd",
    ns.MD: "saml-schema-metadata-2.0.xsd",
    ns.DS: "xmldsig-core-schema.xsd",
    ns.DS11: "xmldsig11-schema.xsd",
    ns.XENC: "xenc-schema.xsd",
    ns.XENC11: "xenc11-schema.xsd",
    "http://www.w3.org/2001/10/xml-exc-c14n#": "exc-c14n.xsd",
    ns.WSP12: "ws-policy.xsd",
    ns.WSP15: "ws-policy-1.5.xsd",
    ns.SP12: "ws-securitypolicy-1.2.xsd",
    ns.SP2005: "ws-securitypolicy-200507.xsd",
    ns.MEX: "MetadataExchange.xsd",
    "http://www.w3.org/XML/1998/namespace": "xml.xsd",
}
