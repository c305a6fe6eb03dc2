"""Enums whose values are the URIs of WS-Trust 2005/02, 1.3 and 1.4, SAML and XML security.

Tolerant in, strict out: aliases that real clients send (three spellings of Bearer, two forms of each SAML token
type, the 2005 NoProofKey) resolve to one member; anything unknown raises ``BadRequest`` naming the value.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit, urlunsplit

from sts import ns
from sts.errors import BadRequest


class FastValueEnum(enum.Enum):
    """An Enum whose ``value`` is a plain attribute read.

    Python 3.11's ``Enum.value`` is a Python-level descriptor (≈0.5 µs a read); an Issue reads member values a
    couple of dozen times (versions, bindings, token and key types, algorithms), so these enums read ``_value_`` in C.
    """

    if not TYPE_CHECKING:  # type checkers keep Enum's own typing of ``value``
        value = property(attrgetter("_value_"))


class TrustVersion(FastValueEnum):
    """The WS-Trust version of a message, named by its namespace (1.4 messages are 1.3 messages + 200802 parts)."""

    WST2005 = ns.WST2005
    WST13 = ns.WST13

    @property
    def ns(self) -> str:
        return self.value

    def uri(self, suffix: str) -> str:
        """The URI ``<namespace>/<suffix>`` of this version (actions, request types, status codes)."""
        return f"{self.value}/{suffix}"


class SoapVersion(FastValueEnum):
    SOAP11 = ns.SOAP11
    SOAP12 = ns.SOAP12

    @property
    def content_type(self) -> str:
        return "text/xml; charset=utf-8" if self is SoapVersion.SOAP11 else "application/soap+xml; charset=utf-8"


SAML11_PROFILE = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
SAML20_PROFILE = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"


class TokenType(FastValueEnum):
    """SAML token types; the canonical value is the ``urn:oasis`` form that ADAL/msal accept."""

    SAML11 = ns.SAML1
    SAML20 = ns.SAML2

    @classmethod
    def _missing_(cls, value: object) -> TokenType | None:
        return _TOKEN_TYPE_ALIASES.get(str(value))

    @classmethod
    def parse(cls, uri: str) -> TokenType:
        member = _TOKEN_TYPES.get(uri.strip())
        if member is None:
            raise BadRequest(f"unsupported token type {uri!r}", detail=uri)
        return member

    @classmethod
    def from_short(cls, name: str) -> TokenType:
        """``saml11`` / ``saml20`` as used on the command line and in configuration."""
        try:
            return {"saml11": cls.SAML11, "saml20": cls.SAML20}[name.lower()]
        except KeyError:
            raise ValueError(f"token type must be saml11 or saml20, not {name!r}") from None

    @property
    def short(self) -> str:
        return "saml11" if self is TokenType.SAML11 else "saml20"

    @property
    def profile_uri(self) -> str:
        return SAML11_PROFILE if self is TokenType.SAML11 else SAML20_PROFILE

    @property
    def key_identifier_value_type(self) -> str:
        """WSS SAML Token Profile ValueType of a KeyIdentifier that references this token."""
        if self is TokenType.SAML11:
            return "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID"
        return "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"


_TOKEN_TYPE_ALIASES: dict[str, TokenType] = {
    SAML11_PROFILE: TokenType.SAML11,
    SAML20_PROFILE: TokenType.SAML20,
    # Seen in the wild: the 1.0 profile fragment and the bare 1.1 assertion namespace.
    "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID": TokenType.SAML11,
    "urn:oasis:names:tc:SAML:1.1:assertion": TokenType.SAML11,
}
#: Every spelling ``TokenType.parse`` accepts, looked up directly (Enum's call path costs a few µs).
_TOKEN_TYPES: Final[Mapping[str, TokenType]] = {**{m.value: m for m in TokenType}, **_TOKEN_TYPE_ALIASES}


class KeyType(FastValueEnum):
    BEARER = f"{ns.WST13}/Bearer"
    SYMMETRIC = f"{ns.WST13}/SymmetricKey"
    PUBLIC_KEY = f"{ns.WST13}/PublicKey"

    @classmethod
    def _missing_(cls, value: object) -> KeyType | None:
        return _KEY_TYPE_ALIASES.get(str(value))

    @classmethod
    def parse(cls, uri: str) -> KeyType:
        member = _KEY_TYPES.get(uri.strip())
        if member is None:
            raise BadRequest(f"unsupported key type {uri!r}", detail=uri)
        return member


_KEY_TYPE_ALIASES: dict[str, KeyType] = {
    # The 1.3 XSD's misspelling and the MS-LWSSP variant.
    "http://docs.oasis-open.org/wssx/wstrust/200512/Bearer": KeyType.BEARER,
    "http://docs.oasis-open.org/ws-sx/wstrust/200512/Bearer": KeyType.BEARER,
    f"{ns.IDENTITY}/NoProofKey": KeyType.BEARER,
    f"{ns.WST2005}/Bearer": KeyType.BEARER,
    f"{ns.WST2005}/SymmetricKey": KeyType.SYMMETRIC,
    f"{ns.WST2005}/PublicKey": KeyType.PUBLIC_KEY,
}
_KEY_TYPES: Final[Mapping[str, KeyType]] = {**{m.value: m for m in KeyType}, **_KEY_TYPE_ALIASES}


class RequestType(FastValueEnum):
    ISSUE = "Issue"
    RENEW = "Renew"
    CANCEL = "Cancel"
    VALIDATE = "Validate"

    @classmethod
    def parse(cls, uri: str) -> tuple[RequestType, TrustVersion]:
        """Resolve a RequestType URI (either version) to the binding and the version it names."""
        uri = uri.strip()
        found = _REQUEST_TYPES.get(uri)
        if found is None:
            raise BadRequest(f"unsupported request type {uri!r}", detail=uri)
        return found

    def uri(self, version: TrustVersion) -> str:
        return version.uri(self.value)

    def request_action(self, version: TrustVersion) -> str:
        return version.uri(f"RST/{self.value}")

    def response_action(self, version: TrustVersion) -> str:
        if version is TrustVersion.WST2005:
            return version.uri(f"RSTR/{self.value}")
        if self is RequestType.ISSUE:
            return version.uri("RSTRC/IssueFinal")
        return version.uri(f"RSTR/{self.value}Final")


#: Every RequestType URI of both versions, looked up directly instead of trying each version's prefix.
_REQUEST_TYPES: Final[Mapping[str, tuple[RequestType, TrustVersion]]] = {
    version.uri(request_type.value): (request_type, version) for version in TrustVersion for request_type in RequestType
}


class AuthnMethod(FastValueEnum):
    """How the requester proved its identity: SAML 2.0 AuthnContextClassRef and SAML 1.1 AuthenticationMethod."""

    PASSWORD = "password"
    X509 = "x509"

    @property
    def saml20(self) -> str:
        if self is AuthnMethod.PASSWORD:
            return "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        return "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"

    @property
    def saml11(self) -> str:
        if self is AuthnMethod.PASSWORD:
            return "urn:oasis:names:tc:SAML:1.0:am:password"
        return "urn:ietf:rfc:2246"


class SignatureAlgorithm(FastValueEnum):
    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"


class DigestAlgorithm(FastValueEnum):
    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
    SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"


class DataEncryption(FastValueEnum):
    AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
    AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
    AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
    AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"


class KeyTransport(FastValueEnum):
    RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
    RSA_1_5 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"


EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
#: The short names administrators type for each algorithm (`sts rp --signature rsa-sha1`, the console, `sts token
#: verify --allow-algorithm`): one table for every front-end and for the verifiers' allow-lists.
SIGNATURE_NAMES: Final[Mapping[str, SignatureAlgorithm]] = {
    "rsa-sha256": SignatureAlgorithm.RSA_SHA256, "ecdsa-sha256": SignatureAlgorithm.ECDSA_SHA256,
    "rsa-sha1": SignatureAlgorithm.RSA_SHA1}
DIGEST_NAMES: Final[Mapping[str, DigestAlgorithm]] = {"sha256": DigestAlgorithm.SHA256, "sha1": DigestAlgorithm.SHA1}
DATA_ENCRYPTION_NAMES: Final[Mapping[str, DataEncryption]] = {
    "aes256-gcm": DataEncryption.AES256_GCM, "aes128-gcm": DataEncryption.AES128_GCM,
    "aes256-cbc": DataEncryption.AES256_CBC, "aes128-cbc": DataEncryption.AES128_CBC}
KEY_TRANSPORT_NAMES: Final[Mapping[str, KeyTransport]] = {
    "rsa-oaep-mgf1p": KeyTransport.RSA_OAEP_MGF1P, "rsa-1_5": KeyTransport.RSA_1_5}
#: Legacy: SHA-1, AES-CBC and RSA PKCS#1 v1.5 key transport, accepted only where explicitly configured.
LEGACY_ALGORITHM_NAMES: Final = frozenset({"rsa-sha1", "sha1", "aes256-cbc", "aes128-cbc", "rsa-1_5"})

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

PASSWORD_TEXT = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
)
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
CM_BEARER_20 = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
CM_BEARER_11 = "urn:oasis:names:tc:SAML:1.0:cm:bearer"
ATTRNAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"


class ComputedKey(FastValueEnum):
    """wst:ComputedKeyAlgorithm / wst:ComputedKey (WS-Trust 1.3 §4.4.4, 2005/02 §5.4.4), relative to the version.

    Both versions' URIs are accepted in a request of either version; answers use the request's version.
    """

    PSHA1 = "CK/PSHA1"
    HASH = "CK/HASH"

    def uri(self, version: TrustVersion) -> str:
        return version.uri(self.value)

    @classmethod
    def parse(cls, uri: str) -> ComputedKey:
        member = _COMPUTED_KEYS.get(uri.strip())
        if member is None:
            raise BadRequest(f"unsupported computed key algorithm {uri.strip()!r}", detail=uri.strip())
        return member


class BinarySecretType(FastValueEnum):
    """wst:BinarySecret/@Type (WS-Trust 1.3 §3.3), relative to the version namespace."""

    SYMMETRIC_KEY = "SymmetricKey"
    ASYMMETRIC_KEY = "AsymmetricKey"
    NONCE = "Nonce"

    def uri(self, version: TrustVersion) -> str:
        return version.uri(self.value)


_COMPUTED_KEYS: Final[Mapping[str, ComputedKey]] = {m.uri(v): m for v in TrustVersion for m in ComputedKey}

CM_HOLDER_OF_KEY_20 = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
CM_HOLDER_OF_KEY_11 = "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key"
#: SAML 2.0 profiles §3.1: the xsi:type of a holder-of-key SubjectConfirmationData that holds ds:KeyInfo.
KEY_INFO_CONFIRMATION_DATA_TYPE = "KeyInfoConfirmationDataType"


_DEFAULT_PORTS: Final = {"http": ":80", "https": ":443"}


#: Longer endpoints are normalised each time: the cache holds at most 1,024 × 512 characters of hostile input.
_CACHED_ENDPOINT_LENGTH: Final = 512


def normalize_endpoint(uri: str) -> str:
    """The form endpoints are compared in: case-folded scheme and host, no default port, no trailing slash."""
    # The same few endpoints (AppliesTo, registered relying parties) come back on every request: urlsplit and
    # urlunsplit cost more than the rest of reading the AppliesTo.
    if len(uri) <= _CACHED_ENDPOINT_LENGTH:
        return _normalize_cached(uri)
    return _normalize(uri)


@lru_cache(maxsize=1024)
def _normalize_cached(uri: str) -> str:
    return _normalize(uri)


def _normalize(uri: str) -> str:
    uri = uri.strip()
    if uri[:4].lower() == "urn:":
        # RFC 8141: "urn" and the namespace identifier are case-insensitive, the specific string is not.
        nid, sep, nss = uri[4:].partition(":")
        return f"urn:{nid.lower()}{sep}{nss}".rstrip("/")
    split = urlsplit(uri)
    scheme, netloc = split.scheme.lower(), split.netloc.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return urlunsplit((scheme, netloc, split.path.rstrip("/"), split.query, split.fragment))
