"""Wire one STS node from its settings: stores, keys, service and endpoint, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from .auth import UsernameTokenAuthenticator
from .config import Settings
from .crypto.keys import SigningKey
from .crypto.signing import XmlSigner
from .interfaces import Clock
from .lifecycle import LifecyclePolicy
from .passwords import PasswordHasher, SecretBox
from .pipeline import TrustEndpoint
from .providers import SamlTokenProvider
from .service import IssuePolicy, SecurityTokenService
from .store.database import Database, open_database
from .validators import TokenResolver
from .xmltime import utcnow


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    stores: Database
    signing_key: SigningKey
    signer: XmlSigner
    service: SecurityTokenService
    endpoint: TrustEndpoint


def open_stores(settings: Settings) -> Database:
    """The database and its stores (users, relying parties, nonces, tokens) for this process."""
    return open_database(
        settings.effective_database_url,
        hasher=PasswordHasher(n=settings.password_hash_n),
        secret_box=SecretBox(settings.secrets_key_path.read_bytes()),
    )


def build_runtime(settings: Settings, *, clock: Clock = utcnow) -> Runtime:
    stores = open_stores(settings)
    signing_key = SigningKey.load(settings.signing_key_path, settings.signing_cert_path)
    signer = XmlSigner(signing_key)
    service = SecurityTokenService(
        policy=IssuePolicy(
            issuer=settings.effective_issuer,
            clock_skew=settings.clock_skew,
            allow_unregistered_audiences=settings.allow_unregistered_audiences,
        ),
        registry=stores.relying_parties,
        users=stores.users,
        provider=SamlTokenProvider(signer, settings.effective_issuer),
        tokens=stores.tokens,
        clock=clock,
        resolver=TokenResolver(stores.tokens, [signing_key.certificate]),
        lifecycle=LifecyclePolicy(clock_skew=settings.clock_skew),
    )
    authenticator = UsernameTokenAuthenticator(
        users=stores.users,
        replay=stores.nonces,
        skew=settings.clock_skew,
        freshness=settings.nonce_window,
        allow_text_over_http=settings.allow_password_text_over_http,
    )
    from .metadata.mex import render_mex

    endpoint = TrustEndpoint(
        service,
        authenticator,
        max_bytes=settings.max_request_bytes,
        max_depth=settings.max_xml_depth,
        metadata_exchange=lambda _version: render_mex(settings.public_base_url),
    )
    return Runtime(settings, stores, signing_key, signer, service, endpoint)


__all__ = ["Runtime", "build_runtime", "open_stores"]
