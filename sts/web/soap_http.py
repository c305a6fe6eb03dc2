"""The SOAP endpoints' HTTP side, served straight from the ASGI scope: POST in, SOAP envelope out.

These routes carry every token request, so they skip what a general framework builds per request (Request and
Response objects, header multi-dicts) and do not hop to a thread: the pipeline runs inline on the event loop
(``sts.offload``), a due brute-force delay is awaited there (``sts.service.throttle.run_throttled``), and a step
that turns out heavy (a PasswordText check against scrypt) moves the request to a worker thread. Requests whose
later steps may block (a password inside ActAs/OnBehalfOf, checked late; a batch of many
tokens) and bodies not in an ASCII-compatible encoding (where a byte search for those names proves nothing) go
to a thread from the start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any

from sts.errors import InvalidRequest, StsError
from sts.model import RequestContext
from sts.protocol.soap import build_envelope, fault_http_status, render_fault
from sts.runtime import Runtime
from sts.service.throttle import run_throttled
from sts.store.prepared import ClaimTaken, not_recorded
from sts.uris import SoapVersion
from sts.web.pipeline import SoapResponse
from sts.web.request_log import note_not_recorded
from sts.web.proxies import origin_of
from sts.xmltime import utcnow

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: Names whose presence sends a request to a worker thread from the start (see the module's docstring).
_THREAD_MARKERS = (b"ActAs", b"OnBehalfOf", b"RequestSecurityTokenCollection")
_UNSUPPORTED_MEDIA = b"Content-Type must be text/xml or application/soap+xml\n"


class SoapEndpoint:
    """The ASGI app behind one SOAP route (usernamemixed, ``/services/sts``, or certificatetransport)."""

    def __init__(self, runtime: Runtime, *, loopback_bind: bool, client_certificates: bool,
                 certificate_transport: bool) -> None:
        self._runtime = runtime
        self._limit = runtime.settings.max_request_bytes
        self._loopback_bind = loopback_bind
        self._client_certificates = client_certificates
        self._certificate_transport = certificate_transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _Headers(scope["headers"])
        version = soap_version(headers.first(b"content-type"))
        if version is None:
            await _send(send, 415, b"text/plain; charset=utf-8", _UNSUPPORTED_MEDIA)
            return
        ctx = self._context(scope, headers, version)
        body = await read_limited(receive, headers.first(b"content-length"), self._limit)
        if body is None:
            result = fault(too_large(self._limit), version)
        else:
            result = await self._handle(body, ctx)
        await _send(send, result.status, result.content_type.encode("latin-1"), result.body)

    async def _handle(self, body: bytes, ctx: RequestContext) -> SoapResponse:
        handle = self._runtime.endpoint.handle

        def run() -> Awaitable[SoapResponse]:
            return run_throttled(lambda: handle(body, ctx), origin=(ctx.remote, ctx.received_at),
                                 inline=runs_inline(body))

        committer = self._runtime.group_commit
        if committer is None:
            return await run()
        # The rows the request defers (its token, its audit entry, its nonce) are group-committed; the answer
        # waits for that.
        result: SoapResponse | None
        with committer.collecting() as waiter:
            try:
                result = await run()
            except ClaimTaken:  # a write that could not wait for the commit found the nonce held
                result = None
        if result is not None and await waiter.committed():
            return result
        if result is None or waiter.claim_taken:
            # Its nonce was held (a replay): nothing of this run was committed or sent. Run again with the claim
            # made at once, which refuses the request as a replay, with its fault and audit entry.
            with committer.collecting(claims_wait=False) as waiter:
                result = await run()
            if await waiter.committed():
                return result
        note_not_recorded()
        return fault(not_recorded(), ctx.soap_version)

    def _context(self, scope: Scope, headers: _Headers, version: SoapVersion) -> RequestContext:
        return request_context(scope, version, loopback_bind=self._loopback_bind,
                               client_certificates=self._client_certificates,
                               certificate_transport=self._certificate_transport, headers=headers)


def request_context(scope: Scope, version: SoapVersion, *, loopback_bind: bool, client_certificates: bool,
                    certificate_transport: bool, announced: bool = True,
                    headers: _Headers | None = None) -> RequestContext:
    """What the pipeline knows of a SOAP request's transport, for every route that runs one (the SOAP endpoints and
    the MEX POST): the client as ``sts.web.proxies`` decided, and a forwarded request is never a loopback one."""
    origin = origin_of(scope)
    headers = headers if headers is not None else _Headers(scope.get("headers", []))
    return RequestContext(
        remote=origin.client,
        tls=scope.get("scheme") == "https",
        loopback_bind=loopback_bind and not origin.forwarded,
        received_at=utcnow(),
        soap_version=version,
        # Only certificatetransport authenticates by it: others skip reading (maybe parsing) it.
        tls_client_cert_der=origin.certificate(scope) if certificate_transport else None,
        certificate_transport=certificate_transport,
        client_certificates=client_certificates,
        soap_version_announced=announced,
        transport_actions=transport_actions(headers.all(b"soapaction"), headers.first(b"content-type")),
    )


class SoapPostsFirst:
    """Starlette middleware: a POST to a SOAP path goes straight to its endpoint; everything else to the router
    (which has the same routes, so both ways answer alike)."""

    def __init__(self, app: Any, endpoints: dict[str, SoapEndpoint]) -> None:
        self._app = app
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            root = scope.get("root_path", "")
            endpoint = self._endpoints.get(path[len(root):] if root and path.startswith(root) else path)
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self._app(scope, receive, send)


class _Headers:
    """The few lookups a SOAP request needs, over the ASGI header list (names arrive lower-cased)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def first(self, name: bytes) -> str:
        for key, value in self._raw:
            if key == name:
                return value.decode("latin-1")
        return ""

    def all(self, name: bytes) -> list[str]:
        return [value.decode("latin-1") for key, value in self._raw if key == name]


def runs_inline(body: bytes) -> bool:
    """Whether the request may run on the event loop (see the module's docstring)."""
    start = body.lstrip()[:1]
    if start != b"<" or b"\x00" in body[:4]:
        return False  # UTF-16, UTF-32, a BOM or garbage: the thread, where the parser says what it is
    return not any(marker in body for marker in _THREAD_MARKERS)


def soap_version(content_type: str) -> SoapVersion | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "text/xml":
        return SoapVersion.SOAP11
    if media == "application/soap+xml":
        return SoapVersion.SOAP12
    return None


def transport_actions(soap_actions: list[str], content_type: str) -> tuple[tuple[str, str], ...]:
    """The actions HTTP carried: every SOAPAction header (SOAP 1.1; quoted; ``""`` means none; msal sends one with
    SOAP 1.2 too) and the ``action`` parameter of the content type (SOAP 1.2, RFC 3902). The pipeline checks them
    against wsa:Action and the RST."""
    actions: list[tuple[str, str]] = []
    for value in soap_actions:
        action = value.strip()
        if len(action) >= 2 and action[0] == action[-1] == '"':
            action = action[1:-1].strip()
        if action:
            actions.append(("SOAPAction", action))
    if "action" in content_type.lower():  # the usual content type has none: skip the parameter parser
        parsed = Message()
        parsed["content-type"] = content_type
        param = parsed.get_param("action")
        action = collapse_rfc2231_value(param).strip() if param is not None else ""
        if action:
            actions.append(("the content type's action", action))
    return tuple(actions)


async def read_limited(receive: Receive, declared: str, limit: int) -> bytes | None:
    """The request body, or None once it exceeds ``limit`` bytes (declared or as it arrives)."""
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def too_large(limit: int) -> InvalidRequest:
    """The same words as the parser's size check (sts.protocol.xmlsafe), for a body refused while it is read."""
    message = f"the request exceeds the limit of {limit} bytes (max_request_bytes)"
    return InvalidRequest(message, detail=message)


def fault(err: StsError, version: SoapVersion) -> SoapResponse:
    body = build_envelope(version, render_fault(err, version, None))
    return SoapResponse(fault_http_status(err, version), version.content_type, body)


async def _send(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["SoapEndpoint", "SoapPostsFirst", "fault", "read_limited", "runs_inline", "soap_version", "too_large",
           "transport_actions"]
