"""Authenticators: turn the verified credentials of a request into a ``Principal``.

* ``UsernameTokenAuthenticator``: WSS UsernameToken Profile (text or digest password);
* ``X509Authenticator``: a request signed (WSS 1.1 §8, X.509 Token Profile) with a registered client
  certificate, over the soap:Body and the wsu:Timestamp;
* ``X509Authenticator.authenticate_transport``: the certificate a registered client presented in the TLS
  handshake (AD FS's ``certificatetransport`` endpoints, ``ctx.certificate_transport``);
* ``RequestAuthenticator``: the one the endpoint calls; applies the ``ProofDemand`` (setting ``client_proof``)
  and says which Body the RST must be read from.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from cryptography import x509
from lxml import etree

from sts import ns
from sts.tokens.crypto.keys import check_certificate
from sts.errors import (
    FailedAuthentication, FailedCheck, InvalidRequest, MessageExpired, ReplayedMessage, UnsupportedAlgorithm,
)
from sts.interfaces import ClientDirectory, ReplayCache, UserDirectory
from sts.model import ClientRecord, Principal, RequestContext
from sts.protocol.soap import Envelope
from sts.uris import AuthnMethod
from sts.protocol.wsse.header import SecurityHeader
from sts.protocol.wsse.signature import (
    AlgorithmPolicy,
    CertificateReference,
    IssuerSerialReference,
    KeyReference,
    SignedMessage,
    SkiReference,
    ThumbprintReference,
    TrustedKey,
    find_signature,
    verify_message,
)
from sts.protocol.wsse.timestamp import check_created, check_timestamp
from sts.protocol.wsse.username import verify_username_token
from sts.service.throttle import AuthThrottle


@dataclass(frozen=True)
class UsernameTokenAuthenticator:
    users: UserDirectory
    replay: ReplayCache
    skew: timedelta = timedelta(minutes=5)
    freshness: timedelta = timedelta(minutes=5)
    allow_text_over_http: bool = False
    #: The brute-force throttle every password check goes through (None: unthrottled, for tests of the rest).
    throttle: AuthThrottle | None = None

    def authenticate(self, header: SecurityHeader, ctx: RequestContext) -> Principal:
        now = ctx.received_at
        check_timestamp(header.timestamp, now, self.skew)
        token = header.username_token
        if token is None:
            raise FailedAuthentication("no UsernameToken in the request")
        throttle = self.throttle

        def check(name: str, verify: Callable[[], bool]) -> bool:
            if throttle is None:
                return verify()
            return throttle.check(name, ctx.remote, ctx.received_at, verify)

        name = verify_username_token(
            token,
            self.users,
            self.replay,
            now=now,
            window=self.freshness,
            skew=self.skew,
            text_allowed=ctx.tls or ctx.loopback_bind or self.allow_text_over_http,
            check=check,
        )
        return Principal(name=name, authn_method=AuthnMethod.PASSWORD, authn_instant=now)


# --- X.509-signed requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientAuthentication:
    client: ClientRecord
    signed: SignedMessage


@dataclass(frozen=True)
class X509Authenticator:
    """A request signed with a registered, currently valid client certificate over Body and Timestamp.

    The Timestamp is required, must be fresh (Created within ``freshness``) and the signature value is
    remembered in the replay cache for that window: a replayed signed RST is ``wsse:MessageExpired``.
    """

    clients: ClientDirectory
    replay: ReplayCache
    algorithms: AlgorithmPolicy = field(default_factory=AlgorithmPolicy.strict)
    skew: timedelta = timedelta(minutes=5)
    freshness: timedelta = timedelta(minutes=5)

    def authenticate(
        self, root: etree._Element, security: etree._Element, header: SecurityHeader, ctx: RequestContext
    ) -> ClientAuthentication:
        now = ctx.received_at
        check_timestamp(header.timestamp, now, self.skew)
        found: list[ClientRecord] = []

        def resolve(reference: KeyReference) -> TrustedKey:
            record = self._lookup(reference)
            if record is None:
                raise FailedAuthentication("the signing certificate is not registered")
            if record.disabled:
                raise FailedAuthentication(f"client {record.name} is disabled")
            found.append(record)
            return TrustedKey(record.certificate, record.allow_sha1)

        try:
            signed = verify_message(root, security, resolve=resolve, allowed=self.algorithms, now=now)
        except (FailedCheck, UnsupportedAlgorithm) as err:
            if not found:
                raise
            # The log and the audit trail name the client whose certificate the signature points to.
            raise type(err)(_naming_client(err, found[-1]), detail=err.detail) from None
        # verify_message demanded a signed Timestamp; its Created bounds the replay window.
        created = header.timestamp.created if header.timestamp is not None else None
        if created is None:
            raise MessageExpired("a signed request needs a Timestamp with Created")
        check_created(created, now, self.freshness, self.skew)
        key = b"x509-signature\x00" + hashlib.sha256(signed.signature_value).digest()
        if not self.replay.first_seen(key, created + self.freshness + 2 * self.skew):
            raise ReplayedMessage("replayed signed request")
        return ClientAuthentication(found[-1], signed)

    def authenticate_transport(self, header: SecurityHeader, ctx: RequestContext) -> ClientRecord:
        """The registered, enabled, currently valid client whose certificate the TLS handshake proved.

        The TLS layer verified possession of the key (and the chain against ``--ssl-client-ca``); being
        registered is what makes the certificate's holder a client. A Timestamp, if sent, must be current.
        """
        now = ctx.received_at
        check_timestamp(header.timestamp, now, self.skew)
        if ctx.tls_client_cert_der is None:
            raise FailedAuthentication("certificatetransport without a TLS client certificate")
        try:
            certificate = x509.load_der_x509_certificate(ctx.tls_client_cert_der)
        except ValueError:
            raise FailedAuthentication("unreadable TLS client certificate") from None
        record = self.clients.by_certificate(certificate)
        if record is None:
            raise FailedAuthentication("the TLS client certificate is not registered")
        if record.disabled:
            raise FailedAuthentication(f"client {record.name} is disabled")
        try:
            check_certificate(record.certificate, now)
        except ValueError as exc:
            raise FailedAuthentication(f"client {record.name}: {exc}") from None
        return record

    def _lookup(self, reference: KeyReference) -> ClientRecord | None:
        if isinstance(reference, CertificateReference):
            return self.clients.by_certificate(reference.certificate)
        if isinstance(reference, IssuerSerialReference):
            return self.clients.by_issuer_serial(reference.issuer, reference.serial)
        if isinstance(reference, SkiReference):
            return self.clients.by_ski(reference.ski)
        if isinstance(reference, ThumbprintReference):
            return self.clients.by_thumbprint(reference.sha1)
        raise FailedAuthentication("unsupported key reference")


# --- the combination the endpoint uses ------------------------------------------------------------------------


class ProofDemand(enum.Enum):
    """What a client must prove (setting ``client_proof``).

    * ``USERNAME_TOKEN``: a UsernameToken; a signature, if any, is not looked at;
    * ``SIGNATURE``: a signature by a registered client over Body and Timestamp; without one the request is
      ``wst:FailedAuthentication`` (a UsernameToken alone is not a proof here);
    * ``EITHER``: a valid signature or a valid UsernameToken. When both are sent both must be valid; the
      principal is then the user (the person) and the RST is read from the signed Body.
    """

    USERNAME_TOKEN = "username"
    SIGNATURE = "signature"
    EITHER = "either"


@dataclass(frozen=True)
class AuthResult:
    """Who the requester is, what its signature covers (None when unsigned), and where the RST is.

    ``requester_certificate`` is the certificate whose key the requester proved it holds: the one that signed
    the request, or the TLS client certificate on certificatetransport; None otherwise. The service takes it as
    the proof of possession for PublicKey tokens and encrypts proof keys for it.
    """

    principal: Principal
    signed: SignedMessage | None
    body: etree._Element  # the RST element: the child of the VERIFIED signed Body when signed
    client: ClientRecord | None = None
    requester_certificate: x509.Certificate | None = None


@dataclass(frozen=True)
class RequestAuthenticator:
    """Applies a ``ProofDemand`` over the UsernameToken and X.509 authenticators."""

    username: UsernameTokenAuthenticator
    x509: X509Authenticator | None = None
    demand: ProofDemand = ProofDemand.EITHER

    def authenticate(
        self,
        envelope: Envelope,
        root: etree._Element,
        header: SecurityHeader,
        ctx: RequestContext,
        *,
        demand: ProofDemand | None = None,
    ) -> AuthResult:
        demand = demand or self.demand
        if ctx.certificate_transport:
            return self._by_transport(envelope, header, ctx)
        security = envelope.header(ns.WSSE, "Security")
        signed = demand is not ProofDemand.USERNAME_TOKEN and find_signature(security) is not None
        if demand is ProofDemand.SIGNATURE and not signed:
            raise FailedAuthentication("this STS requires a signed request")
        if not signed:
            if envelope.body is None:
                raise InvalidRequest("soap:Body is empty", detail="Body")
            return AuthResult(self.username.authenticate(header, ctx), None, envelope.body)
        if self.x509 is None:
            raise FailedAuthentication("signed requests are not configured")
        assert security is not None  # a signature was found in it
        # The password first: a throttled request is run again from the start (sts.service.throttle), so the
        # wait must come before anything is recorded, such as the signature in the replay cache.
        person = None
        if demand is ProofDemand.EITHER and header.username_token is not None:
            person = self.username.authenticate(header, ctx)
        verified = self.x509.authenticate(root, security, header, ctx)
        body = _only_child(verified.signed.signed_body)
        certificate = verified.signed.certificate
        if person is not None:
            return AuthResult(person, verified.signed, body, verified.client, certificate)
        principal = Principal(name=verified.client.name, authn_method=AuthnMethod.X509, authn_instant=ctx.received_at)
        return AuthResult(principal, verified.signed, body, verified.client, certificate)

    def _by_transport(self, envelope: Envelope, header: SecurityHeader, ctx: RequestContext) -> AuthResult:
        """certificatetransport: the TLS client certificate alone authenticates, whatever the ``ProofDemand``.

        Message credentials (a UsernameToken, a signature) are not looked at: the channel authenticates the
        whole message, so the RST is read from the Body as received.
        """
        if self.x509 is None:
            raise FailedAuthentication("client certificates are not configured")
        record = self.x509.authenticate_transport(header, ctx)
        if envelope.body is None:
            raise InvalidRequest("soap:Body is empty", detail="Body")
        principal = Principal(name=record.name, authn_method=AuthnMethod.X509, authn_instant=ctx.received_at)
        return AuthResult(principal, None, envelope.body, record, record.certificate)


def _only_child(body: etree._Element) -> etree._Element:
    """The single element inside the verified soap:Body."""
    children = [child for child in body if isinstance(child.tag, str)]
    if len(children) != 1:
        raise InvalidRequest(f"soap:Body has {len(children)} elements, expected 1")
    return children[0]


def _naming_client(err: FailedCheck | UnsupportedAlgorithm, record: ClientRecord) -> str:
    """The internal reason with the client (claimed: its signature did not verify); a SHA-1 refusal says it is the
    client's policy, not a broken signature."""
    text = f"signature with the certificate of client {record.name}: {err}"
    if isinstance(err, UnsupportedAlgorithm) and not record.allow_sha1 and "sha1" in str(err):
        text += f" (client {record.name} is not registered with --allow-sha1)"
    return text
