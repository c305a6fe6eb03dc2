"""The relying party's verifier: a SAML 1.1 or 2.0 token from a WS-Trust STS, checked and read.

Specs: SAML 2.0 core §2.3-§2.7 and §5.4 (signature profile), SAML 1.1 core §2.3-§2.4 and §5, WSS SAML Token
Profile 1.1, XML-Enc 1.0/1.1, SAML V2.0 Condition for Delegation Restriction.

``TokenVerifier.verify`` accepts a bare Assertion, an EncryptedAssertion / xenc:EncryptedData, a
RequestedSecurityToken, an RSTR, an RSTRC or a SOAP envelope around one; it decrypts with the relying party's key,
verifies the signature against the configured STS certificates only (never the certificate in KeyInfo; built
from a metadata URL, those follow the STS's key rollover, see ``federation_trust``) through the one verification
path the STS's Validate/Renew/Cancel use too (``sts.tokens.verification``: one token per document, unique Ids,
the algorithm allow-list checked before any cryptography, the SAML signature profile's shape, the signed element
being the token itself), and then reads everything from the XML ``verify_assertion`` returns: what the signature
covers, re-parsed from the digested bytes. Every failure is a ``TokenRejected`` with a reason and a short code; nothing
else escapes.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509
from lxml import etree

from sts import ns
from sts.protocol import xmlsafe
from sts.tokens.crypto.encryption import decrypt_key, key_transport_uri
from sts.tokens.crypto.keys import PrivateKey
from sts.tokens.verification import (
    ASSERTION_ID,
    AlgorithmAllowList,
    check_one_token,
    decrypt_token,
    verify_assertion,
)
from sts.errors import InvalidRequest
from sts.interfaces import ReplayCache
from sts.rp.federation_trust import DEFAULT_REFRESH, DEFAULT_UNKNOWN_KEY_INTERVAL, FederationMetadataTrust
from sts.rp.verified_token import _MAX_BYTES, TokenRejected, VerifiedToken
from sts.rp.saml import _read_saml11, _read_saml20, read_federation_metadata
from sts.rp.saml import claim_uri_11 as claim_uri_11
from sts.xmltime import utcnow

__all__ = [
    "AlgorithmAllowList",
    "InMemoryReplayCache",
    "TokenRejected",
    "TokenVerifier",
    "VerifiedToken",
    "extract_token",
]


_CONTAINERS: Final = frozenset({"RequestSecurityTokenResponseCollection", "RequestSecurityTokenResponse"})
_TRUST_NAMESPACES: Final = frozenset({ns.WST13, ns.WST2005, ns.WST14})


class InMemoryReplayCache:
    """``first_seen(key, until)`` in one process's memory (tests, single-process relying parties)."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._seen: dict[bytes, datetime] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def first_seen(self, key: bytes, until: datetime) -> bool:
        now = self._clock()
        with self._lock:
            for stale in [k for k, t in self._seen.items() if t <= now]:
                del self._seen[stale]
            if key in self._seen:
                return False
            self._seen[key] = until
            return True


# --- finding the token ------------------------------------------------------------------------------------------


def _local(element: etree._Element) -> tuple[str, str]:
    return ns.split_qn(element.tag) if isinstance(element.tag, str) else ("", "")


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def extract_token(root: etree._Element) -> etree._Element:
    """The token element inside an envelope, RSTRC, RSTR or RequestedSecurityToken (or ``root`` itself).

    Raises ``TokenRejected`` (malformed) when none is found. Nothing is decrypted or verified here.
    """
    element = root
    for _ in range(8):
        namespace, local = _local(element)
        if local == "Envelope" and namespace in (ns.SOAP11, ns.SOAP12):
            body = element.find(ns.qn(namespace, "Body"))
            children = _children(body) if body is not None else []
            if len(children) != 1:
                raise TokenRejected("the SOAP Body does not hold one element", "malformed")
            element = children[0]
        elif local in _CONTAINERS and namespace in _TRUST_NAMESPACES:
            found = element.find(f".//{ns.qn(namespace, 'RequestedSecurityToken')}")
            if found is None:
                raise TokenRejected("no RequestedSecurityToken in the response", "malformed")
            element = found
        elif local == "RequestedSecurityToken":
            children = _children(element)
            if not children:
                raise TokenRejected("an empty RequestedSecurityToken", "malformed")
            element = children[0]  # the token is the first child (what every relying party takes)
        else:
            return element
    raise TokenRejected("the token is nested too deep", "malformed")


# --- the verifier -----------------------------------------------------------------------------------------------


class TokenVerifier:
    """Built once per process with the STS certificates it trusts; ``verify`` is thread-safe."""

    def __init__(
        self,
        sts_certificates: Sequence[x509.Certificate],
        *,
        rp_private_key: PrivateKey | None = None,
        audience: str | Sequence[str],
        issuer: str | None = None,
        required_claims: Sequence[str] = (),
        clock_skew: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utcnow,
        replay_cache: ReplayCache | None = None,
        allow_sha1: bool = False,
        metadata: FederationMetadataTrust | None = None,
        algorithms: AlgorithmAllowList | None = None,
    ) -> None:
        """``metadata``: the certificates (and, without ``issuer``, the expected issuer: its entityID) come from
        there, kept current, instead of ``sts_certificates``. ``algorithms``: the allow-list (default
        ``AlgorithmAllowList()``); ``allow_sha1`` is the shorthand for adding RSA-SHA1 signatures and SHA-1 digests.
        """
        if not sts_certificates and metadata is None:
            raise ValueError("at least one STS certificate is needed")
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if not audiences:
            raise ValueError("at least one audience is needed")
        self.metadata = metadata
        self._fixed = tuple(sts_certificates)
        self.rp_private_key = rp_private_key
        self.audiences = audiences
        self._audience_keys = frozenset(_audience_key(a) for a in audiences)
        self.issuer = issuer
        self.required_claims = tuple(required_claims)
        self.clock_skew = clock_skew
        self.clock = clock
        self.replay_cache = replay_cache
        allowed = algorithms if algorithms is not None else AlgorithmAllowList()
        self.algorithms = allowed.allowing("rsa-sha1") if allow_sha1 else allowed

    @classmethod
    def from_federation_metadata(
        cls,
        source: str | bytes,
        *,
        metadata_certificate: x509.Certificate | None = None,
        refresh_interval: timedelta | None = DEFAULT_REFRESH,
        unknown_key_interval: timedelta | None = DEFAULT_UNKNOWN_KEY_INTERVAL,
        **options: object,
    ) -> TokenVerifier:
        """A verifier trusting the signing certificates of a WS-Federation metadata document (URL or bytes).

        With ``metadata_certificate`` the document's own signature must verify with it, and the certificates
        are read from what that signature covers. Without it the document is trusted as fetched: only do that
        over a channel you trust. ``options`` are the constructor's keyword arguments (``audience`` is needed);
        without ``issuer`` the tokens' Issuer must be the metadata's entityID.

        From a URL the certificates follow the STS's key rollover without a restart: the document is read again
        every ``refresh_interval``, and when a token is signed by a key not trusted (at most once per
        ``unknown_key_interval``, so forged tokens cannot make it fetch on every request). None turns either off.
        """
        if isinstance(source, bytes):
            certificates, entity_id = read_federation_metadata(source, metadata_certificate)
            options.setdefault("issuer", entity_id)  # the STS's entityID is the Issuer of its tokens
            return cls(certificates, **options)  # type: ignore[arg-type]
        trust = FederationMetadataTrust(source, metadata_certificate=metadata_certificate,
                                        refresh_interval=refresh_interval, unknown_key_interval=unknown_key_interval)
        return cls((), metadata=trust, **options)  # type: ignore[arg-type]

    @property
    def sts_certificates(self) -> tuple[x509.Certificate, ...]:
        """The STS certificates trusted now."""
        return self.metadata.certificates if self.metadata is not None else self._fixed

    def verify(self, token: bytes | etree._Element) -> VerifiedToken:
        """Verify ``token`` and return what its signature covers; ``TokenRejected`` otherwise (never anything else)."""
        try:
            return self._verify(token)
        except TokenRejected:
            raise
        except InvalidRequest as exc:
            raise TokenRejected(f"malformed token: {exc}", "malformed") from None
        except Exception as exc:  # noqa: BLE001 - the contract: one exception class, never a crash
            raise TokenRejected(f"malformed token ({type(exc).__name__})", "malformed") from None

    @property
    def expected_issuer(self) -> str | None:
        """``issuer``, else the entityID of the STS metadata the certificates come from (None: not checked)."""
        if self.issuer is not None:
            return self.issuer
        return self.metadata.entity_id if self.metadata is not None else None

    # --- steps ---

    def _verify(self, token: bytes | etree._Element) -> VerifiedToken:
        if self.metadata is not None:
            self.metadata.refresh_if_due()
        data = token if isinstance(token, bytes) else etree.tostring(token)
        root = xmlsafe.parse(data, max_bytes=_MAX_BYTES)
        element = extract_token(root)
        check_one_token(root, element)
        assertion = self._decrypted(element)
        signed = self._verified_assertion(assertion)
        read = _read_saml20 if signed.tag == ns.qn(ns.SAML2, "Assertion") else _read_saml11
        verified = read(signed, self._decrypt_proof_key)
        self._check(verified)
        return verified

    def _decrypted(self, element: etree._Element) -> etree._Element:
        """The assertion, decrypted when needed, as the root of its own document."""
        if element.tag in (ns.qn(ns.SAML2, "EncryptedAssertion"), ns.qn(ns.XENC, "EncryptedData")):
            return decrypt_token(element, self.rp_private_key, self.algorithms)
        if element.tag not in ASSERTION_ID:
            raise TokenRejected(f"not a SAML assertion: {_local(element)[1] or '?'}", "malformed")
        if element.getparent() is None:
            return element  # a bare assertion: already its own document, parsed once
        # Its own document: ancestors (an RSTR, an envelope) must not take part in anything below.
        return xmlsafe.parse(etree.tostring(element), max_bytes=_MAX_BYTES)

    def _verified_assertion(self, assertion: etree._Element) -> etree._Element:
        try:
            return verify_assertion(assertion, self.sts_certificates, self.algorithms, when=self.clock())
        except TokenRejected as rejected:
            if rejected.code != "signature" or not self._refreshed_for(assertion):
                raise
        return verify_assertion(assertion, self.sts_certificates, self.algorithms, when=self.clock())  # fetched now

    def _refreshed_for(self, assertion: etree._Element) -> bool:
        """Whether the signature names a key not trusted and fetching the metadata changed what is trusted."""
        if self.metadata is None:
            return False
        text = assertion.findtext(f"{{{ns.DS}}}Signature/{{{ns.DS}}}KeyInfo/{{{ns.DS}}}X509Data/{{{ns.DS}}}X509Certificate")
        if text:
            try:
                named = x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))
            except ValueError:
                named = None
            if named is not None and named in self.sts_certificates:
                return False  # a key we trust, and the signature is still wrong: no new key will fix that
        return self.metadata.refresh_for_unknown_key()

    def _decrypt_proof_key(self, encrypted_key: etree._Element) -> bytes:
        if self.rp_private_key is None:
            raise TokenRejected("the proof key is encrypted and no relying party key is configured", "decryption")
        digest = encrypted_key.find(f"{{{ns.XENC}}}EncryptionMethod/{{{ns.DS}}}DigestMethod")
        self.algorithms.check_key_transport(key_transport_uri(encrypted_key),
                                            (digest.get("Algorithm") or "").strip() if digest is not None else None)
        try:
            return decrypt_key(encrypted_key, self.rp_private_key, allowed=self.algorithms.key_transport)
        except ValueError as exc:
            raise TokenRejected(f"the proof key does not decrypt: {exc}", "decryption") from None

    def _check(self, token: VerifiedToken) -> None:
        now = self.clock()
        issuer = self.expected_issuer
        if issuer is not None and token.issuer != issuer:
            raise TokenRejected(f"unexpected issuer {token.issuer!r} (expected {issuer!r})", "issuer")
        if token.not_before is not None and now + self.clock_skew < token.not_before:
            raise TokenRejected(f"the token is not valid before {token.not_before.isoformat()}", "not-yet-valid")
        if now - self.clock_skew >= token.not_on_or_after:
            raise TokenRejected(f"the token expired at {token.not_on_or_after.isoformat()}", "expired")
        self._check_audience(token.audiences)
        for uri in self.required_claims:
            if not token.claims.get(uri):
                raise TokenRejected(f"the token lacks the required claim {uri}", "claim-missing")
        if self.replay_cache is not None:
            key = hashlib.sha256(f"{token.issuer}\0{token.token_id}".encode()).digest()
            if not self.replay_cache.first_seen(key, token.not_on_or_after + self.clock_skew):
                raise TokenRejected(f"the token {token.token_id} was already used", "replay")

    def _check_audience(self, audiences: tuple[str, ...]) -> None:
        if not audiences:
            raise TokenRejected("the token names no audience", "audience")
        if not any(_audience_key(a) in self._audience_keys for a in audiences):
            raise TokenRejected(f"the token is for another audience ({', '.join(audiences)})", "audience")


def _audience_key(uri: str) -> str:
    """Scheme and host case-insensitive, trailing slash ignored (as the STS matches AppliesTo)."""
    parts = urlsplit(uri.strip())
    if not parts.scheme or not parts.netloc:
        return uri.strip().rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}" + (
        f"?{parts.query}" if parts.query else ""
    )
