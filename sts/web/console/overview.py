"""Sign-in, the dashboard and the signing keys."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sts.admin.base import AdminError, ConfirmationRequired
from sts.admin.keys import (Override, Rollover, Scheduled, Switch, lead_risk, list_keys, min_lead, schedule_rollover,
                            span, upcoming_switches)
from sts.tokens.crypto.keys import SigningKey
from sts.store.schema import audit_log
from sts.store.schema import tokens as tokens_table
from sts.web.console import chart, forms
from sts.web.console.auth import COOKIE, LOGIN_COOKIE, SESSION_SECONDS, same_token
from sts.web.console.core import MAX_UPLOAD, ConsoleCore, _form_values, _now, _text, client_address

# The audit events of SOAP requests (sts.web.pipeline): their non-"ok" outcomes are the chart's failures.
_REQUEST_EVENTS = ("issue", "renew", "cancel", "validate", "auth-failed")


class OverviewPages(ConsoleCore):
    """Sign-in, the dashboard and the signing keys."""

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
        # Throttled like every password check (a growing, capped delay first; never a lock-out).
        ok = bool(name) and await self.check_password(request, name, password)
        if not ok or not await run_in_threadpool(self._is_admin, name):
            self.audit("console.login-failed", name or None, "denied", detail={"remote": client_address(request)})
            return self.render(request, "login.html", 401, login_csrf=token, next=target, values={"name": name},
                               errors={"password": "wrong name or password, or not an administrator"})
        cookie, _ = self.codec.issue(name)
        redirect = RedirectResponse(target, 303)
        self._cookie(redirect, request, COOKIE, cookie, SESSION_SECONDS)
        redirect.delete_cookie(LOGIN_COOKIE, path=base or "/")
        self.audit("console.login", name, detail={"remote": client_address(request)})
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
        start = chart.first_hour(now)
        with self.runtime.stores.engine.connect() as conn:
            issued = [row[0] for row in conn.execute(
                select(tokens_table.c.issued).where(tokens_table.c.issued >= start))]
            # Failures beside successes: every SOAP request that ended in a fault, failed sign-ins included.
            failed = [row[0] for row in conn.execute(
                select(audit_log.c.at).where(audit_log.c.at >= start, audit_log.c.event.in_(_REQUEST_EVENTS),
                                             audit_log.c.outcome != "ok"))]
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
            "per_hour": chart.per_hour(issued, now),
            "failed_per_hour": chart.per_hour(failed, now),
        }

    async def dashboard(self, request: Request) -> Response:
        status = await run_in_threadpool(self.status, request)
        activity = chart.activity_chart(status["per_hour"], status["failed_per_hour"], _now())
        switches = await run_in_threadpool(self.upcoming_switches)
        return self.render(request, "dashboard.html", s=status, chart=activity, switches=switches, now=_now(),
                           span=span)


    # -- keys --------------------------------------------------------------------------------------------

    def keyring(self) -> Any:
        return getattr(self.runtime, "keyring", None)

    def signing_key(self, now: datetime) -> SigningKey:
        """The key the STS signs with now (the keyring's current one once rollover exists)."""
        keyring = self.keyring()
        current: SigningKey = keyring.current(now) if keyring is not None else self.runtime.signing_key
        return current

    def upcoming_switches(self) -> list[Switch]:
        """Signing-key switches due soon, for the dashboard's warning (none without a keyring)."""
        keyring = self.keyring()
        return upcoming_switches(self.admin_context(), keyring) if keyring is not None else []

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
            elif await self._schedule_key(request, keyring, raw, values, errors) is not None:
                return RedirectResponse(f"{request.scope.get('root_path', '')}/keys?scheduled=1", 303)
        now = _now()
        current: list[tuple[str, SigningKey | None]] = [("Signing", self.signing_key(_now())),
                                                        ("Encryption", self.runtime.encryption_key)]
        described = [(label, forms.describe(key.certificate, now)) for label, key in current if key is not None]
        admin = self.admin_context()
        entries = await run_in_threadpool(list_keys, admin, keyring) if keyring is not None else []
        return self.render(request, "keys.html", 400 if errors else 200, current=described, entries=entries,
                           rollover=keyring is not None, values=values, errors=errors,
                           min_lead=span(min_lead(admin)), risk=lead_risk(admin))

    async def _schedule_key(self, request: Request, keyring: Any, raw: FormData, values: dict[str, Any],
                            errors: dict[str, str]) -> Scheduled | None:
        """Read the form into a ``Rollover`` and let the admin core decide; its refusals become field errors."""
        at_text = str(values.get("active_from", "")).strip()
        try:
            at = forms.user_time(at_text) if at_text else None
        except ValueError:
            errors["active_from"] = "not a date and time (YYYY-MM-DDTHH:MM, UTC)"
            return None
        overlap_raw = str(values.get("overlap_days", "") or "7").strip()
        if not overlap_raw.isdigit():
            errors["overlap_days"] = "a whole number of days"
            return None
        key_file, cert_file = raw.get("key_file"), raw.get("cert_file")
        key_pem = await key_file.read(MAX_UPLOAD) if isinstance(key_file, UploadFile) and key_file.filename else None
        cert_pem = await cert_file.read(MAX_UPLOAD) if isinstance(cert_file, UploadFile) and \
            cert_file.filename else None
        rollover = Rollover(at=at, overlap=timedelta(days=int(overlap_raw)), key_pem=key_pem, cert_pem=cert_pem,
                            override=Override.CONFIRMED if values.get("confirm_short_lead") else None)
        actor = self.admin_actor(request)
        try:
            return await run_in_threadpool(schedule_rollover, self.admin_context(), actor, rollover, keyring)
        except ConfirmationRequired as refused:
            errors["active_from"] = refused.message
            # The risk itself is the checkbox's label (the same text the admin core gives the CLI).
            errors["confirm_short_lead"] = "Nothing was scheduled. To switch anyway, tick this box."
        except AdminError as refused:
            errors[_KEY_FIELDS.get(refused.field or "", "key_file")] = refused.message
        return None


# The admin core's field names -> the Keys form's.
_KEY_FIELDS = {"at": "active_from", "overlap": "overlap_days", "key": "key_file"}
