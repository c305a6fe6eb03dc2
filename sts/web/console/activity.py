"""Explain (the issuance dry run), issued tokens and the audit log."""

from __future__ import annotations

from types import ModuleType
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sts.web.console import forms
from sts.web.console.core import CLAIM_URIS, ConsoleCore, _form_values, _safe_details, optional_module


class ActivityPages(ConsoleCore):
    """Explain (the issuance dry run), issued tokens and the audit log."""

    # -- explain -----------------------------------------------------------------------------------------

    async def explain(self, request: Request) -> Response:
        module = optional_module("sts.service.explain")
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


    # -- audit -------------------------------------------------------------------------------------------

    def _audit_rows(self, params: dict[str, str]) -> list[dict[str, Any]]:
        event = params.get("event") or None
        actor = params.get("actor") or None
        outcome = params.get("outcome") or None
        since = None
        if params.get("since"):
            try:
                since = forms.user_time(params["since"])
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
