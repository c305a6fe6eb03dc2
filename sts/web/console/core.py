"""The console's shared core: rendering, sessions and CSRF, the page and API wrappers, JSON helpers."""

from __future__ import annotations

import re

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sts.admin.base import Actor, AdminContext
from sts.model import RelyingParty
from sts.runtime import Runtime
from sts.service.throttle import run_throttled
from sts.tokens.key_store import secrets_key
from sts.web.console.auth import COOKIE, SessionCodec, parse_basic, same_token


HERE = Path(__file__).resolve().parent
MAX_UPLOAD = 256 * 1024
Handler = Callable[[Request], Awaitable[Response]]

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _json_ready(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _json_ready(asdict(value))
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return value.value
    return value



class ConsoleCore:
    """What every console page shares: templates, sessions, CSRF, audit, the page/API wrappers."""

    def __init__(self, runtime: Runtime, *, secure_cookies: bool) -> None:
        self.runtime = runtime
        self.secure_cookies = secure_cookies
        # The secrets key every node shares (key_source "database"/"pkcs11"): a cookie of one node opens on all.
        self.codec = SessionCodec(secrets_key(runtime.settings, runtime.stores.engine))
        self.env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                               autoescape=select_autoescape(default=True, default_for_string=True))
        self.env.filters["q"] = lambda s: quote(str(s), safe="")
        self.env.filters["dt"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else ""
        self.env.filters["url"] = wrap_url

    # -- plumbing ----------------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = getattr(request.state, "session", None)
        base = request.scope.get("root_path", "")
        html = self.env.get_template(template).render(
            base=base, user=session.user if session else None, csrf=session.csrf if session else "",
            request=request, **context)
        return HTMLResponse(html, status, headers=_SECURITY_HEADERS)

    def audit(self, event: str, actor: str | None, outcome: str = "ok", subject: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
        trail = getattr(self.runtime, "audit", None)
        try:
            if trail is not None:
                trail.record(event, actor=actor, outcome=outcome, subject=subject, detail=detail or {})
            else:
                self.runtime.stores.audit(event, subject, {"actor": actor, "outcome": outcome, **(detail or {})})
        except Exception:  # noqa: BLE001 - an audit failure must not break the console action
            pass

    async def check_password(self, request: Request, name: str, password: str) -> bool:
        """A sign-in's password check (form or HTTP Basic) under the brute-force throttle that SOAP uses too: a
        due delay is awaited before the check (no thread held), never a lock-out; the state is in the database."""
        remote = client_address(request)
        received_at = _now()
        users, throttle = self.runtime.stores.users, self.runtime.throttle

        def check() -> bool:
            if throttle is None:
                return users.check_password(name, password)
            return throttle.check(name, remote, received_at, lambda: users.check_password(name, password))

        return await run_throttled(check)

    def _is_admin(self, name: str) -> bool:
        record = self.runtime.stores.users.get(name)
        return record is not None and record.admin and not record.disabled

    def _secure(self, request: Request) -> bool:
        return self.secure_cookies or request.url.scheme == "https"

    def _cookie(self, response: Response, request: Request, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path=request.scope.get("root_path", "") or "/",
                            httponly=True, samesite="strict", secure=self._secure(request))

    def page(self, handler: Handler) -> Handler:
        """Admin session required (else redirect to sign-in); unsafe methods need the form's CSRF token."""

        async def wrapped(request: Request) -> Response:
            session = self.codec.read(request.cookies.get(COOKIE))
            if session is None or not await run_in_threadpool(self._is_admin, session.user):
                base = request.scope.get("root_path", "")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{base}/login?{urlencode({'next': target})}", 303)
            request.state.session = session
            if request.method not in ("GET", "HEAD"):
                form = await self.form(request)
                if form is None or not same_token(session.csrf, _text(form.get("csrf"))):
                    return HTMLResponse("<!doctype html><title>Forbidden</title><h1>Forbidden</h1>"
                                        "<p>Missing or wrong CSRF token: reload the page and try again.</p>", 403)
            return await handler(request)

        return wrapped

    def api(self, handler: Handler) -> Handler:
        """Session + X-CSRF-Token header, or HTTP Basic with an administrator's credentials."""

        async def wrapped(request: Request) -> Response:
            session = self.codec.read(request.cookies.get(COOKIE))
            basic = parse_basic(request.headers.get("authorization"))
            if basic is not None:
                name, password = basic
                ok = await self.check_password(request, name, password)
                if not ok or not await run_in_threadpool(self._is_admin, name):
                    self.audit("console.login-failed", name, "denied",
                               detail={"via": "basic", "remote": client_address(request)})
                    return _unauthorized()
                request.state.actor = name
            elif session is not None and await run_in_threadpool(self._is_admin, session.user):
                if request.method not in ("GET", "HEAD") and not same_token(
                        session.csrf, request.headers.get("x-csrf-token")):
                    return _json({"error": "missing or wrong X-CSRF-Token header"}, 403)
                request.state.actor = session.user
            else:
                return _unauthorized()
            return await handler(request)

        return wrapped

    async def form(self, request: Request) -> FormData | None:
        if request.method in ("GET", "HEAD"):
            return None
        try:
            return await request.form(max_files=8, max_fields=200)
        except Exception:  # noqa: BLE001 - a malformed body is a refused post
            return None

    def actor(self, request: Request) -> str:
        session = getattr(request.state, "session", None)
        return str(session.user if session else getattr(request.state, "actor", ""))

    def admin_actor(self, request: Request) -> Actor:
        """The signed-in administrator as the admin core's audit records name them."""
        return Actor.console(self.actor(request))

    def admin_context(self) -> AdminContext:
        """The admin core over this process's stores, audit trail, settings and clock."""
        runtime = self.runtime
        return AdminContext(stores=runtime.stores, audit=runtime.audit, settings=runtime.settings, clock=_now)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in set(form.keys()):
        items = [v for v in form.getlist(key) if isinstance(v, str)]
        if key in ("allowed_token_types", "allowed_key_types"):
            values[key] = items
        elif items:
            values[key] = items[-1]
    return values


def _rp_json(rp: RelyingParty) -> dict[str, Any]:
    data: dict[str, Any] = _json_ready(asdict(rp))
    data.pop("cert_pem", None)
    data.pop("next_cert_pem", None)
    return data


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_json_ready(data), status, headers={"Cache-Control": "no-store"})


def client_address(request: Request) -> str:
    """The client as sts.web.proxies decided (behind a trusted proxy: the forwarded one), for throttle and audit."""
    return request.client.host if request.client else ""


def _unauthorized() -> JSONResponse:
    return JSONResponse({"error": "sign in: an administrator's session with X-CSRF-Token, or HTTP Basic"}, 401,
                        headers={"WWW-Authenticate": 'Basic realm="sts console", charset="UTF-8"'})


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


_URL_PIECES = re.compile(r"(?<=[/?.&=])(?<!:/)(?<!://)")


def wrap_url(value: object) -> Markup:
    """A URL that wraps only after ``/``, ``?``, ``.``, ``&`` or ``=`` (never at a hyphen or inside a word): each
    piece stays whole (``white-space: nowrap``) and a <wbr> follows it; ``://`` never splits."""
    pieces = [piece for piece in _URL_PIECES.split(str(value)) if piece]
    return Markup("<wbr>").join(Markup('<span class="nobr">{}</span>').format(piece) for piece in pieces)
