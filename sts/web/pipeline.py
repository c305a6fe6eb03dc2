"""One SOAP request through the STS, bytes in and bytes out (DESIGN.md "One Issue request, in order").

Transport-free so that HTTP, tests and benchmarks share it: parse -> envelope -> addressing -> security header
-> authenticate -> RST -> service -> RSTR -> envelope.

Strict dispatch: the operation is what the endpoint, the action and the RST agree on. Every action given
(wsa:Action, the SOAPAction header, the SOAP 1.2 content type's action) must be one this endpoint serves
(``wsa:ActionNotSupported`` otherwise) and all must be the same; the RST's RequestType and WS-Trust version must
match it (``wst:InvalidRequest`` naming both values otherwise). No action at all is tolerated: the RequestType
decides. An envelope of another SOAP version than the content type announced is a VersionMismatch. Every ``StsError`` becomes a SOAP fault with its fixed
public reason; anything unexpected is logged with a correlation id and answered as ``wst:RequestFailed``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from sts import ns
from sts.protocol.addressing import (AddressingHeaders, agreed_action, parse_addressing, render_reply_headers,
                                    reply_headers_bytes)
from sts.store.audit import AuditTrail
from sts.service.auth import RequestAuthenticator
from sts.errors import ActionMismatch, InvalidRequest, RequestFailed, StsError, VersionMismatch
from sts.model import Principal, RequestContext, RequestSecurityToken, RequestSecurityTokenResponse
from sts.service.token_service import SecurityTokenService
from sts.protocol.soap import (
    WSA_FAULT_ACTION,
    Envelope,
    build_envelope,
    envelope_bytes,
    envelope_version,
    fault_http_status,
    parse_envelope,
    render_fault,
    upgrade_header,
)
from sts.uris import RequestType, SoapVersion, TrustVersion
from sts.protocol.wsse.header import parse_security_header
from sts.protocol.wstrust.parse import is_collection, parse_rst, parse_rst_collection
from sts.offload import together
from sts.protocol.wstrust.render import (
    render_cancel_response,
    issue_response_bytes,
    render_collection,
    render_issue_response,
    render_rstr,
    render_validate_response,
)
from sts.protocol.xmlsafe import XmlLimits, parse
from sts.web.metadata.mex import MetadataExchange
from sts.web.request_log import correlation_id, note_not_recorded, note_soap_outcome

log = logging.getLogger("sts.web.pipeline")

WXF_GET = f"{ns.WXF}/Get"
WXF_GET_RESPONSE = f"{ns.WXF}/GetResponse"

#: The WS-Trust request actions this endpoint serves (2005/02 as AD FS names them, and 1.3, which 1.4 keeps), single
#: and batch, each with the RequestType and version it stands for.
_TRUST_ACTIONS = {
    rt.request_action(v): (rt, v) for rt in RequestType for v in TrustVersion
} | {
    v.uri(f"RST/Batch{rt.value}"): (rt, v) for rt in RequestType for v in TrustVersion
}


@dataclass(frozen=True)
class SoapResponse:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class _Requester:
    """Who asks, the certificate it proved to hold (request signature or TLS handshake), and whether the
    channel is secure enough for a proof key in clear."""

    principal: Principal
    certificate: x509.Certificate | None
    secure_channel: bool


@dataclass
class _Progress:
    """What is known so far, so that a fault can be answered in the request's own versions."""

    soap: SoapVersion
    trust_ns: str | None = None
    addressing: AddressingHeaders | None = None
    # For the audit trail: which binding, who (claimed, then proven), for what, and whether auth passed.
    event: str | None = None
    actor: str | None = None
    subject: str | None = None
    authenticating: bool = False


class TrustEndpoint:
    """The WS-Trust SOAP endpoint; built once per process."""

    def __init__(
        self,
        service: SecurityTokenService,
        authenticator: RequestAuthenticator,
        *,
        limits: XmlLimits | None = None,
        max_bytes: int | None = None,
        max_depth: int | None = None,
        metadata_exchange: MetadataExchange | None = None,
        audit: AuditTrail | None = None,
        unit_of_work: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self._audit = audit
        #: Wraps each request: the store's request scope, so all its statements share one connection.
        self._unit_of_work = unit_of_work
        self._service = service
        self._authenticator = authenticator
        # max_bytes/max_depth: the older keywords, overriding those two bounds of ``limits``.
        base = limits or XmlLimits()
        self._limits = dataclasses.replace(
            base,
            max_bytes=base.max_bytes if max_bytes is None else max_bytes,
            max_depth=base.max_depth if max_depth is None else max_depth,
        )
        self._parse = functools.partial(parse, limits=self._limits)
        #: The one MEX answer: a WS-Transfer Get posted here gets what the MEX routes give.
        self.metadata_exchange = metadata_exchange
        self._actions = frozenset(_TRUST_ACTIONS) | ({WXF_GET} if metadata_exchange is not None else frozenset())

    def handle(self, body: bytes, ctx: RequestContext) -> SoapResponse:
        try:
            with self._unit_of_work():
                return self._handle_and_record(body, ctx)
        except RequestFailed as err:  # the request's rows could not be committed: nothing was handed out
            note_not_recorded()
            return self._fault(err, _Progress(soap=ctx.soap_version))

    def _handle_and_record(self, body: bytes, ctx: RequestContext) -> SoapResponse:
        progress = _Progress(soap=ctx.soap_version)
        try:
            response = self._handle(body, ctx, progress)
        except StsError as err:
            # The internal reason (which reference, transform, algorithm...) goes to the log and the audit trail;
            # the wire keeps the generic public reason.
            log.info("fault %s: %s (message %s)", type(err).__name__, err, _clip(_message_id(progress) or "-", 200))
            self._record(progress, ctx, f"{_prefix(err)}:{err.code}", str(err))
            return self._fault(err, progress)
        except Exception:  # noqa: BLE001 - the client must never see a traceback
            correlation = correlation_id()
            log.exception("unexpected error, correlation id %s", correlation)
            self._record(progress, ctx, "wst:RequestFailed", f"unexpected error, correlation id {correlation}")
            return self._fault(RequestFailed(f"unexpected error {correlation}"), progress)
        self._record(progress, ctx, "ok")
        return response

    def _record(self, progress: _Progress, ctx: RequestContext, outcome: str, reason: str | None = None) -> None:
        """One audit entry per request that reached authentication (metadata Gets and garbage are not logged). A
        refusal carries its internal reason and the request's wsa:MessageID (``sts client test`` finds it by that)."""
        note_soap_outcome(progress.soap, progress.trust_ns, progress.event, outcome, progress.subject, progress.actor)
        if self._audit is None:
            return
        refusal = {} if reason is None else _refusal_detail(reason, progress)
        if progress.authenticating:
            self._audit.record("auth-failed", actor=progress.actor, outcome=outcome,
                               detail={"remote": ctx.remote, **refusal})
        elif progress.event is not None:
            self._audit.record(progress.event, actor=progress.actor, outcome=outcome, subject=progress.subject,
                               detail=refusal or None)

    def _envelope(self, body: bytes, ctx: RequestContext, progress: _Progress) -> tuple[etree._Element, Envelope]:
        """Parse within the XML limits; the envelope's SOAP version must be the one the content type announced (a
        VersionMismatch in the announced version otherwise, SOAP 1.1 §4.4.1, SOAP 1.2 Part 1 §5.4.7)."""
        root = together("parse", self._parse, body)
        version = envelope_version(root)
        if ctx.soap_version_announced and version is not ctx.soap_version:
            raise VersionMismatch(f"a {version.name} envelope sent with the {ctx.soap_version.name} content type",
                                  detail=f"a {_SOAP_NAMES[version]} envelope sent as {_MEDIA[ctx.soap_version]}")
        envelope = parse_envelope(root)
        progress.soap = envelope.version
        return root, envelope

    def _action(self, addressing: AddressingHeaders, ctx: RequestContext, known: frozenset[str]) -> str | None:
        """The one action the request names (or None): see the module's docstring."""
        given = [("wsa:Action", action) for action in addressing.actions] + list(ctx.transport_actions)
        return agreed_action(given, known)

    def _handle(self, body: bytes, ctx: RequestContext, progress: _Progress) -> SoapResponse:
        root, envelope = self._envelope(body, ctx, progress)
        addressing = parse_addressing(envelope.headers)
        progress.addressing = addressing
        action = self._action(addressing, ctx, self._actions)
        if action == WXF_GET and self.metadata_exchange is not None:
            return _metadata(self.metadata_exchange, envelope.version, addressing, ctx)
        if envelope.body is None:
            raise InvalidRequest("soap:Body is empty", detail="Body")
        rst_version = _version_hint(envelope.body)
        progress.trust_ns = rst_version.value if rst_version else None
        progress.authenticating = True
        header = parse_security_header(envelope)
        if header.username_token is not None:
            progress.actor = header.username_token.username
        auth = self._authenticator.authenticate(envelope, root, header, ctx)
        progress.authenticating = False
        progress.actor = auth.principal.name
        progress.event = "request"
        # From here on the request is read from auth.body: the verified signed Body when the request is signed.
        requester = _Requester(auth.principal, auth.requester_certificate, ctx.tls or ctx.loopback_bind)
        if is_collection(auth.body):
            requests = parse_rst_collection(auth.body)
            progress.event = requests[0].request_type.value.lower() if requests else "batch"
            progress.subject = requests[0].applies_to if requests else None
            return self._batch(envelope.version, requests, requester, addressing, action)
        rst = parse_rst(auth.body)
        progress.event = rst.request_type.value.lower()
        progress.subject = rst.applies_to
        if rst.batch:
            raise InvalidRequest("a Batch request type outside a RequestSecurityTokenCollection", detail="RequestType")
        _check_action(action, rst.request_type, rst.version, rst.batch)
        return self._reply(
            envelope.version,
            self._alone(rst, requester),
            rst.request_type.response_action(rst.version),
            addressing,
        )

    def handle_metadata(self, body: bytes, ctx: RequestContext) -> SoapResponse:
        """A request posted to a MEX route: only a WS-Transfer Get (or no action at all) is served there."""
        progress = _Progress(soap=ctx.soap_version)
        exchange = self.metadata_exchange
        try:
            if exchange is None:
                raise InvalidRequest("metadata exchange is not served here")
            _, envelope = self._envelope(body, ctx, progress)
            addressing = parse_addressing(envelope.headers)
            self._action(addressing, ctx, _MEX_ACTIONS)  # only a WS-Transfer Get (or no action at all) is served
        except StsError as err:
            return self._fault(err, progress)
        return _metadata(exchange, envelope.version, addressing, ctx)

    def _answer(self, rst: RequestSecurityToken, requester: _Requester) -> etree._Element:
        """Run one binding and render its RSTR (an Issue's as a batch entry: ``_alone`` answers one on its own)."""
        service = self._service
        principal = requester.principal
        if rst.request_type is RequestType.ISSUE:
            return render_rstr(self._issue(rst, requester))
        if rst.request_type is RequestType.VALIDATE:
            return render_validate_response(service.validate(rst, principal))
        if rst.request_type is RequestType.RENEW:
            return render_rstr(service.renew(rst, principal))
        return render_cancel_response(service.cancel(rst, principal))

    def _batch(self, soap: SoapVersion, requests: tuple[RequestSecurityToken, ...], requester: _Requester,
               addressing: AddressingHeaders, action: str | None) -> SoapResponse:
        """One RSTRC answering a RequestSecurityTokenCollection; each request is decided on its own."""
        version = requests[0].version
        kinds = {rst.request_type for rst in requests}
        if len(kinds) != 1:
            raise InvalidRequest("a batch mixes request types", detail="RequestType")
        (kind,) = kinds
        _check_action(action, kind, version, requests[0].batch)
        answers = [self._answer(rst, requester) for rst in requests]
        # WS-Trust 2005/02 defines no "Final" actions: its batch answer is RSTR/Batch<Type>.
        batch_action = (version.uri(f"RSTR/Batch{kind.value}") if version is TrustVersion.WST2005
                        else version.uri(f"RSTRC/Batch{kind.value}Final"))
        return self._reply(soap, render_collection(version, answers), batch_action, addressing)

    def _alone(self, rst: RequestSecurityToken, requester: _Requester) -> etree._Element | bytes:
        """The answer to a request outside a batch. An Issue's (a 1.3 one wrapped in an RSTRC) as bytes when it can
        be: ``issue_response_bytes`` gives the same bytes for about a tenth of the token's CPU less."""
        if rst.request_type is RequestType.ISSUE:
            response = self._issue(rst, requester)
            return issue_response_bytes(response) or render_issue_response(response)
        return self._answer(rst, requester)

    def _issue(self, rst: RequestSecurityToken, requester: _Requester) -> RequestSecurityTokenResponse:
        return self._service.issue(rst, requester.principal, requester_cert=requester.certificate,
                                   secure_channel=requester.secure_channel)

    def _reply(
        self, version: SoapVersion, body: etree._Element | bytes, action: str, addressing: AddressingHeaders
    ) -> SoapResponse:
        if isinstance(body, bytes):
            envelope = envelope_bytes(version, reply_headers_bytes(action, addressing.message_id), body)
            return SoapResponse(200, version.content_type, envelope)
        headers = render_reply_headers(action, addressing.message_id)
        return SoapResponse(200, version.content_type, build_envelope(version, body, headers))

    def _fault(self, err: StsError, progress: _Progress) -> SoapResponse:
        headers = []
        if progress.addressing is not None and progress.addressing.action:
            headers = render_reply_headers(WSA_FAULT_ACTION, progress.addressing.message_id)
        if isinstance(err, VersionMismatch):
            headers.append(upgrade_header(progress.soap))
        fault = render_fault(err, progress.soap, progress.trust_ns)
        return SoapResponse(
            fault_http_status(err, progress.soap),
            progress.soap.content_type,
            build_envelope(progress.soap, fault, headers),
        )


def _metadata(exchange: MetadataExchange, soap: SoapVersion, addressing: AddressingHeaders,
              ctx: RequestContext) -> SoapResponse:
    """The WS-Transfer GetResponse: the same document whichever route the Get was sent to."""
    body = exchange.get_response(soap.value, addressing.message_id, certificate_transport=ctx.client_certificates)
    return SoapResponse(200, soap.content_type, body)


def _message_id(progress: _Progress) -> str | None:
    return progress.addressing.message_id if progress.addressing is not None else None


def _refusal_detail(reason: str, progress: _Progress) -> dict[str, str]:
    """The audit detail of a refused request: the internal reason (never a secret: it names at most a user, a
    reference or an algorithm) and the wsa:MessageID, both clipped (the request chose them)."""
    detail = {"reason": _clip(reason, 500)}
    message_id = _message_id(progress)
    if message_id:
        detail["message_id"] = _clip(message_id, 200)
    return detail


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _prefix(err: StsError) -> str:
    """The customary prefix of a fault code: wst (WS-Trust), wsse (WS-Security), wsa (WS-Addressing) or soap."""
    if err.code_ns is None:
        return "wst"
    return {ns.WSSE: "wsse", ns.WSA: "wsa"}.get(err.code_ns, "soap")


_MEX_ACTIONS = frozenset({WXF_GET})
_SOAP_NAMES = {SoapVersion.SOAP11: "SOAP 1.1", SoapVersion.SOAP12: "SOAP 1.2"}
_MEDIA = {SoapVersion.SOAP11: "text/xml", SoapVersion.SOAP12: "application/soap+xml"}


_TRUST_BY_NAMESPACE = {version.value: version for version in TrustVersion}


def _version_hint(body: etree._Element) -> TrustVersion | None:
    return _TRUST_BY_NAMESPACE.get(ns.split_qn(body.tag)[0])


def _check_action(action: str | None, request_type: RequestType, version: TrustVersion, batch: bool) -> None:
    """The agreed action (if any) must stand for the RST's RequestType in the RST's WS-Trust version."""
    if action is None:
        return
    if _TRUST_ACTIONS.get(action) != (request_type, version):
        name = f"Batch{request_type.value}" if batch else request_type.value
        raise ActionMismatch(("the action", action), ("the RequestType", version.uri(name)))
