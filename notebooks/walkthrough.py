"""Support code for the notebooks in ``notebooks/``: a sandbox of live servers, an HTTP recorder, pictures.

- ``Sandbox.start()`` creates a temporary home (``sts init`` with the demo data and a cheap password hash),
  serves the STS and Service A with uvicorn on free loopback ports (threads of this process) and stops them
  with ``stop()``; anything that prevents that raises ``SandboxError`` saying why (a port already taken, a
  missing dependency).
- ``Recorder`` records every HTTP exchange made through its ``session()`` / ``transport()`` (a requests
  Session, as zeep, ``TrustClient`` and msal use): request and reply, headers and bodies, the SOAP action and
  the answer. ``sequence_diagram()`` draws the recorded calls as an SVG sequence diagram: one lifeline per
  actor, one arrow per request and one per reply.
- ``show_xml`` pretty-prints and highlights a SOAP message (pygments HTML); long base64 values are shortened.
- ``timeline()`` draws token lifetimes and status changes as an SVG.

Everything renders in Jupyter through ``_repr_html_`` / ``_repr_svg_`` and has a plain-text form as well.
"""

from __future__ import annotations

import html
import importlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from lxml import etree

from sts import ns
from sts.web import metadata
from sts.web.loopback import free_port, self_signed_tls_files

__all__ = [
    "Exchange", "Recorder", "Sandbox", "SandboxError", "ServerThread", "Svg", "TimelineBar", "TimelineEvent",
    "XmlView", "check_environment", "free_port", "pretty_xml", "sequence_diagram", "show_xml", "timeline",
]

CHEAP_PASSWORD_HASH_N = 1024
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+")
_SOAP_NAMESPACES = (ns.SOAP11, ns.SOAP12)


class SandboxError(RuntimeError):
    """The walkthrough's servers cannot start; the message says why."""


def _module(name: str) -> Any:
    """Untyped third-party modules (zeep, uvicorn, pygments) as Any (mypy --strict)."""
    return importlib.import_module(name)


# --- recording HTTP exchanges ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and its reply, as sent and received."""

    source: str
    target: str
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    elapsed_ms: float

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @property
    def is_soap(self) -> bool:
        return self.method == "POST" and _envelope(self.request_body) is not None

    @property
    def action(self) -> str | None:
        """The request's SOAP action: wsa:Action, else the SOAPAction / content-type action, else None."""
        return _wsa_action(self.request_body) or _http_action(self.request_headers)

    @property
    def request_label(self) -> str:
        if not self.is_soap:
            return f"{self.method} {self.path}"
        if self.action:
            return short_uri(self.action)
        return _body_child_name(self.request_body) or "SOAP request"

    @property
    def fault(self) -> str | None:
        """The fault code of a SOAP fault reply (``prefix:Local`` as best known), else None."""
        return _fault_code(self.response_body)

    @property
    def reply_label(self) -> str:
        fault = self.fault
        if fault:
            return f"{self.status} Fault {fault}"
        action = _wsa_action(self.response_body)
        if action:
            return f"{self.status} {short_uri(action)}"
        child = _body_child_name(self.response_body)
        if child:
            return f"{self.status} {child}"
        kind = self.response_headers.get("content-type", "").split(";", 1)[0]
        return f"{self.status} {kind}".strip()


class _RecordingSession(requests.Session):
    """A requests Session that reports every exchange to its recorder."""

    def __init__(self, recorder: Recorder, actor: str) -> None:
        super().__init__()
        self._recorder = recorder
        self._actor = actor

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        started = time.perf_counter()
        response = super().send(request, **kwargs)
        raw: Any = request.body
        body = raw if isinstance(raw, bytes) else str(raw or "").encode()
        self._recorder.add(Exchange(
            source=self._actor,
            target=self._recorder.actor_for(request.url or ""),
            method=request.method or "GET",
            url=request.url or "",
            request_headers={k.lower(): str(v) for k, v in request.headers.items()},
            request_body=body,
            status=response.status_code,
            response_headers={k.lower(): v for k, v in response.headers.items()},
            response_body=response.content,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        ))
        return response


class Recorder:
    """Records the HTTP exchanges made through its sessions and transports; names the servers as actors."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._actors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._sessions: list[requests.Session] = []

    def name(self, base_url: str, actor: str) -> None:
        """Call whatever answers under ``base_url`` ``actor`` (e.g. "STS", "Service A")."""
        self._actors[base_url.rstrip("/")] = actor

    def actor_for(self, url: str) -> str:
        best = ""
        for base in self._actors:
            if (url == base or url.startswith(base + "/") or url.startswith(base + "?")) and len(base) > len(best):
                best = base
        return self._actors[best] if best else (urlsplit(url).netloc or url)

    @property
    def actors(self) -> list[str]:
        return list(dict.fromkeys(self._actors.values()))

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def session(self, actor: str = "Client") -> requests.Session:
        """A requests Session whose exchanges are recorded as made by ``actor`` (msal takes one)."""
        session = _RecordingSession(self, actor)
        self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close the sessions handed out (their keep-alive connections would hold a server's shutdown)."""
        for session in self._sessions:
            session.close()
        self._sessions.clear()

    def transport(self, actor: str = "Client", *, verify: bool | str = True, timeout: float = 30) -> Any:
        """A zeep Transport on a recording session (for ``TrustClient(..., transport=...)`` or zeep.Client)."""
        session = self.session(actor)
        session.verify = verify
        session.trust_env = verify is True  # a CA bundle in the environment must not replace the one given
        return _module("zeep.transports").Transport(session=session, timeout=timeout, operation_timeout=timeout)

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()

    def calls(self, *, soap_only: bool = True) -> list[Exchange]:
        return [e for e in self.exchanges if e.is_soap or not soap_only]

    @contextmanager
    def section(self) -> Iterator[list[Exchange]]:
        """``with recorder.section() as calls:`` - ``calls`` fills with the exchanges made inside the block."""
        start = len(self.exchanges)
        calls: list[Exchange] = []
        try:
            yield calls
        finally:
            calls.extend(self.exchanges[start:])

    def sequence_diagram(self, *, soap_only: bool = True, title: str | None = None,
                         exchanges: Sequence[Exchange] | None = None) -> Svg:
        """The recorded calls (or ``exchanges``; SOAP calls only unless ``soap_only=False``) as an SVG."""
        chosen = list(exchanges) if exchanges is not None else self.calls(soap_only=soap_only)
        if exchanges is not None and soap_only:
            chosen = [e for e in chosen if e.is_soap]
        callers = [e.source for e in chosen]
        actors = list(dict.fromkeys([*(callers or ["Client"]), *self.actors]))
        return sequence_diagram(chosen, actors=actors, title=title)


# --- reading SOAP messages ------------------------------------------------------------------------------------


def _parse(data: bytes) -> etree._Element | None:
    if not data or not data.lstrip().startswith(b"<"):
        return None
    try:
        from sts.protocol.xmlsafe import parse

        return parse(data, max_bytes=16 * 1024 * 1024, max_depth=256)
    except Exception:  # noqa: BLE001 - not XML: the caller shows it as it is
        return None


def _envelope(data: bytes) -> etree._Element | None:
    root = _parse(data)
    if root is None or etree.QName(root).localname != "Envelope" or etree.QName(root).namespace not in _SOAP_NAMESPACES:
        return None
    return root


def _body(data: bytes) -> etree._Element | None:
    root = _envelope(data)
    if root is None:
        return None
    return root.find(f"{{{etree.QName(root).namespace}}}Body")


def _body_child_name(data: bytes) -> str | None:
    body = _body(data)
    if body is None:
        return None
    children = [child for child in body if isinstance(child.tag, str)]
    return etree.QName(children[0]).localname if children else None


def _wsa_action(data: bytes) -> str | None:
    root = _envelope(data)
    if root is None:
        return None
    for namespace in (ns.WSA, "http://schemas.xmlsoap.org/ws/2004/08/addressing"):
        found = root.findtext(f"{{{etree.QName(root).namespace}}}Header/{{{namespace}}}Action")
        if found:
            return str(found).strip()
    return None


def _http_action(headers: dict[str, str]) -> str | None:
    soap_action = headers.get("soapaction", "").strip().strip('"')
    if soap_action:
        return soap_action
    for part in headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "action" and value.strip('"'):
            return value.strip('"')
    return None


def _fault_code(data: bytes) -> str | None:
    body = _body(data)
    if body is None:
        return None
    fault = body.find(f"{{{ns.SOAP11}}}Fault")
    if fault is not None:
        code = (fault.findtext("faultcode") or "").strip()
        return code or "Fault"
    fault = body.find(f"{{{ns.SOAP12}}}Fault")
    if fault is None:
        return None
    found: Any = fault.xpath(".//*[local-name()='Value']/text()")
    values = [str(v).strip() for v in found]
    return values[-1] if values else "Fault"


def short_uri(uri: str) -> str:
    """The last two path segments of an action URI (``.../ws-trust/200512/RST/Issue`` -> ``RST/Issue``)."""
    parts = [p for p in uri.replace("#", "/").split("/") if p]
    return "/".join(parts[-2:]) if len(parts) >= 2 else uri


# --- pretty-printing XML --------------------------------------------------------------------------------------


def pretty_xml(data: bytes | str | etree._Element, *, shorten: int | None = 64) -> str:
    """Indented XML; text values longer than ``shorten`` characters (base64 keys, signatures) are abbreviated."""
    if isinstance(data, etree._Element):
        root = etree.fromstring(etree.tostring(data))
    else:
        raw = data.encode() if isinstance(data, str) else data
        parsed = _parse(raw)
        if parsed is None:
            return str(raw.decode("utf-8", "replace"))
        root = etree.fromstring(etree.tostring(parsed))
    if shorten:
        for element in root.iter():
            text = element.text
            compact = "".join((text or "").split())
            if isinstance(element.tag, str) and len(compact) > shorten and _BASE64.fullmatch(compact):
                element.text = f"{compact[:24]}...({len(compact)} chars)"
    etree.indent(root, space="  ")
    return str(etree.tostring(root, pretty_print=True).decode())


@dataclass(frozen=True)
class XmlView:
    """Highlighted XML for Jupyter (``_repr_html_``) with a plain-text ``repr``."""

    text: str
    title: str | None = None

    def __repr__(self) -> str:
        return (f"{self.title}\n" if self.title else "") + self.text

    def _repr_html_(self) -> str:
        highlight = _module("pygments").highlight
        lexer = _module("pygments.lexers").XmlLexer()
        formatter = _module("pygments.formatters").HtmlFormatter(noclasses=True, style="friendly")
        heading = f"<p><b>{html.escape(self.title)}</b></p>" if self.title else ""
        return heading + str(highlight(self.text, lexer, formatter))


def show_xml(data: bytes | str | etree._Element, title: str | None = None, *, shorten: int | None = 64) -> XmlView:
    return XmlView(pretty_xml(data, shorten=shorten), title)


def show_exchange(exchange: Exchange, *, shorten: int | None = 64) -> tuple[XmlView, XmlView]:
    """The request and the reply of one exchange, each titled with who sent it and the HTTP line."""
    request = show_xml(exchange.request_body, f"{exchange.source} -> {exchange.target}: {exchange.method} "
                       f"{exchange.path}  ({exchange.request_label})", shorten=shorten)
    reply = show_xml(exchange.response_body, f"{exchange.target} -> {exchange.source}: {exchange.reply_label}",
                     shorten=shorten)
    return request, reply


# --- SVG pictures ---------------------------------------------------------------------------------------------


class Svg(str):
    """An SVG document that Jupyter renders inline."""

    def _repr_svg_(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"<svg image, {len(self)} characters>"


def _text(x: float, y: float, value: str, *, size: int = 12, anchor: str = "middle", weight: str = "normal",
          fill: str = "#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-family="sans-serif" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{html.escape(value)}</text>')


def sequence_diagram(exchanges: Sequence[Exchange], *, actors: Sequence[str] = ("Client", "STS", "Service A"),
                     title: str | None = None) -> Svg:
    """A sequence diagram: a lifeline per actor, an arrow per request (solid) and per reply (dashed)."""
    names = list(dict.fromkeys([*actors, *(e.source for e in exchanges), *(e.target for e in exchanges)]))
    gap, left, row = 230, 90, 30
    top = 60 if title else 34
    width = left * 2 + gap * (len(names) - 1)
    height = top + 30 + row * 2 * len(exchanges) + 30
    x = {name: left + gap * i for i, name in enumerate(names)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        '<defs><marker id="head" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
        '<path d="M0,0 L10,4 L0,8 z" fill="#333"/></marker></defs>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
    ]
    if title:
        parts.append(_text(width / 2, 22, title, size=14, weight="bold"))
    for name, pos in x.items():
        parts.append(f'<rect x="{pos - 55}" y="{top - 22}" width="110" height="26" rx="4" fill="#e8eef7" '
                     f'stroke="#345"/>')
        parts.append(_text(pos, top - 4, name, weight="bold"))
        parts.append(f'<line class="lifeline" x1="{pos}" y1="{top + 4}" x2="{pos}" y2="{height - 10}" '
                     f'stroke="#999" stroke-dasharray="4 3"/>')
    y = top + 30
    for number, exchange in enumerate(exchanges, 1):
        for kind, a, b, label in (("request", exchange.source, exchange.target, exchange.request_label),
                                  ("reply", exchange.target, exchange.source, exchange.reply_label)):
            x1, x2 = x[a], x[b]
            colour = "#b22" if kind == "reply" and (exchange.fault or exchange.status >= 400) else "#333"
            dash = ' stroke-dasharray="6 4"' if kind == "reply" else ""
            shift = -6 if x2 > x1 else 6
            parts.append(f'<line class="msg {kind}" x1="{x1}" y1="{y}" x2="{x2 + shift}" y2="{y}" '
                         f'stroke="{colour}" stroke-width="1.5"{dash} marker-end="url(#head)"/>')
            text = f"{number}. {label}" if kind == "request" else label
            parts.append(_text((x1 + x2) / 2, y - 5, text, size=11, fill=colour))
            y += row
    parts.append("</svg>")
    return Svg("\n".join(parts))


@dataclass(frozen=True)
class TimelineBar:
    """A token's lifetime: ``label`` from ``start`` to ``end``; ``segments`` colour parts of it by status."""

    label: str
    start: datetime
    end: datetime
    segments: Sequence[tuple[datetime, str]] = ()  # (from when, status) in time order


@dataclass(frozen=True)
class TimelineEvent:
    when: datetime
    label: str
    row: str  # the bar label it belongs to


_STATUS_COLOURS = {"valid": "#3a7", "renewed": "#aaa", "cancelled": "#c44", "expired": "#d93", "issued": "#3a7"}


def timeline(bars: Sequence[TimelineBar], events: Sequence[TimelineEvent], *, title: str | None = None) -> Svg:
    """Lifetimes as horizontal bars coloured by status, events as numbered markers with a legend below."""
    start = min(b.start for b in bars)
    end = max(b.end for b in bars)
    span = max((end - start).total_seconds(), 1.0)
    left, right, bar_h, gap = 150, 30, 22, 26
    width = 820
    plot = width - left - right
    top = 44 if title else 20

    def px(when: datetime) -> float:
        return left + plot * (when - start).total_seconds() / span

    rows = {bar.label: top + i * (bar_h + gap) for i, bar in enumerate(bars)}
    axis_y = top + len(bars) * (bar_h + gap)
    legend_y = axis_y + 44
    height = legend_y + 18 * len(events) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">', f'<rect width="{width}" height="{height}" fill="white"/>']
    if title:
        parts.append(_text(width / 2, 22, title, size=14, weight="bold"))
    for bar in bars:
        y = rows[bar.label]
        parts.append(_text(left - 8, y + 15, bar.label, anchor="end"))
        segments = list(bar.segments) or [(bar.start, "valid")]
        for i, (since, status) in enumerate(segments):
            until = segments[i + 1][0] if i + 1 < len(segments) else bar.end
            x1, x2 = px(max(since, bar.start)), px(min(until, bar.end))
            parts.append(f'<rect class="segment {status}" x="{x1:.1f}" y="{y}" width="{max(x2 - x1, 1):.1f}" '
                         f'height="{bar_h}" fill="{_STATUS_COLOURS.get(status, "#69c")}"/>')
            if x2 - x1 > 60:
                parts.append(_text((x1 + x2) / 2, y + 15, status, size=11, fill="white"))
    last_label: dict[float, float] = {}
    for number, event in enumerate(events, 1):
        ex = px(event.when)
        y = rows.get(event.row, axis_y - bar_h)
        label_x = max(ex, last_label.get(y, -100.0) + 12)  # keep close numbers apart
        last_label[y] = label_x
        parts.append(f'<line class="event" x1="{ex:.1f}" y1="{y - 4}" x2="{ex:.1f}" y2="{y + bar_h + 4}" '
                     f'stroke="#124" stroke-width="2"/>')
        parts.append(_text(label_x, y - 7, str(number), size=10, weight="bold", fill="#124"))
        parts.append(_text(left, legend_y + 18 * (number - 1), f"{number}. +{(event.when - start).total_seconds():.1f} s"
                           f"  {event.label}", anchor="start", size=12))
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#333"/>')
    for i in range(5):
        seconds = span * i / 4
        tx = left + plot * i / 4
        parts.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 5}" stroke="#333"/>')
        parts.append(_text(tx, axis_y + 18, f"+{seconds:.0f} s" if span >= 20 else f"+{seconds:.1f} s", size=11))
    parts.append("</svg>")
    return Svg("\n".join(parts))


# --- servers --------------------------------------------------------------------------------------------------


def _check_port(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise SandboxError(f"port {port} on 127.0.0.1 is busy ({err.strerror}); choose another or stop "
                               f"what listens there") from None


class ServerThread:
    """An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread of this process."""

    def __init__(self, app: Any, *, port: int | None = None, name: str = "server",
                 ssl: tuple[str, str] | None = None) -> None:
        uvicorn = _module("uvicorn")
        self.port = port or free_port()
        _check_port(self.port)
        self.name = name
        scheme = "https" if ssl else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        options: dict[str, Any] = {"ssl_certfile": ssl[0], "ssl_keyfile": ssl[1]} if ssl else {}
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=3, **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"{name}:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive():
                raise SandboxError(f"{name} did not start on 127.0.0.1:{self.port} (is the port busy?)")
            if time.monotonic() > deadline:
                raise SandboxError(f"{name} did not start on 127.0.0.1:{self.port} within 15 s")
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def check_environment() -> list[tuple[str, bool, str]]:
    """What the notebooks need: (name, present, detail) for the Python modules, xmlsec1 and a loopback port."""
    checks: list[tuple[str, bool, str]] = []
    for module in ("uvicorn", "zeep", "signxml", "xmlsec", "pygments", "msal"):
        try:
            importlib.import_module(module)
            checks.append((module, True, "importable"))
        except ImportError as err:
            checks.append((module, False, f"missing: {err} (install with: pip install -e '.[test]')"))
    xmlsec1 = shutil.which("xmlsec1")
    checks.append(("xmlsec1", xmlsec1 is not None,
                   xmlsec1 or "missing: the Debian package xmlsec1 (make deps installs it)"))
    try:
        free_port()
        checks.append(("loopback", True, "127.0.0.1 accepts a listening socket"))
    except OSError as err:
        checks.append(("loopback", False, f"cannot listen on 127.0.0.1: {err}"))
    return checks


@dataclass
class Sandbox:
    """A temporary home with the STS and (optionally) Service A running on loopback; see the module docstring."""

    home: Path
    recorder: Recorder
    sts: ServerThread
    service_a: ServerThread | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    _runtime: Any = field(default=None, repr=False)

    @classmethod
    def start(cls, *, service_a: bool = True, tls: bool = False, home: Path | None = None,
              require: Sequence[str] = ("uvicorn", "zeep", "signxml", "xmlsec", "pygments")) -> Sandbox:
        """Create the home, start the servers; ``SandboxError`` says what is missing or busy."""
        missing = [f"{name}: {detail}" for name, ok, detail in check_environment()
                   if not ok and (name in require or name == "loopback")]
        if missing:
            raise SandboxError("cannot start the walkthrough servers - " + "; ".join(missing))
        tmp = None
        if home is None:
            tmp = tempfile.TemporaryDirectory(prefix="sts-walkthrough-")
            home = Path(tmp.name)
        try:
            return cls._start(home, tmp, service_a=service_a, tls=tls)
        except BaseException:
            if tmp is not None:
                tmp.cleanup()
            raise

    @classmethod
    def _start(cls, home: Path, tmp: tempfile.TemporaryDirectory[str] | None, *, service_a: bool,
               tls: bool) -> Sandbox:
        from sts.web.asgi import create_app
        from sts.config import CONFIG_FILE, Settings, load_settings, render_default_config
        from sts.home import init_home
        from sts.web.tls import TlsH11Protocol, ssl_options
        from sts.runtime import build_runtime

        config = home / CONFIG_FILE
        if not config.exists():
            config.write_text(render_default_config(replace(Settings(home=home),
                                                            password_hash_n=CHEAP_PASSWORD_HASH_N)))
        init_home(home)
        recorder = Recorder()
        port = free_port()
        _check_port(port)
        ssl = self_signed_tls_files(home) if tls else None
        settings = load_settings(home).with_bind("127.0.0.1", port, tls=tls)
        runtime = build_runtime(settings)
        app = create_app(runtime, loopback_bind=True)
        uvicorn = _module("uvicorn")
        options = ssl_options(ssl[0], ssl[1], None) if ssl else {}
        server = _StsThread(uvicorn, app, port, TlsH11Protocol, options)
        recorder.name(server.base_url, "STS")
        sandbox = cls(home=home, recorder=recorder, sts=server, _tmp=tmp, _runtime=runtime)
        if service_a:
            try:
                sandbox.service_a = sandbox._start_service_a()
            except BaseException:
                server.stop()
                raise
        return sandbox

    def _start_service_a(self) -> ServerThread:
        from sts.tokens.crypto.keys import load_certificate, load_private_key
        from sts.rp.demo_service import create_service_app
        from sts.model import RelyingParty
        from sts.rp.verifier import TokenVerifier

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        endpoint = f"{base}/service-a"
        with self.stores() as stores:
            stores.relying_parties.add(RelyingParty(endpoint=endpoint, cert_pem=self.rp_cert_pem))
        verifier = TokenVerifier([load_certificate(self.signing_cert_pem)],
                                 rp_private_key=load_private_key(self.rp_key_pem),
                                 audience=endpoint)
        server = ServerThread(create_service_app(verifier, base_url=base, sts_url=self.sts_endpoint),
                              port=port, name="Service A")
        self.recorder.name(base, "Service A")
        return server

    # --- addresses and material ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.sts.base_url

    @property
    def sts_endpoint(self) -> str:
        return metadata.sts_url(self.sts.base_url)

    @property
    def wsdl_url(self) -> str:
        return metadata.wsdl_url(self.sts.base_url)

    @property
    def service_url(self) -> str:
        if self.service_a is None:
            raise SandboxError("this sandbox runs without Service A")
        return f"{self.service_a.base_url}/service-a"

    @property
    def service_wsdl_url(self) -> str:
        return f"{self.service_url}?wsdl"

    @property
    def signing_cert_pem(self) -> bytes:
        return (self.home / "keys" / "sts-signing.crt").read_bytes()

    @property
    def rp_key_pem(self) -> bytes:
        """Service A's (the demo relying party's) private key: only the relying party holds it."""
        return (self.home / "demo" / "rp.key").read_bytes()

    @property
    def rp_cert_pem(self) -> bytes:
        return (self.home / "demo" / "rp.crt").read_bytes()

    @property
    def tls_cert_path(self) -> str | None:
        """The STS's self-signed TLS certificate (a sandbox started with ``tls=True``), for ``verify=``."""
        path = self.home / "tls.crt"
        return str(path) if self.base_url.startswith("https://") and path.exists() else None

    @property
    def runtime(self) -> Any:
        """The STS's runtime (for ``sts.service.explain.explain_issuance``)."""
        return self._runtime

    # --- actions --------------------------------------------------------------------------------------------

    @contextmanager
    def stores(self) -> Iterator[Any]:
        from sts.config import load_settings
        from sts.runtime import open_stores

        stores = open_stores(load_settings(self.home))
        try:
            yield stores
        finally:
            stores.close()

    def add_user(self, name: str, password: str, claims: Sequence[tuple[str, str]] = ()) -> None:
        with self.stores() as stores:
            if stores.users.get(name) is None:
                stores.users.add(name, password, list(claims))

    def verifier(self, audience: str | None = None, *, rp_key_pem: bytes | None = None, **options: Any) -> Any:
        """A ``TokenVerifier`` as a relying party builds it: the STS certificate, the RP's key, its audience."""
        from sts.tokens.crypto.keys import load_certificate, load_private_key
        from sts.rp.verifier import TokenVerifier

        return TokenVerifier([load_certificate(self.signing_cert_pem)],
                             rp_private_key=load_private_key(rp_key_pem or self.rp_key_pem),
                             audience=audience or self.service_url, **options)

    def client(self, user: str | None = None, password: str | None = None, *, credentials: Any = None,
               digest: bool = False, **options: Any) -> Any:
        """A ``TrustClient`` for this STS's WSDL whose calls are recorded (username or ``credentials``)."""
        from sts.client.trust import TrustClient, UsernameCredentials

        if credentials is None and user is not None:
            credentials = UsernameCredentials(user, password or "", digest=digest)
        verify = options.pop("verify", self.tls_cert_path or True)
        return TrustClient(self.wsdl_url, credentials=credentials,
                           transport=self.recorder.transport("Client", verify=verify), **options)

    def service_client(self, token: Any, **plugin_options: Any) -> Any:
        """Service A's zeep client presenting ``token`` (an ``IssuedTokenResult``), recorded."""
        zeep = _module("zeep")
        from sts.client.presenting import IssuedTokenPlugin

        return zeep.Client(self.service_wsdl_url, transport=self.recorder.transport("Client"),
                           plugins=[IssuedTokenPlugin(token, **plugin_options)])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``python -m sts --home HOME ARGS...`` as a real process (the output is in ``.stdout``)."""
        result = subprocess.run([sys.executable, "-m", "sts", "--home", str(self.home), *args],
                                capture_output=True, text=True, timeout=120, env={**os.environ})
        if check and result.returncode != 0:
            raise SandboxError(f"sts {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def stop(self) -> None:
        """Stop the servers and remove the temporary home."""
        self.recorder.close()
        if self.service_a is not None:
            self.service_a.stop()
        self.sts.stop()
        if self._runtime is not None:
            self._runtime.stores.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def running(self) -> bool:
        return self.sts.running and (self.service_a is None or self.service_a.running)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self) -> str:
        lines = [f"STS        {self.sts.base_url}  (home: a temporary directory)"]
        if self.service_a is not None:
            lines.append(f"Service A  {self.service_a.base_url}/service-a")
        return "\n".join(lines)


class _StsThread(ServerThread):
    """The STS served as ``sts serve`` does (the same protocol class; TLS options when given)."""

    def __init__(self, uvicorn: Any, app: Any, port: int, protocol: Any, tls: dict[str, Any]) -> None:
        self.port = port
        self.name = "STS"
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False,
                                http=protocol, timeout_graceful_shutdown=3, **tls)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"STS:{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SandboxError(f"the STS did not start on 127.0.0.1:{port} (is the port busy?)")
            time.sleep(0.02)
