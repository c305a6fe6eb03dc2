"""ASGI middleware that admits only requests carrying a token the ``TokenVerifier`` accepts (any Starlette/FastAPI app).

Where the token is read from, in order:

1. ``Authorization: SAML <base64 of the token XML bytes>`` (the header name and scheme are configurable);
2. ``X-SAML-Token: <base64 of the token XML bytes>``;
3. for a SOAP request (``text/xml`` or ``application/soap+xml``), the token in the envelope's ``wsse:Security``
   header (an Assertion, EncryptedAssertion or xenc:EncryptedData); the body is replayed to the app unchanged.

The token may be a bare assertion, an encrypted one, or a whole RSTR/RSTRC (see ``TokenVerifier.verify``). On
success the ``VerifiedToken`` is ``scope["state"]["token"]`` (``request.state.token`` in Starlette); otherwise
the answer is 401 with ``WWW-Authenticate: SAML realm="..."`` and the reason as plain text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread
from lxml import etree

from sts import ns
from sts.protocol import xmlsafe
from sts.rp.verifier import TokenRejected, TokenVerifier, VerifiedToken
from sts.tokens.verification import check_one_token

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALT_HEADER = "X-SAML-Token"
MAX_BODY = 1024 * 1024
_TOKEN_TAGS = frozenset({
    ns.qn(ns.SAML2, "Assertion"), ns.qn(ns.SAML1, "Assertion"), ns.qn(ns.SAML2, "EncryptedAssertion"),
    ns.qn(ns.XENC, "EncryptedData"),
})


def encode_header_value(token_xml: bytes, scheme: str = "SAML") -> str:
    """The ``Authorization`` value for a token: ``SAML <base64 of the token XML bytes>``."""
    return f"{scheme} {base64.b64encode(token_xml).decode('ascii')}"


def decode_token_value(value: str) -> bytes:
    """The token XML bytes of a base64 header value (standard or URL-safe alphabet, whitespace ignored)."""
    compact = "".join(value.split())
    compact += "=" * (-len(compact) % 4)
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise TokenRejected("the token header is not base64", "malformed") from None


def token_from_soap(body: bytes) -> etree._Element:
    """The token element in a SOAP envelope's wsse:Security header, or ``TokenRejected``."""
    try:
        root = xmlsafe.parse(body)
    except Exception:  # noqa: BLE001 - InvalidRequest and anything lxml may raise
        raise TokenRejected("the SOAP message is malformed", "malformed") from None
    namespace = ns.split_qn(root.tag)[0] if isinstance(root.tag, str) else ""
    if namespace not in (ns.SOAP11, ns.SOAP12) or ns.split_qn(root.tag)[1] != "Envelope":
        raise TokenRejected("not a SOAP envelope", "malformed")
    securities = root.findall(f"{{{namespace}}}Header/{{{ns.WSSE}}}Security")
    if len(securities) != 1:
        raise TokenRejected("the message has no (or more than one) wsse:Security header", "unsigned")
    tokens = [child for child in securities[0] if child.tag in _TOKEN_TAGS]
    if len(tokens) != 1:
        raise TokenRejected("the wsse:Security header carries no (or more than one) SAML token", "unsigned")
    # Nothing else of the kind anywhere in the message (the Body, another header): an application reading "the
    # assertion" from the envelope must find the one that is verified. Ids unique across the whole envelope.
    check_one_token(root, tokens[0])
    return tokens[0]


def _is_soap(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("text/xml", "application/soap+xml")


class TokenVerifierMiddleware:
    """Admit requests whose token verifies; 401 with the reason otherwise. Paths where ``protect`` is False pass."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        *,
        header: str = "Authorization",
        scheme: str = "SAML",
        protect: Callable[[str], bool] = lambda path: True,
        realm: str = "sts",
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.header = header.lower().encode("latin-1")
        self.scheme = scheme
        self.protect = protect
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protect(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            token, receive = await self._token(scope, headers, receive)
            verified: VerifiedToken = await anyio.to_thread.run_sync(self.verifier.verify, token)
        except TokenRejected as exc:
            await self._unauthorized(send, exc)
            return
        scope.setdefault("state", {})["token"] = verified
        await self.app(scope, receive, send)

    async def _token(
        self, scope: Scope, headers: dict[bytes, str], receive: Receive
    ) -> tuple[bytes | etree._Element, Receive]:
        value = headers.get(self.header)
        if value is not None:
            scheme, _, rest = value.strip().partition(" ")
            if self.header != b"authorization" and not rest:
                return decode_token_value(scheme), receive
            if scheme.lower() != self.scheme.lower() or not rest.strip():
                raise TokenRejected(f"the {self.header.decode()} header is not '{self.scheme} <token>'", "malformed")
            return decode_token_value(rest), receive
        alternative = headers.get(ALT_HEADER.lower().encode("latin-1"))
        if alternative is not None:
            return decode_token_value(alternative), receive
        if scope.get("method") == "POST" and _is_soap(headers.get(b"content-type", "")):
            body = await _read_body(receive)
            return token_from_soap(body), _replay(body, receive)
        raise TokenRejected("no security token", "unsigned")

    async def _unauthorized(self, send: Send, exc: TokenRejected) -> None:
        body = f"token rejected: {exc.reason}\n".encode()
        challenge = f'{self.scheme} realm="{self.realm}", error="{exc.code}"'
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode("latin-1")),
            ],
        })
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise TokenRejected("the client went away", "malformed")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise TokenRejected("the request body is too large", "malformed")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """The body once more for the app; afterwards the real channel (which reports the disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
