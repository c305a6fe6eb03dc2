"""The management console: server-rendered pages under /console and a JSON API under /console/api.

Every page and action needs an administrator's session (``sts admin add``); forms carry a CSRF token, the API
takes either the session with an ``X-CSRF-Token`` header or HTTP Basic with an administrator's credentials.
Back-end pieces that may be absent from a build (explain, the audit trail, the keyring, metadata import) are
looked up at run time; their pages say so instead of failing.
"""

from __future__ import annotations

import importlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import ns
from ..crypto.keys import SigningKey
from ..model import RelyingParty
from ..store.schema import tokens as tokens_table
from ..wiring import Runtime
from . import forms
from .auth import COOKIE, LOGIN_COOKIE, SESSION_SECONDS, Lockout, SessionCodec, parse_basic, same_token

HERE = Path(__file__).resolve().parent
MAX_UPLOAD = 256 * 1024
CLAIM_NAMES = ("name", "nameidentifier", "emailaddress", "givenname", "surname", "upn", "dateofbirth",
               "country", "privatepersonalidentifier")
CLAIM_URIS = tuple(f"{ns.IDENTITY}/claims/{n}" for n in CLAIM_NAMES) + (
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groupsid",
)
Handler = Callable[[Request], Awaitable[Response]]


def optional_module(name: str) -> ModuleType | None:
    """A back-end module that another part of the work provides; None while it does not exist."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


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


class Console:
    def __init__(self, runtime: Runtime, *, secure_cookies: bool) -> None:
        self.runtime = runtime
        self.secure_cookies = secure_cookies
        self.codec = SessionCodec(runtime.settings.secrets_key_path.read_bytes())
        self.lockout = Lockout()
        self.env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                               autoescape=select_autoescape(default=True, default_for_string=True))
        self.env.filters["q"] = lambda s: quote(str(s), safe="")
        self.env.filters["dt"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else ""

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
                if self.lockout.locked_for(name) > 0:
                    return _json({"error": "too many failed sign-ins: try again later"}, 429)
                ok = await run_in_threadpool(self.runtime.stores.users.check_password, name, password)
                if not ok or not await run_in_threadpool(self._is_admin, name):
                    self.lockout.failed(name)
                    self.audit("console.login-failed", name, "denied", detail={"via": "basic"})
                    return _unauthorized()
                self.lockout.succeeded(name)
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

    # -- sign-in -----------------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        base = request.scope.get("root_path", "")
        target = request.query_params.get("next", "")
        if not target.startswith(f"{base}/") or target.startswith("//"):
            target = f"{base}/"
        if request.method == "GET":
            token = secrets.token_urlsafe(24)
            response = self.render(request, "login.html", login_csrf=token, next=target, values={}, errors={})
            self._cookie(response, request, LOGIN_COOKIE, token, 3600)
            return response
        form = await self.form(request)
        if form is None or not same_token(request.cookies.get(LOGIN_COOKIE), _text(form.get("csrf"))):
            return HTMLResponse("<!doctype html><title>Forbidden</title><h1>Forbidden</h1>"
                                "<p>The sign-in form expired: reload it and try again.</p>", 403)
        name, password = _text(form.get("name")).strip(), _text(form.get("password"))
        token = _text(form.get("csrf"))
        wait = self.lockout.locked_for(name)
        if wait > 0:
            self.audit("console.login-failed", name, "locked")
            return self.render(request, "login.html", 429, login_csrf=token, next=target, values={"name": name},
                               errors={"name": f"too many failed attempts: wait {int(wait) + 1} seconds"})
        ok = bool(name) and await run_in_threadpool(self.runtime.stores.users.check_password, name, password)
        if not ok or not await run_in_threadpool(self._is_admin, name):
            self.lockout.failed(name)
            self.audit("console.login-failed", name or None, "denied")
            return self.render(request, "login.html", 401, login_csrf=token, next=target, values={"name": name},
                               errors={"password": "wrong name or password, or not an administrator"})
        self.lockout.succeeded(name)
        cookie, _ = self.codec.issue(name)
        redirect = RedirectResponse(target, 303)
        self._cookie(redirect, request, COOKIE, cookie, SESSION_SECONDS)
        redirect.delete_cookie(LOGIN_COOKIE, path=base or "/")
        self.audit("console.login", name)
        return redirect

    async def logout(self, request: Request) -> Response:
        self.audit("console.logout", self.actor(request))
        base = request.scope.get("root_path", "")
        response = RedirectResponse(f"{base}/login", 303)
        response.delete_cookie(COOKIE, path=base or "/", httponly=True, samesite="strict",
                               secure=self._secure(request))
        return response

    # -- dashboard ---------------------------------------------------------------------------------------

    def status(self, request: Request) -> dict[str, Any]:
        settings = self.runtime.settings
        base = (settings.public_base_url or str(request.base_url)).rstrip("/")
        now = _now()
        since = now - timedelta(hours=24)
        counts = self.runtime.stores.tokens.counts_since(since)
        with self.runtime.stores.engine.connect() as conn:
            issued = [row[0] for row in conn.execute(
                select(tokens_table.c.issued).where(tokens_table.c.issued >= since))]
        hours = [0] * 24
        for when in issued:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            index = 23 - int((now - when).total_seconds() // 3600)
            if 0 <= index < 24:
                hours[index] += 1
        signing = forms.describe(self.signing_key(now).certificate, now)
        return {
            "endpoints": {
                "SOAP (WS-Trust 1.3 / 2005)": f"{base}/services/sts",
                "WSDL": f"{base}/services/sts?wsdl",
                "MEX": f"{base}/services/sts/mex",
                "Federation metadata": f"{base}/FederationMetadata/2007-06/FederationMetadata.xml",
            },
            "signing": signing,
            "users": len(self.runtime.stores.users.list()),
            "relying_parties": len(self.runtime.stores.relying_parties.list()),
            "tokens": {"issued": sum(counts.values()), "valid": counts.get("valid", 0),
                       "cancelled": counts.get("cancelled", 0)},
            "per_hour": hours,
        }

    async def dashboard(self, request: Request) -> Response:
        status = await run_in_threadpool(self.status, request)
        peak = max(status["per_hour"]) or 1
        bars = [{"x": 10 + i * 20, "h": round(90 * n / peak), "n": n, "hour": 23 - i}
                for i, n in enumerate(status["per_hour"])]
        return self.render(request, "dashboard.html", s=status, bars=bars, peak=peak)

    # -- relying parties ---------------------------------------------------------------------------------

    def _rp_rows(self) -> list[dict[str, Any]]:
        now = _now()
        return [{"rp": rp, "cert": forms.cert_info(rp.cert_pem, now),
                 "next_cert": forms.cert_info(getattr(rp, "next_cert_pem", None), now)}
                for rp in self.runtime.stores.relying_parties.list()]

    async def rps(self, request: Request) -> Response:
        return self.render(request, "rps.html", rows=await run_in_threadpool(self._rp_rows))

    def _rp_page(self, request: Request, template: str, form: forms.RpForm, status: int = 200,
                 **extra: Any) -> Response:
        return self.render(request, template, status, values=form.values, errors=form.errors,
                           claim_uris=CLAIM_URIS, supports=forms.rp_supports,
                           metadata_import=optional_module("sts.rp_metadata") is not None, **extra)

    async def _certificate_field(self, form: FormData, errors: dict[str, str], prefix: str,
                                 now: datetime) -> bytes | None:
        upload = form.get(f"{prefix}_file")
        pasted = _text(form.get(f"{prefix}_pem")).strip()
        data: bytes | None = None
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(MAX_UPLOAD + 1)
            if len(data) > MAX_UPLOAD:
                errors[prefix] = "the file is too large for a certificate"
                return None
            if not data:
                errors[prefix] = "the uploaded file is empty"
                return None
        elif pasted:
            data = pasted.encode("utf-8", "replace")
        if data is None:
            return None
        try:
            return forms.read_certificate(data, now)
        except ValueError as exc:
            errors[prefix] = str(exc)
            return None

    async def rp_new(self, request: Request) -> Response:
        defaults = {"token_type": "saml20", "encrypt": True, "signature": "rsa-sha256",
                    "data_encryption": "aes256-gcm", "key_transport": "rsa-oaep-mgf1p"}
        if request.method == "GET":
            return self._rp_page(request, "rp_form.html", forms.RpForm(defaults), mode="add")
        raw = await self.form(request)
        assert raw is not None
        form = forms.RpForm(_form_values(raw))
        now = _now()
        cert_pem = await self._certificate_field(raw, form.errors, "cert", now)
        if raw.get("source") == "metadata":
            cert_pem = await self._metadata(raw, form, now)
        result = await run_in_threadpool(self._add_rp, form, cert_pem, now)
        if result is None:
            return self._rp_page(request, "rp_form.html", form, 400, mode="add")
        self.audit("console.rp.add", self.actor(request), subject=result.endpoint)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/rps?added={quote(result.endpoint)}", 303)

    async def _metadata(self, raw: FormData, form: forms.RpForm, now: datetime) -> bytes | None:
        module = optional_module("sts.rp_metadata")
        if module is None:
            form.errors["metadata"] = "metadata import is not available in this build"
            return None
        upload, url = raw.get("metadata_file"), _text(raw.get("metadata_url")).strip()
        try:
            if isinstance(upload, UploadFile) and upload.filename:
                document = await upload.read(4 * 1024 * 1024)
            elif url:
                document = await run_in_threadpool(module.fetch_rp_metadata, url)
            else:
                form.errors["metadata"] = "choose a metadata file or give its URL"
                return None
            endpoint, cert = module.parse_rp_metadata(document)
        except (ValueError, OSError) as exc:
            form.errors["metadata"] = str(exc) or "the metadata could not be read"
            return None
        form.values["endpoint"] = endpoint
        try:
            return forms.read_certificate(cert, now)
        except ValueError as exc:
            form.errors["metadata"] = f"the certificate in the metadata: {exc}"
            return None

    def _add_rp(self, form: forms.RpForm, cert_pem: bytes | None, now: datetime) -> RelyingParty | None:
        settings = self.runtime.settings
        store = self.runtime.stores.relying_parties
        rp = forms.build_rp(form, base=None, cert_pem=cert_pem, next_cert_pem=None,
                            defaults=(settings.default_lifetime_seconds, settings.max_lifetime_seconds), now=now)
        if rp is None:
            return None
        if store.get(rp.endpoint) is not None:
            form.errors["endpoint"] = f"a relying party with endpoint {rp.endpoint} already exists"
            return None
        try:
            store.add(rp)
        except ValueError as exc:
            form.errors["endpoint"] = str(exc)
            return None
        return rp

    async def rp_edit(self, request: Request) -> Response:
        endpoint = request.query_params.get("endpoint", "")
        store = self.runtime.stores.relying_parties
        existing = await run_in_threadpool(store.get, endpoint)
        if existing is None:
            return self.render(request, "message.html", 404, title="Not found",
                               message=f"No relying party with endpoint {endpoint}.")
        now = _now()
        info: dict[str, Any] = {"cert": forms.cert_info(existing.cert_pem, now),
                "next_cert": forms.cert_info(getattr(existing, "next_cert_pem", None), now)}
        if request.method == "GET":
            return self._rp_page(request, "rp_form.html", forms.RpForm(forms.rp_form_values(existing)),
                                 mode="edit", rp=existing, **info)
        raw = await self.form(request)
        assert raw is not None
        form = forms.RpForm(_form_values(raw))
        form.values["endpoint"] = existing.endpoint
        cert_pem = await self._certificate_field(raw, form.errors, "cert", now)
        next_pem = await self._certificate_field(raw, form.errors, "next_cert", now)
        settings = self.runtime.settings
        rp = forms.build_rp(form, base=existing, cert_pem=cert_pem, next_cert_pem=next_pem,
                            defaults=(settings.default_lifetime_seconds, settings.max_lifetime_seconds), now=now)
        if rp is None:
            return self._rp_page(request, "rp_form.html", form, 400, mode="edit", rp=existing, **info)
        await run_in_threadpool(store.update, rp)
        self.audit("console.rp.update", self.actor(request), subject=rp.endpoint)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/rps?updated={quote(rp.endpoint)}", 303)

    async def rp_remove(self, request: Request) -> Response:
        endpoint = request.query_params.get("endpoint", "")
        store = self.runtime.stores.relying_parties
        existing = await run_in_threadpool(store.get, endpoint)
        if existing is None:
            return self.render(request, "message.html", 404, title="Not found",
                               message=f"No relying party with endpoint {endpoint}.")
        if request.method == "GET":
            return self.render(request, "confirm.html", title="Remove relying party",
                               question=f"Remove the relying party {existing.endpoint}? "
                                        "The next token request for it is refused.",
                               action=f"rps/remove?endpoint={quote(existing.endpoint, safe='')}",
                               back="rps")
        await run_in_threadpool(store.remove, existing.endpoint)
        self.audit("console.rp.remove", self.actor(request), subject=existing.endpoint)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/rps?removed={quote(existing.endpoint)}", 303)

    # -- users -------------------------------------------------------------------------------------------

    async def users(self, request: Request) -> Response:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            raw = await self.form(request)
            assert raw is not None
            values = _form_values(raw)
            name, password = str(values.get("name", "")).strip(), str(values.get("password", ""))
            claims = _parse_claim_lines(str(values.get("claims", "")), errors)
            if not password:
                errors["password"] = "give a password"
            if not errors:
                try:
                    await run_in_threadpool(self.runtime.stores.users.add, name, password, claims,
                                            bool(values.get("admin")))
                except ValueError as exc:
                    errors["name"] = str(exc)
            if not errors:
                self.audit("console.user.add", self.actor(request), subject=name)
                return RedirectResponse(f"{request.scope.get('root_path', '')}/users?added={quote(name)}", 303)
            status = 400
        records = await run_in_threadpool(self.runtime.stores.users.list)
        return self.render(request, "users.html", status, users=records, values=values, errors=errors,
                           claim_uris=CLAIM_URIS)

    async def user_edit(self, request: Request) -> Response:
        name = request.path_params["name"]
        store = self.runtime.stores.users
        record = await run_in_threadpool(store.get, name)
        base = request.scope.get("root_path", "")
        if record is None:
            return self.render(request, "message.html", 404, title="Not found", message=f"No user named {name}.")
        claims_text = "\n".join(f"{c.uri}={v}" for c in record.claims for v in c.values)
        values: dict[str, Any] = {"claims": claims_text}
        errors: dict[str, str] = {}
        if request.method == "GET":
            return self.render(request, "user.html", record=record, values=values, errors=errors,
                               claim_uris=CLAIM_URIS)
        raw = await self.form(request)
        assert raw is not None
        action = _text(raw.get("action"))
        actor = self.actor(request)
        if action == "claims":
            values = _form_values(raw)
            claims = _parse_claim_lines(str(values.get("claims", "")), errors)
            if not errors:
                await run_in_threadpool(store.set_claims, name, claims)
                self.audit("console.user.claims", actor, subject=name)
        elif action == "password":
            password = _text(raw.get("password"))
            if not password:
                errors["password"] = "give a password"
            else:
                await run_in_threadpool(store.set_password, name, password)
                self.audit("console.user.password", actor, subject=name)
        elif action in ("disable", "enable"):
            if action == "disable" and name == actor:
                errors["disable"] = "you cannot disable your own account"
            else:
                await run_in_threadpool(store.set_disabled, name, action == "disable")
                self.audit(f"console.user.{action}", actor, subject=name)
        elif action == "remove":
            if name == actor:
                errors["disable"] = "you cannot remove your own account"
            elif raw.get("confirm") != "yes":
                return self.render(request, "confirm.html", title="Remove user",
                                   question=f"Remove the user {name} and its claims?",
                                   action=f"users/{quote(name, safe='')}", back=f"users/{quote(name, safe='')}",
                                   fields={"action": "remove", "confirm": "yes"})
            else:
                await run_in_threadpool(store.remove, name)
                self.audit("console.user.remove", actor, subject=name)
                return RedirectResponse(f"{base}/users?removed={quote(name)}", 303)
        if errors:
            return self.render(request, "user.html", 400, record=record, values=values, errors=errors,
                               claim_uris=CLAIM_URIS)
        return RedirectResponse(f"{base}/users/{quote(name, safe='')}?saved={action}", 303)

    # -- explain -----------------------------------------------------------------------------------------

    async def explain(self, request: Request) -> Response:
        module = optional_module("sts.explain")
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        result = None
        if request.method == "POST" and module is not None:
            raw = await self.form(request)
            assert raw is not None
            values = _form_values(raw)
            result, errors = await run_in_threadpool(self._explain, module, values)
        rps = await run_in_threadpool(self.runtime.stores.relying_parties.list)
        users = await run_in_threadpool(self.runtime.stores.users.list)
        return self.render(request, "explain.html", 400 if errors else 200, available=module is not None,
                           values=values, errors=errors, result=result, rps=rps, users=users,
                           claim_uris=CLAIM_URIS)

    def _explain(self, module: ModuleType, values: dict[str, Any]) -> tuple[Any, dict[str, str]]:
        errors: dict[str, str] = {}
        user, rp = str(values.get("user", "")).strip(), str(values.get("rp", "")).strip()
        if not user:
            errors["user"] = "choose a user"
        if not rp:
            errors["rp"] = "give the relying party (AppliesTo)"
        claims = []
        for line in str(values.get("claims", "")).splitlines():
            line = line.strip()
            if line:
                optional = line.endswith("?")
                claims.append((line.rstrip("?"), not optional))
        lifetime_raw = str(values.get("lifetime", "")).strip()
        lifetime = None
        if lifetime_raw:
            if not lifetime_raw.isdigit() or int(lifetime_raw) < 1:
                errors["lifetime"] = "a whole number of seconds, at least 1"
            else:
                lifetime = int(lifetime_raw)
        token_type = str(values.get("token_type", "")) or None
        if errors:
            return None, errors
        result = module.explain_issuance(self.runtime, user=user, rp=rp, claims=claims, token_type=token_type,
                                         lifetime_seconds=lifetime)
        return result.to_dict(), errors

    # -- tokens ------------------------------------------------------------------------------------------

    def _search_tokens(self, request: Request) -> list[Any]:
        params = request.query_params
        return self.runtime.stores.tokens.search(
            subject=params.get("subject") or None, applies_to=params.get("applies_to") or None,
            status=params.get("status") or None, limit=min(int(params.get("limit", "100") or 100), 1000)
            if params.get("limit", "100").isdigit() else 100)

    async def tokens(self, request: Request) -> Response:
        found = await run_in_threadpool(self._search_tokens, request)
        return self.render(request, "tokens.html", tokens=found, values=dict(request.query_params))

    async def token(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        record = await run_in_threadpool(self.runtime.stores.tokens.get, token_id)
        if record is None:
            return self.render(request, "message.html", 404, title="Not found", message=f"No token {token_id}.")
        return self.render(request, "token.html", t=record, details=_safe_details(record.details))

    async def token_cancel(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        ok = await run_in_threadpool(self.runtime.stores.tokens.transition, token_id, "valid", "cancelled")
        self.audit("console.token.cancel", self.actor(request), "ok" if ok else "not-valid", subject=token_id)
        base = request.scope.get("root_path", "")
        return RedirectResponse(f"{base}/tokens/{quote(token_id, safe='')}?cancelled={int(ok)}", 303)

    # -- keys --------------------------------------------------------------------------------------------

    def keyring(self) -> Any:
        return getattr(self.runtime, "keyring", None)

    def signing_key(self, now: datetime) -> SigningKey:
        """The key the STS signs with now (the keyring's current one once rollover exists)."""
        keyring = self.keyring()
        current: SigningKey = keyring.current(now) if keyring is not None else self.runtime.signing_key
        return current

    async def keys(self, request: Request) -> Response:
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        keyring = self.keyring()
        if request.method == "POST":
            raw = await self.form(request)
            assert raw is not None
            values = _form_values(raw)
            if keyring is None:
                errors["active_from"] = "key rollover is not available in this build"
            else:
                key_id = await self._schedule_key(keyring, raw, values, errors)
                if key_id is not None:
                    self.audit("console.keys.schedule", self.actor(request), subject=str(key_id))
                    return RedirectResponse(f"{request.scope.get('root_path', '')}/keys?scheduled=1", 303)
        now = _now()
        current: list[tuple[str, SigningKey | None]] = [("Signing", self.signing_key(_now())),
                                                        ("Encryption", self.runtime.encryption_key)]
        described = [(label, forms.describe(key.certificate, now)) for label, key in current if key is not None]
        entries = await run_in_threadpool(keyring.entries) if keyring is not None else []
        return self.render(request, "keys.html", 400 if errors else 200, current=described, entries=entries,
                           rollover=keyring is not None, values=values, errors=errors)

    async def _schedule_key(self, keyring: Any, raw: FormData, values: dict[str, Any],
                            errors: dict[str, str]) -> Any:
        try:
            active_from = datetime.fromisoformat(str(values.get("active_from", "")).strip())
            active_from = active_from.replace(tzinfo=UTC) if active_from.tzinfo is None else active_from
        except ValueError:
            errors["active_from"] = "not a date and time (YYYY-MM-DDTHH:MM, UTC)"
            return None
        overlap_raw = str(values.get("overlap_days", "") or "7").strip()
        if not overlap_raw.isdigit():
            errors["overlap_days"] = "a whole number of days"
            return None
        overlap = timedelta(days=int(overlap_raw))
        key_file, cert_file = raw.get("key_file"), raw.get("cert_file")
        try:
            if isinstance(key_file, UploadFile) and key_file.filename:
                key_pem = await key_file.read(MAX_UPLOAD)
                cert_pem = await cert_file.read(MAX_UPLOAD) if isinstance(cert_file, UploadFile) and \
                    cert_file.filename else None
                return await run_in_threadpool(lambda: keyring.schedule(key_pem, cert_pem, active_from=active_from,
                                                                        overlap=overlap))
            return await run_in_threadpool(keyring.generate_and_schedule, active_from, overlap)
        except ValueError as exc:
            errors["key_file"] = str(exc)
            return None

    # -- audit -------------------------------------------------------------------------------------------

    def _audit_rows(self, params: dict[str, str]) -> list[dict[str, Any]]:
        event = params.get("event") or None
        actor = params.get("actor") or None
        outcome = params.get("outcome") or None
        since = None
        if params.get("since"):
            try:
                since = datetime.fromisoformat(params["since"])
                since = since.replace(tzinfo=UTC) if since.tzinfo is None else since
            except ValueError:
                since = None
        trail = getattr(self.runtime, "audit", None)
        if trail is not None:
            records = trail.search(event=event, actor=actor, outcome=outcome, since=since, limit=500)
            return [{"at": r.at, "event": r.event, "actor": r.actor, "outcome": r.outcome, "subject": r.subject,
                     "detail": dict(r.detail or {})} for r in records]
        rows = []
        for entry in self.runtime.stores.recent_audit(2000):
            detail = dict(entry.detail)
            row = {"at": entry.at, "event": entry.event, "actor": detail.pop("actor", None),
                   "outcome": detail.pop("outcome", None), "subject": entry.subject, "detail": detail}
            if event and not (str(row["event"]).startswith(event[:-1]) if event.endswith("*")
                              else row["event"] == event):
                continue
            if actor and row["actor"] != actor or outcome and row["outcome"] != outcome:
                continue
            if since and entry.at < since:
                continue
            rows.append(row)
        return rows[:500]

    async def audit_page(self, request: Request) -> Response:
        params = dict(request.query_params)
        rows = await run_in_threadpool(self._audit_rows, params)
        return self.render(request, "audit.html", rows=rows, values=params)

    # -- JSON API ----------------------------------------------------------------------------------------

    async def api_status(self, request: Request) -> Response:
        status = await run_in_threadpool(self.status, request)
        return _json(status)

    async def api_rps(self, request: Request) -> Response:
        if request.method == "GET":
            rows = await run_in_threadpool(self._rp_rows)
            return _json([{**_rp_json(r["rp"]), "certificate": r["cert"]} for r in rows])
        if request.method == "DELETE":
            endpoint = request.query_params.get("endpoint", "")
            ok = await run_in_threadpool(self.runtime.stores.relying_parties.remove, endpoint)
            if ok:
                self.audit("console.rp.remove", self.actor(request), subject=endpoint)
            return _json({"removed": ok}, 200 if ok else 404)
        body = await _json_body(request)
        if body is None:
            return _json({"error": "the body must be a JSON object"}, 400)
        values = dict(body)
        values.setdefault("encrypt", True)
        values.setdefault("legacy", False)
        for key in ("required_claims", "permitted_claims", "additional_audiences"):
            if isinstance(values.get(key), list):
                values[key] = "\n".join(str(v) for v in values[key])
        form = forms.RpForm(values)
        now = _now()
        cert_pem = None
        if body.get("certificate_pem"):
            try:
                cert_pem = forms.read_certificate(str(body["certificate_pem"]).encode(), now)
            except ValueError as exc:
                form.errors["cert"] = str(exc)
        rp = await run_in_threadpool(self._add_rp, form, cert_pem, now)
        if rp is None:
            return _json({"errors": form.errors}, 400)
        self.audit("console.rp.add", self.actor(request), subject=rp.endpoint)
        return _json(_rp_json(rp), 201)

    async def api_users(self, request: Request) -> Response:
        store = self.runtime.stores.users
        if request.method == "GET":
            records = await run_in_threadpool(store.list)
            return _json([{"name": r.name, "admin": r.admin, "disabled": r.disabled,
                           "claims": {c.uri: list(c.values) for c in r.claims}} for r in records])
        body = await _json_body(request)
        if body is None:
            return _json({"error": "the body must be a JSON object"}, 400)
        name, password = str(body.get("name", "")), str(body.get("password", ""))
        claims = [(str(c[0]), str(c[1])) for c in body.get("claims", []) if isinstance(c, list) and len(c) == 2]
        if not password:
            return _json({"errors": {"password": "give a password"}}, 400)
        try:
            await run_in_threadpool(store.add, name, password, claims, bool(body.get("admin")))
        except ValueError as exc:
            return _json({"errors": {"name": str(exc)}}, 400)
        self.audit("console.user.add", self.actor(request), subject=name)
        return _json({"name": name}, 201)

    async def api_user(self, request: Request) -> Response:
        name = request.path_params["name"]
        store = self.runtime.stores.users
        actor = self.actor(request)
        if request.method == "DELETE":
            if name == actor:
                return _json({"error": "you cannot remove your own account"}, 400)
            ok = await run_in_threadpool(store.remove, name)
            if ok:
                self.audit("console.user.remove", actor, subject=name)
            return _json({"removed": ok}, 200 if ok else 404)
        body = await _json_body(request)
        if body is None:
            return _json({"error": "the body must be a JSON object"}, 400)
        if await run_in_threadpool(store.get, name) is None:
            return _json({"error": f"no user named {name}"}, 404)
        if "claims" in body:
            claims = [(str(c[0]), str(c[1])) for c in body["claims"] if isinstance(c, list) and len(c) == 2]
            await run_in_threadpool(store.set_claims, name, claims)
        if body.get("password"):
            await run_in_threadpool(store.set_password, name, str(body["password"]))
        if "disabled" in body:
            if name == actor and body["disabled"]:
                return _json({"error": "you cannot disable your own account"}, 400)
            await run_in_threadpool(store.set_disabled, name, bool(body["disabled"]))
        self.audit("console.user.update", actor, subject=name)
        return _json({"name": name})

    async def api_tokens(self, request: Request) -> Response:
        found = await run_in_threadpool(self._search_tokens, request)
        return _json([{**_json_ready(asdict(t)), "details": _json_ready(_safe_details(t.details))} for t in found])

    async def api_token_cancel(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        ok = await run_in_threadpool(self.runtime.stores.tokens.transition, token_id, "valid", "cancelled")
        self.audit("console.token.cancel", self.actor(request), "ok" if ok else "not-valid", subject=token_id)
        return _json({"cancelled": ok}, 200 if ok else 409)

    async def api_audit(self, request: Request) -> Response:
        rows = await run_in_threadpool(self._audit_rows, dict(request.query_params))
        return _json(rows)

    async def api_explain(self, request: Request) -> Response:
        module = optional_module("sts.explain")
        if module is None:
            return _json({"error": "explain is not available in this build"}, 501)
        body = await _json_body(request)
        if body is None:
            return _json({"error": "the body must be a JSON object"}, 400)
        values = dict(body)
        if isinstance(values.get("claims"), list):
            values["claims"] = "\n".join(str(c) for c in values["claims"])
        result, errors = await run_in_threadpool(self._explain, module, values)
        return _json({"errors": errors}, 400) if errors else _json(result)


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_SECRET_WORDS = ("proof", "secret", "password", "private", "entropy")


def _safe_details(details: dict[str, object]) -> dict[str, object]:
    """Recorded details with anything key-like left out (the store never has a proof key; belt and braces)."""
    return {k: v for k, v in details.items() if not any(word in k.lower() for word in _SECRET_WORDS)}


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


def _parse_claim_lines(text: str, errors: dict[str, str]) -> list[tuple[str, str]]:
    claims = []
    for line in text.splitlines():
        if not line.strip():
            continue
        uri, sep, value = line.partition("=")
        if not sep or ":" not in uri or any(ch.isspace() for ch in uri.strip()):
            errors["claims"] = f"{line.strip()!r} is not URI=VALUE"
            continue
        claims.append((uri.strip(), value.strip()))
    return claims


def _rp_json(rp: RelyingParty) -> dict[str, Any]:
    data: dict[str, Any] = _json_ready(asdict(rp))
    data.pop("cert_pem", None)
    data.pop("next_cert_pem", None)
    return data


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_json_ready(data), status, headers={"Cache-Control": "no-store"})


def _unauthorized() -> JSONResponse:
    return JSONResponse({"error": "sign in: an administrator's session with X-CSRF-Token, or HTTP Basic"}, 401,
                        headers={"WWW-Authenticate": 'Basic realm="sts console", charset="UTF-8"'})


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def create_console(runtime: Runtime, *, secure_cookies: bool) -> Starlette:
    """The console app; mount it at ``/console`` (``secure_cookies``: mark cookies Secure, as under TLS)."""
    c = Console(runtime, secure_cookies=secure_cookies)
    get, post, both = ["GET"], ["POST"], ["GET", "POST"]
    routes = [
        Route("/login", c.login, methods=both),
        Route("/logout", c.page(c.logout), methods=post),
        Route("/", c.page(c.dashboard), methods=get),
        Route("/rps", c.page(c.rps), methods=get),
        Route("/rps/new", c.page(c.rp_new), methods=both),
        Route("/rps/edit", c.page(c.rp_edit), methods=both),
        Route("/rps/remove", c.page(c.rp_remove), methods=both),
        Route("/users", c.page(c.users), methods=both),
        Route("/users/{name}", c.page(c.user_edit), methods=both),
        Route("/explain", c.page(c.explain), methods=both),
        Route("/tokens", c.page(c.tokens), methods=get),
        Route("/tokens/{token_id}", c.page(c.token), methods=get),
        Route("/tokens/{token_id}/cancel", c.page(c.token_cancel), methods=post),
        Route("/keys", c.page(c.keys), methods=both),
        Route("/audit", c.page(c.audit_page), methods=get),
        Route("/api/status", c.api(c.api_status), methods=get),
        Route("/api/rps", c.api(c.api_rps), methods=["GET", "POST", "DELETE"]),
        Route("/api/users", c.api(c.api_users), methods=both),
        Route("/api/users/{name}", c.api(c.api_user), methods=["PATCH", "DELETE"]),
        Route("/api/tokens", c.api(c.api_tokens), methods=get),
        Route("/api/tokens/{token_id}/cancel", c.api(c.api_token_cancel), methods=post),
        Route("/api/audit", c.api(c.api_audit), methods=get),
        Route("/api/explain", c.api(c.api_explain), methods=post),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.console = c
    return app
