"""Pre-generated unique requests: every one with a fresh nonce, timestamp and message ID, made before a measured
window so that building them costs the load generator nothing while it runs.

Kinds: Issue with a PasswordDigest UsernameToken (no password hashing on the server), Issue with PasswordText
(scrypt on the server), Issue signed with the X.509 client's key (`sts.admin.client_test.build_probe`, the request
`sts client test` sends), and Validate of a token issued before. WS-Trust 1.3 in SOAP 1.2, WS-Addressing headers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import cycle

from cryptography import x509

from sts.admin.client_test import build_probe
from sts.protocol.addressing import render_request_headers
from sts.protocol.soap import build_envelope
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wstrust.render import render_rst
from sts.tokens.crypto.keys import PrivateKey
from sts.uris import RequestType, SoapVersion, TokenType, TrustVersion

VERSION = TrustVersion.WST13
SOAP = SoapVersion.SOAP12
CONTENT_TYPE = SOAP.content_type
STATUS_VALID = VERSION.uri("status/valid").encode()
ISSUED = b"RequestedSecurityToken"


@dataclass(frozen=True)
class RequestKind:
    """How to make one request of a kind, and the bytes a successful answer contains."""

    name: str
    make: Callable[[], bytes]
    success_marker: bytes
    expected_rate: float  # a first guess of answers per second, to size the calibration run


def _envelope(rst_request_type: str, user: str, password: str, *, digest: bool, **rst: object) -> bytes:
    body = render_rst(VERSION, request_type=rst_request_type, **rst)  # type: ignore[arg-type]
    headers = render_request_headers(RequestType(rst_request_type).request_action(VERSION))
    headers.append(build_security_header(user, password, digest=digest, soap_ns=SOAP.value))
    return bytes(build_envelope(SOAP, body, headers))


def issue_with_password(user: str, password: str, applies_to: str, token_type: TokenType, *,
                        digest: bool = True) -> RequestKind:
    """Issue for ``applies_to`` with a UsernameToken: PasswordDigest (fresh nonce) or PasswordText."""
    return RequestKind(
        f"issue-{'digest' if digest else 'text'}",
        lambda: _envelope("Issue", user, password, digest=digest, applies_to=applies_to,
                          token_type_uri=token_type.value),
        ISSUED, 1500 if digest else 40)


def issue_signed(endpoint: str, key: PrivateKey, cert: x509.Certificate, applies_to: str) -> RequestKind:
    """Issue signed by the registered X.509 client (Body and Timestamp, exclusive c14n, a BinarySecurityToken)."""
    return RequestKind("issue-x509", lambda: build_probe(endpoint, key, cert, applies_to=applies_to).body,
                       ISSUED, 800)


def validate(user: str, password: str, token_ids: Sequence[str]) -> RequestKind:
    """Validate, by reference, the tokens named in turn (a digest UsernameToken authenticates each request)."""
    targets = cycle(token_ids)
    return RequestKind(
        "validate",
        lambda: _envelope("Validate", user, password, digest=True, applies_to=None,
                          targets={"ValidateTarget": next(targets)}, token_type_uri=VERSION.uri("RSTR/Status")),
        STATUS_VALID, 1500)


def generate(kind: RequestKind, count: int) -> list[bytes]:
    """``count`` unique requests of ``kind``."""
    return [kind.make() for _ in range(count)]
