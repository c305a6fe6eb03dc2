"""Assertion content, a signing key and the official SAML XSDs (from sts/schemas, else ../shared/schemas)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import xmlschema

from assertion_content import NAME, ROLES, make_content
from sts import ns
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from sts.model import AssertionContent, Claim
from paths import PROJECT_ROOT  # type: ignore[import-not-found]

_ROOT = PROJECT_ROOT
_SCHEMA_DIRS = (_ROOT / "sts" / "schemas", _ROOT.parent / "shared" / "schemas")


def _schema_file(name: str) -> Path:
    for directory in _SCHEMA_DIRS:
        if (directory / name).is_file():
            return directory / name
    pytest.skip(f"schema {name} not found in {[str(d) for d in _SCHEMA_DIRS]}")


def _load(name: str) -> xmlschema.XMLSchema:
    # The SAML XSDs import xmldsig/xenc by http URL: point them at the local copies, never the network.
    locations = [
        (ns.DS, str(_schema_file("xmldsig-core-schema.xsd"))),
        (ns.XENC, str(_schema_file("xenc-schema.xsd"))),
    ]
    return xmlschema.XMLSchema(str(_schema_file(name)), locations=locations, allow="local")


@pytest.fixture(scope="session")
def saml20_schema() -> xmlschema.XMLSchema:
    return _load("saml-schema-assertion-2.0.xsd")


@pytest.fixture(scope="session")
def saml11_schema() -> xmlschema.XMLSchema:
    return _load("oasis-sstc-saml-schema-assertion-1.1.xsd")


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("sts.test"))


@pytest.fixture(scope="session")
def ec_signing_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("sts-ec.test", ec=True))


NOW = datetime(2026, 11, 28, 0, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.fixture
def content() -> AssertionContent:
    # Microseconds (the XML times keep milliseconds), a mail claim and an authentication a second before issue.
    return make_content(
        now=NOW,
        subject_name="alice@test",
        authn_age=timedelta(seconds=1),
        claims=(NAME, ROLES, Claim("urn:oid:0.9.2342.19200300.100.1.3", ("alice@test",))),
    )
