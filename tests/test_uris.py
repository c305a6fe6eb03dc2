"""sts.uris: the direct lookups resolve exactly what the enums' own values and aliases name, and refuse the rest
with the reasons they always gave; member values read the same through the fast ``value``."""

from __future__ import annotations

import pytest

from sts import ns
from sts.errors import BadRequest
from sts.uris import (
    AuthnMethod, BinarySecretType, ComputedKey, DataEncryption, DigestAlgorithm, FastValueEnum, KeyTransport, KeyType,
    RequestType, SignatureAlgorithm, SoapVersion, TokenType, TrustVersion, normalize_endpoint,
)

ENUMS = [TrustVersion, SoapVersion, TokenType, KeyType, RequestType, AuthnMethod, SignatureAlgorithm, DigestAlgorithm,
         DataEncryption, KeyTransport, ComputedKey, BinarySecretType]


@pytest.mark.parametrize("enum_class", ENUMS)
def test_value_is_the_member_value(enum_class: type[FastValueEnum]) -> None:
    for member in enum_class:
        assert member.value is member._value_
        assert enum_class(member.value) is member
        assert enum_class.__members__[member.name] is member


def test_value_reads_what_the_class_declares() -> None:
    assert TrustVersion.WST13.value == ns.WST13 and TrustVersion.WST13.ns == ns.WST13
    assert KeyType.BEARER.value == f"{ns.WST13}/Bearer" and AuthnMethod.X509.value == "x509"


@pytest.mark.parametrize("enum_class", [TokenType, KeyType])
def test_parse_accepts_what_the_enum_call_accepts(enum_class: type[TokenType] | type[KeyType]) -> None:
    aliases = {TokenType: "_TOKEN_TYPE_ALIASES", KeyType: "_KEY_TYPE_ALIASES"}[enum_class]
    import sts.uris
    spellings = [m.value for m in enum_class] + list(getattr(sts.uris, aliases))
    for uri in spellings:
        assert enum_class.parse(f"  {uri}\n") is enum_class(uri)


@pytest.mark.parametrize("parse,reason", [
    (TokenType.parse, "unsupported token type"), (KeyType.parse, "unsupported key type"),
    (RequestType.parse, "unsupported request type"), (ComputedKey.parse, "unsupported computed key algorithm"),
])
def test_parse_refuses_anything_else(parse: object, reason: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse(f"{ns.WST13}/Nothing")  # type: ignore[operator]
    assert str(raised.value).startswith(reason) and raised.value.detail == f"{ns.WST13}/Nothing"


@pytest.mark.parametrize("version", list(TrustVersion))
@pytest.mark.parametrize("request_type", list(RequestType))
def test_request_type_parse(version: TrustVersion, request_type: RequestType) -> None:
    assert RequestType.parse(f" {version.value}/{request_type.value} ") == (request_type, version)
    assert request_type.uri(version) == f"{version.value}/{request_type.value}"


@pytest.mark.parametrize("uri", [f"{ns.WST13}/issue", f"{ns.WST13}/", ns.WST13, f"{ns.WST14}/Issue",
                                 f"{ns.WST13}/Issue/", f"{ns.WST2005}/RST/Issue"])
def test_request_type_near_misses_are_refused(uri: str) -> None:
    with pytest.raises(BadRequest, match="unsupported request type"):
        RequestType.parse(uri)


@pytest.mark.parametrize("version", list(TrustVersion))
def test_computed_key_either_version(version: TrustVersion) -> None:
    for member in ComputedKey:
        assert ComputedKey.parse(f"\t{member.uri(version)} ") is member


@pytest.mark.parametrize("uri,expected", [
    ("HTTPS://RP.Example:443/app/", "https://rp.example/app"),
    ("http://rp.example:80", "http://rp.example"),
    ("http://rp.example:8080/A/?q=1#F", "http://rp.example:8080/A?q=1#F"),
    ("URN:Federation:MicrosoftOnline/", "urn:federation:MicrosoftOnline"),
    ("  https://rp/  ", "https://rp"),
])
def test_normalize_endpoint(uri: str, expected: str) -> None:
    assert normalize_endpoint(uri) == expected
    assert normalize_endpoint(uri) == expected  # the cached answer is the same


def test_long_endpoints_are_normalised_alike_without_the_cache() -> None:
    path = "/p" * 400
    assert len(f"HTTPS://RP:443{path}/") > 512
    assert normalize_endpoint(f"HTTPS://RP:443{path}/") == f"https://rp{path}"


def test_a_malformed_endpoint_raises_each_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            normalize_endpoint("http://[::1/")
