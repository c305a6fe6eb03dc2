"""Fuzz target 2: the WS-Security header reader and the signature reader, as the pipeline calls them
(``parse_security_header`` -> ``RequestAuthenticator``: UsernameToken, X.509 signature, verify_message).

Properties: only an ``StsError`` escapes; and a request that authenticates by its signature yields the RST the
client signed, never another one (signature wrapping moves a signed Body aside and puts a forged one in its place).
"""

from __future__ import annotations

import time

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from fuzzing import RP, FreshSeeds, fuzz_settings, request_envelopes, tally
from mutations import mutate
from signing import make_client, rst_root
from sts.errors import StsError
from sts.model import RequestContext
from sts.protocol.soap import parse_envelope
from sts.protocol.wsse.build import sign_envelope
from sts.protocol.wsse.header import parse_security_header
from sts.protocol.wsse.signature import AlgorithmPolicy
from sts.protocol.xmlsafe import parse
from sts.service.auth import ProofDemand, RequestAuthenticator, UsernameTokenAuthenticator, X509Authenticator
from sts.store.database import Database, open_database
from sts.store.passwords import PasswordHasher, SecretBox
from sts.uris import AuthnMethod

CLIENT = make_client("svc")


class EveryNonceIsNew:
    """The replay cache as a fake that never remembers: each example reaches the checks after the nonce."""

    def first_seen(self, key: bytes, until: datetime) -> bool:
        return True


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("fuzz-auth") / "sts.db"
    db = open_database(f"sqlite:///{path}", hasher=PasswordHasher(n=2**4), secret_box=SecretBox(bytes(range(32))))
    db.users.add("alice", "wonderland")
    db.clients.add("svc", CLIENT[1].public_bytes(Encoding.PEM))
    yield db
    db.close()


def _signed(style: str) -> bytes:
    root = rst_root()
    sign_envelope(root, CLIENT[0], CLIENT[1], key_reference=style)  # type: ignore[arg-type]
    serialised: bytes = etree.tostring(root)
    return serialised


def _seeds() -> list[bytes]:
    return [_signed(style) for style in ("bst", "ski", "thumbprint", "issuer-serial")] + \
        request_envelopes("alice", "wonderland")


SEEDS = FreshSeeds(_seeds)


def _authenticator(db: Database) -> RequestAuthenticator:
    never = EveryNonceIsNew()
    return RequestAuthenticator(
        username=UsernameTokenAuthenticator(users=db.users, replay=never),
        x509=X509Authenticator(clients=db.clients, replay=never, algorithms=AlgorithmPolicy.strict()),
        demand=ProofDemand.EITHER,
    )


def authenticate(db: Database, blob: bytes) -> None:
    root = parse(blob)
    envelope = parse_envelope(root)
    header = parse_security_header(envelope)
    ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=datetime.now(UTC))
    result = _authenticator(db).authenticate(envelope, root, header, ctx)
    if result.principal.authn_method is AuthnMethod.X509:
        # What the service reads is what the client signed: the seeds all ask for RP, nothing else.
        assert result.body.findtext(".//{*}Address") == RP, etree.tostring(result.body)[:300]
        assert result.signed is not None and result.body.getparent() is result.signed.signed_body


def test_the_seeds_authenticate(database: Database) -> None:
    for seed in SEEDS():
        authenticate(database, seed)


@fuzz_settings
@given(st.data())
def test_security_header(database: Database, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS()), label="seed")
    blob = mutate(data, seed)
    started = time.monotonic()
    try:
        authenticate(database, blob)
    except StsError as err:
        tally("security header", type(err).__name__, started)
    else:
        tally("security header", "authenticated", started)


# --- what the fuzzer found, kept as regressions ------------------------------------------------------------------


def test_found_empty_signature_value(database: Database) -> None:
    """Found by this target: an empty ds:SignatureValue reached signxml, whose base64 decoding raised TypeError
    (the endpoint answered the 'unexpected error' RequestFailed instead of wsse:FailedCheck; fixed in 7681a66)."""
    root = etree.fromstring(_signed("bst"))
    value = root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    assert value is not None
    value.text = ""
    with pytest.raises(StsError):
        authenticate(database, etree.tostring(root))
