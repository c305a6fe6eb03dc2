"""The vendored XSDs: served with rewritten imports, whitelisted by name, and usable offline for validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from sts import ns
from sts.web.metadata import SCHEMA_DIR, load_xsd_for_serving, schema_names, schema_path, xsd_url
from interop.xsd import validator

FIXTURES = Path("/work/shared/fixtures")


def _locations(data: bytes) -> list[str]:
    root = etree.fromstring(data)
    return [e.get("schemaLocation") for e in root if e.tag in (ns.qn(ns.XSD, "import"), ns.qn(ns.XSD, "include"))]


def test_every_local_import_resolves_to_a_sibling_file() -> None:
    for name in schema_names():
        for location in _locations(schema_path(name).read_bytes()):
            assert location in schema_names(), (name, location)


def test_sources_md_names_every_schema() -> None:
    sources = (SCHEMA_DIR / "SOURCES.md").read_text()
    missing = [name for name in schema_names() if f"`{name}`" not in sources]
    assert not missing


def test_served_xsd_imports_point_at_the_sts() -> None:
    base = "https://sts.example.org/"
    served = load_xsd_for_serving("ws-trust-1.3.xsd", base)
    assert served is not None
    locations = _locations(served)
    assert locations and all(loc.startswith("https://sts.example.org/services/sts?xsd=") for loc in locations)
    assert xsd_url(base, "ws-policy.xsd") in locations
    # The publisher's copyright notice (a comment before the root) survives the rewrite.
    assert b"OASIS" in served.split(b"<xs:schema", 1)[0]


def test_served_xsd_is_cached_per_base() -> None:
    assert load_xsd_for_serving("ws-addr.xsd", "http://a") is load_xsd_for_serving("ws-addr.xsd", "http://a")


@pytest.mark.parametrize(
    "name",
    ["../ns.py", "..%2Fns.py", "/etc/passwd", "SOURCES.md", "ws-trust-1.3", "", "WS-TRUST-1.3.XSD", "sub/x.xsd"],
)
def test_names_outside_the_listing_are_refused(name: str) -> None:
    assert load_xsd_for_serving(name, "https://sts.example.org") is None
    with pytest.raises(KeyError):
        schema_path(name)


@pytest.mark.parametrize(
    "fixture",
    [
        "adal-python/adfs-wstrust13-soap12-rstrc-issue-saml11-bearer.xml",
        "adal-python/adfs-wstrust13-soap12-rstrc-issue-saml11-bearer-msonline.xml",
        "adal-node/adfs-wstrust2005-soap12-rstr-issue-saml11-bearer.xml",
        "picketlink/wst-issue-onbehalfof.xml",
        "picketlink/wst-renew-saml.xml",
        "apache-cxf/adfs2-mex-getresponse-soap12.xml",
    ],
)
def test_validator_accepts_recorded_messages(fixture: str) -> None:
    path = FIXTURES / fixture
    if not path.exists():
        pytest.skip(f"{fixture} not available")
    root = etree.parse(str(path)).getroot()
    errors = [str(e.reason) for e in validator().iter_errors(root)]
    assert errors == []


def test_validator_rejects_a_broken_rst() -> None:
    rst = etree.fromstring(
        f'<wst:RequestSecurityTokenResponse xmlns:wst="{ns.WST13}"><wst:Lifetime><wst:Bogus/></wst:Lifetime>'
        "</wst:RequestSecurityTokenResponse>"
    )
    assert list(validator().iter_errors(rst))


def test_validator_covers_the_namespaces_we_write() -> None:
    namespaces = set(validator().maps.namespaces)
    for uri in (ns.WST13, ns.WST2005, ns.WST14, ns.SAML1, ns.SAML2, ns.MD, ns.DS, ns.XENC, ns.WSSE, ns.WSU, ns.SP12):
        assert uri in namespaces
