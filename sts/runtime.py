"""Wire one STS node from its settings: stores, keys, service and endpoint, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sts.store.audit import AuditTrail
from sts.service.auth import ProofDemand, RequestAuthenticator, UsernameTokenAuthenticator, X509Authenticator
from sts.service.directory import DirectoryUsernameAuthenticator, SubjectDirectory
from sts.service.throttle import AuthThrottle, ThrottledUsers, ThrottlePolicy
from sts.store.throttle import SqlThrottleStore
from sts.protocol.wsse.signature import AlgorithmPolicy
from sts.protocol.xmlsafe import XmlLimits
from sts.config import Settings
from sts.tokens.crypto.keys import SigningKey
from sts.tokens.crypto.proof import ProofKeyFactory
from sts.tokens.crypto.signing import XmlSigner, default_algorithm
from sts.home import encryption_cert_path, encryption_key_path, open_stores
from sts.interfaces import Clock
from sts.tokens.key_store import open_keyring
from sts.tokens.keyring import ScheduledKeys
from sts.service.lifecycle import LifecyclePolicy
from sts.web.metadata.mex import MetadataExchange
from sts.web.pipeline import TrustEndpoint
from sts.service.providers import SamlTokenProvider
from sts.service.token_service import IssuePolicy, SecurityTokenService
from sts.store.database import Database
from sts.store.group_commit import GroupCommit
from sts.store.prepared import request_scope
from sts.tokens.validators import TokenResolver
from sts.xmltime import utcnow

if TYPE_CHECKING:  # imported when a directory is configured: ldap3 costs a noticeable part of start-up
    from sts.store.ldap_directory import LdapUserStore


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    stores: Database
    signing_key: SigningKey
    signer: XmlSigner
    service: SecurityTokenService
    endpoint: TrustEndpoint
    audit: AuditTrail
    encryption_key: SigningKey | None = None
    keyring: ScheduledKeys | None = None  # set by build_runtime: signs with current(now), publishes published(now)
    throttle: AuthThrottle | None = None  # set by build_runtime: every password check goes through it
    #: The event loop's committer of the SOAP requests' token and audit rows (sts.store.group_commit).
    group_commit: GroupCommit | None = None
    #: The LDAP directory of users besides the local ones (setting ``user_store``); None when not configured.
    directory: LdapUserStore | None = None


def build_runtime(settings: Settings, *, clock: Clock = utcnow) -> Runtime:
    stores = open_stores(settings)
    audit = AuditTrail(stores.engine, clock)
    throttle = AuthThrottle(SqlThrottleStore(stores.engine), ThrottlePolicy.from_settings(settings), audit=audit,
                            clock=clock)
    keyring = open_keyring(settings, stores.engine)  # key_source: files, database or pkcs11 (KeySourceError)
    signing_key = keyring.current(clock())
    signer = XmlSigner(signing_key, default_algorithm(signing_key))  # an EC key opts in to ECDSA
    encryption_key = _load_encryption_key(settings)
    directory = _open_directory(settings)
    service = SecurityTokenService(
        policy=IssuePolicy(
            issuer=settings.effective_issuer,
            clock_skew=settings.clock_skew,
            allow_unregistered_audiences=settings.allow_unregistered_audiences,
            delegates=frozenset(settings.delegates),
        ),
        registry=stores.relying_parties,
        users=SubjectDirectory(ThrottledUsers(stores.users, throttle), stores.clients,
                               ThrottledUsers(directory, throttle) if directory is not None else None),
        provider=SamlTokenProvider(signer, settings.effective_issuer, keyring),
        tokens=stores.tokens,
        clock=clock,
        resolver=TokenResolver(stores.tokens, lambda: keyring.published(clock())),
        lifecycle=LifecyclePolicy(
            clock_skew=settings.clock_skew,
            renew_after_expiry=timedelta(seconds=settings.renew_after_expiry_seconds),
            token_admins=frozenset(settings.token_admins),
        ),
        proof_keys=ProofKeyFactory(encryption_key) if encryption_key is not None else None,
    )
    algorithms = AlgorithmPolicy.strict()
    authenticator = RequestAuthenticator(
        username=(UsernameTokenAuthenticator if directory is None else DirectoryUsernameAuthenticator)(
            users=stores.users if directory is None else SubjectDirectory(stores.users, stores.clients, directory),
            replay=stores.nonces,
            skew=settings.clock_skew,
            freshness=settings.nonce_window,
            allow_text_over_http=settings.allow_password_text_over_http,
            throttle=throttle,
        ),
        x509=X509Authenticator(
            clients=stores.clients,
            replay=stores.nonces,
            algorithms=algorithms.with_sha1() if settings.allow_sha1_signatures else algorithms,
            skew=settings.clock_skew,
            freshness=settings.nonce_window,
        ),
        demand=ProofDemand(settings.client_proof),
    )
    endpoint = TrustEndpoint(
        service,
        authenticator,
        limits=XmlLimits.from_settings(settings),
        metadata_exchange=MetadataExchange(settings.public_base_url, settings.client_proof),
        audit=audit,
        unit_of_work=lambda: request_scope(stores.engine),
    )
    return Runtime(settings, stores, signing_key, signer, service, endpoint, audit, encryption_key, keyring,
                   throttle, GroupCommit(stores.engine), directory)


def _open_directory(settings: Settings) -> LdapUserStore | None:
    """The LDAP directory of ``user_store``, or None; ValueError naming the setting to fix."""
    if not settings.user_store:
        return None
    from sts.store.ldap_directory import LdapUserStore

    return LdapUserStore.from_settings(settings)


def _load_encryption_key(settings: Settings) -> SigningKey | None:
    """The STS's own encryption key pair (client EncryptedKey entropy); absent in a home from before it existed."""
    key_path, cert_path = encryption_key_path(settings), encryption_cert_path(settings)
    return SigningKey.load(key_path, cert_path) if key_path.exists() and cert_path.exists() else None


__all__ = ["Runtime", "build_runtime", "open_stores"]
