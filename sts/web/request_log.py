"""Per-request context: the correlation id, what the SOAP pipeline decided, and the JSON-lines log format.

Every HTTP request gets a correlation id: the client's ``X-Request-ID`` (or ``X-Correlation-ID``) when it is a sane
token (1-64 characters of ``[A-Za-z0-9._-]``), a fresh random one otherwise. It is answered in ``X-Request-ID``,
carried by every log record made while the request runs (text and JSON), and named in the pipeline's
"unexpected error, correlation id ..." so that a client's report finds the log lines.

:class:`RequestObserver` is the ASGI middleware that binds it; the pipeline adds what it decided with
:func:`note_soap_outcome`; when the answer is sent the observer hands the request's :class:`RequestFacts` to the
metrics and logs one line for it: with ``log_format = "json"`` a JSON object (logger ``sts.request``), with
``"text"`` uvicorn's access line (logger ``sts.access``, :class:`AccessLineFormatter`), made here instead of by
uvicorn because uvicorn's costs about 6 % of a token's CPU (``logger.info`` walks the stack for a file and line the
line never shows, and its formatter copies the record); the line reads as uvicorn's did.
"""

from __future__ import annotations

import functools
import http
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.logging import AccessFormatter
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from sts.uris import SoapVersion, TrustVersion

log = logging.getLogger("sts.request")
#: The text format's access lines (uvicorn's own access logger is left without handlers, so it writes none).
access_log = logging.getLogger("sts.access")
#: uvicorn's access message and its arguments (client address, method, path with query, HTTP version, status), so
#: that a formatter written for uvicorn's records formats these alike.
ACCESS_MESSAGE = '%s - "%s %s HTTP/%s" %d'

REQUEST_ID_HEADERS = frozenset({b"x-request-id", b"x-correlation-id"})
RESPONSE_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
#: Request data written to the log is clipped: the client chose it.
_CLIP = 256

_BINDINGS = {SoapVersion.SOAP11: "soap11", SoapVersion.SOAP12: "soap12"}
_TRUST = {TrustVersion.WST13.value: "1.3", TrustVersion.WST2005.value: "2005"}
_REQUEST_TYPES = frozenset({"issue", "validate", "renew", "cancel", "batch"})


@dataclass(slots=True)
class RequestFacts:
    """One HTTP request as the log line and the metrics see it; the SOAP fields stay empty for other requests."""

    correlation_id: str
    method: str
    path: str
    remote: str
    started: float  # time.perf_counter()
    status: int = 0
    endpoint: str | None = None  # a SOAP endpoint: sts, usernamemixed, certificatetransport
    binding: str = ""  # soap11, soap12
    trust: str = ""  # 1.3, 2005, unknown
    request_type: str = ""  # issue, validate, renew, cancel, batch, metadata, unknown
    outcome: str = ""  # ok, or the fault code (wst:FailedAuthentication)
    relying_party: str | None = None  # the AppliesTo
    user: str | None = None  # the user name claimed, then proven

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def settle(self) -> None:
        """Fill what the pipeline did not say: a request refused before it (Content-Type, size) or that failed."""
        if not self.outcome:
            self.outcome = "ok" if 0 < self.status < 400 else f"http:{self.status or 500}"
        elif self.outcome == "ok" and self.status >= 400:
            # Failed after the pipeline had decided (its rows could not be committed): the client got a fault.
            self.outcome = f"http:{self.status}"
        self.binding = self.binding or "unknown"
        self.trust = self.trust or "unknown"
        self.request_type = self.request_type or "unknown"

    def fields(self, duration: float) -> dict[str, object]:
        """The JSON log line's request fields (the SOAP ones only for a SOAP request)."""
        out: dict[str, object] = {"remote": self.remote, "method": self.method, "path": _clip(self.path),
                                  "status": self.status, "duration_ms": round(duration * 1000, 3)}
        if self.endpoint is not None:
            out.update(endpoint=self.endpoint, binding=self.binding, trust=self.trust,
                       request_type=self.request_type, outcome=self.outcome,
                       relying_party=_clip(self.relying_party), user=_clip(self.user))
        return out


_current: ContextVar[RequestFacts | None] = ContextVar("sts_request", default=None)
#: Correlation ids only need to be unique, not secret (a client may choose its own): a PRNG seeded from the OS
#: makes one in a tenth of the time of ``secrets`` (a system call each), and each worker process seeds its own.
_ids = random.Random()


def new_id() -> str:
    """A fresh correlation id: 16 hex digits."""
    return f"{_ids.getrandbits(64):016x}"


def current() -> RequestFacts | None:
    """The request being handled in this context (None outside a request, e.g. a test calling the pipeline)."""
    return _current.get()


def correlation_id() -> str:
    """The current request's correlation id, or a fresh one outside a request."""
    facts = _current.get()
    return facts.correlation_id if facts is not None else new_id()


def note_soap_outcome(soap: SoapVersion, trust_ns: str | None, event: str | None, outcome: str,
                      applies_to: str | None, user: str | None) -> None:
    """What the SOAP pipeline decided (its progress when it answered): a no-op outside an observed request.

    ``event`` is the pipeline's audit event (``issue``, ``validate``, ..., ``request`` before the RST was read,
    None before authentication); a successful request without one is a WS-Transfer Get (metadata).
    """
    facts = _current.get()
    if facts is None:
        return
    facts.binding = _BINDINGS.get(soap, "unknown")
    facts.trust = _TRUST.get(trust_ns or "", "unknown")
    if event in _REQUEST_TYPES:
        facts.request_type = event
    else:
        facts.request_type = "metadata" if event is None and outcome == "ok" else "unknown"
    facts.outcome = outcome
    facts.relying_party = applies_to
    facts.user = user


def note_not_recorded() -> None:
    """The request's rows could not be committed, so it was answered ``wst:RequestFailed`` and issued nothing."""
    facts = _current.get()
    if facts is not None:
        facts.outcome = "wst:RequestFailed"


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's request id when it is a sane token, else a fresh one (never echo what could inject)."""
    for name, value in headers:
        if name in REQUEST_ID_HEADERS and _SANE_ID.fullmatch(value):
            return value.decode("ascii")
    return new_id()


def _clip(value: str | None) -> str | None:
    if value is None or len(value) <= _CLIP:
        return value
    return value[: _CLIP - 1] + "…"


class RequestObserver:
    """ASGI middleware: a correlation id per request (answered in ``X-Request-ID``), then, once answered, the
    request's facts to ``observe`` (the metrics) for a SOAP request and one log line: a JSON object when
    ``log_requests``, the text access line when ``access_lines``."""

    def __init__(self, app: ASGIApp, *, endpoints: Mapping[str, str],
                 observe: Callable[[RequestFacts, float], None] | None = None, log_requests: bool = False,
                 access_lines: bool = False) -> None:
        self.app = app
        #: The SOAP endpoints' paths and their labels, as the app routes them (``sts.web.asgi``).
        self._endpoints = endpoints
        self._observe = observe
        self._log_requests = log_requests
        self._access_lines = access_lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        client = scope.get("client")
        facts = RequestFacts(request_id(scope["headers"]), method, path, client[0] if client else "",
                             time.perf_counter(),
                             endpoint=self._endpoints.get(path.rstrip("/")) if method == "POST" else None)
        header = (RESPONSE_HEADER, facts.correlation_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                facts.status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = _current.set(facts)
        failed = False
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            failed = True  # the server's error middleware answers 500 when nothing was sent yet
            raise
        finally:
            self._finish(facts, scope, failed)
            _current.reset(token)

    def _finish(self, facts: RequestFacts, scope: Scope, failed: bool) -> None:
        duration = facts.seconds()
        if facts.endpoint is not None:
            facts.settle()
            if self._observe is not None:
                self._observe(facts, duration)
        # Records made here rather than with log.info(): that one walks the stack for the caller's file and line,
        # which say nothing about a request and cost as much as the formatting.
        if self._log_requests and log.isEnabledFor(logging.INFO):
            log.handle(log.makeRecord(
                log.name, logging.INFO, __file__, 0, "%s %s %s", (facts.method, _clip(facts.path), facts.status or "-"),
                None, extra={"request": facts.fields(duration), "correlation_id": facts.correlation_id}))
        status = facts.status or (500 if failed else 0)
        if self._access_lines and status and access_log.isEnabledFor(logging.INFO):
            # As uvicorn did: a line once an answer started (or the error middleware's 500), none for a request
            # that ended without one (the client went away).
            asgi: Any = scope  # uvicorn's helpers, so that the line says what uvicorn's said
            arguments = (get_client_addr(asgi), facts.method, get_path_with_query_string(asgi),
                         scope.get("http_version", "1.1"), status)
            access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, ACCESS_MESSAGE,
                                                    arguments, None, extra={"correlation_id": facts.correlation_id}))


# --- log formats ---------------------------------------------------------------------------------------------------

class CorrelationFilter(logging.Filter):
    """Gives every record the current request's ``correlation_id`` ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        facts = _current.get()
        record.correlation_id = facts.correlation_id if facts is not None else "-"
        return True


class AccessLineFormatter(AccessFormatter):
    """uvicorn's access line with the correlation id after it (``ACCESS_FORMAT``), written straight from the record's
    arguments when it has no colours: uvicorn's formatter copies the record and formats it twice over. In colour (a
    terminal) and for any other record it is uvicorn's formatter."""

    def __init__(self, use_colors: bool | None = None) -> None:
        super().__init__(ACCESS_FORMAT, use_colors=use_colors)

    def format(self, record: logging.LogRecord) -> str:
        arguments = record.args
        if (self.use_colors or record.exc_info or record.stack_info or record.msg is not ACCESS_MESSAGE
                or not isinstance(arguments, tuple) or len(arguments) != 5 or not isinstance(arguments[4], int)):
            return super().format(record)
        client, method, path, version, status = arguments
        level = record.levelname
        return (f'{level}:{" " * (8 - len(level))} {client} - "{method} {path} HTTP/{version}" '
                f'{_status_and_phrase(status)} [{getattr(record, "correlation_id", "-")}]')


#: ``levelprefix`` is uvicorn's "INFO:" padded to 9 characters.
ACCESS_FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s [%(correlation_id)s]'


@functools.lru_cache(maxsize=64)
def _status_and_phrase(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} "


#: Made once: ``json.dumps`` with options builds an encoder per call. ASCII only, for any log pipeline's decoder.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, correlation_id, the request fields of a request line,
    and the traceback of an exception (escaped, so a message can never forge another line)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": _correlation_of(record),
        }
        request = getattr(record, "request", None)
        if isinstance(request, Mapping):
            entry.update(request)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


def _correlation_of(record: logging.LogRecord) -> str | None:
    """The id the filter put on the record (its "-" outside a request is null here), else the current one."""
    given = getattr(record, "correlation_id", None)
    if given is not None:
        return None if given == "-" else str(given)
    facts = _current.get()
    return facts.correlation_id if facts is not None else None


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for ``sts serve`` (uvicorn's ``log_config``): uvicorn's and the
    package's loggers, as text (uvicorn's format, the correlation id after the level) or as JSON lines.

    With JSON the per-request line replaces uvicorn's access log (it says more: the SOAP outcome, the duration); as
    text, :class:`RequestObserver` writes uvicorn's access line itself (logger ``sts.access``), and uvicorn's access
    logger has no handler in either format, so uvicorn writes none.
    """
    json_lines = log_format == "json"
    text = {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s", "use_colors": None}
    package_text = {"()": "uvicorn.logging.DefaultFormatter", "use_colors": None,
                    "fmt": "%(levelprefix)s [%(correlation_id)s] %(name)s: %(message)s"}
    access_text = {"()": "sts.web.request_log.AccessLineFormatter", "use_colors": None}
    json_formatter = {"()": "sts.web.request_log.JsonFormatter"}
    correlated = {"()": "sts.web.request_log.CorrelationFilter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"correlation": correlated},
        "formatters": {
            "default": json_formatter if json_lines else text,
            "package": json_formatter if json_lines else package_text,
            "access": json_formatter if json_lines else access_text,
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "default",
                        "filters": ["correlation"]},
            "package": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "package",
                        "filters": ["correlation"]},
            "access": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "access",
                       "filters": ["correlation"]},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": [], "level": level.upper(), "propagate": False},
            "sts.access": {"handlers": [] if json_lines else ["access"], "level": level.upper(), "propagate": False},
            "sts": {"handlers": ["package"], "level": level.upper(), "propagate": False},
        },
    }
