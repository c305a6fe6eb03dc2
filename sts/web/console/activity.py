"""Explain (the issuance dry run), issued tokens and the audit log: console pages over ``sts.admin``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sts.admin import audit as audit_core
from sts.admin import explain as explain_core
from sts.admin import tokens as token_core
from sts.admin.base import AdminError, Conflict, NotFound, field_errors
from sts.web.console.core import ConsoleCore, _form_values
from sts.web.console.users import CLAIM_CONTEXT

AUDIT_EVENTS = ("issue", "renew", "cancel", "validate", "auth-failed", "user.*", "admin.*", "rp.*", "keys.*",
                "token.cancel", "console.*", "console.login", "console.login-failed", "auth.throttled")
# "throttled": a password check that first waited out the brute-force delay (event auth.throttled).
AUDIT_OUTCOMES = ("", "ok", "refused", "fault", "denied", "throttled", "locked")  # locked: before issue 12


def explain_lines(values: dict[str, Any]) -> list[str]:
    """The requested claims: the textarea's lines, plus the picker's claim (``?`` when marked optional)."""
    raw = values.get("claims", "")
    lines = [str(c) for c in raw] if isinstance(raw, list) else str(raw).splitlines()
    picked = str(values.get("claim_name", "")).strip()
    if picked:
        lines.append(picked + ("?" if values.get("claim_optional") else ""))
    return lines


class ActivityPages(ConsoleCore):
    """Explain (the issuance dry run), issued tokens and the audit log."""

    # -- explain -----------------------------------------------------------------------------------------

    async def explain(self, request: Request) -> Response:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        result = None
        if request.method == "POST":
            raw = await self.form(request)
            assert raw is not None
            values = _form_values(raw)
            try:
                result = (await run_in_threadpool(self._explain, values)).to_dict()
            except AdminError as err:
                errors = field_errors(err)
        rps = await run_in_threadpool(self.runtime.stores.relying_parties.list)
        users = await run_in_threadpool(self.runtime.stores.users.list)
        return self.render(request, "explain.html", 400 if errors else 200, values=values, errors=errors,
                           result=result, rps=rps, users=users, **CLAIM_CONTEXT)

    def _explain(self, values: dict[str, Any]) -> explain_core.AdminExplanation:
        """The query read from form or JSON values, then the dry run; InvalidInput for bad input."""
        query = explain_core.ExplainQuery.from_text(
            user=str(values.get("user", "")), rp=str(values.get("rp", "")), claims=explain_lines(values),
            token_type=str(values.get("token_type", "") or "") or None, lifetime=_optional_text(values, "lifetime"))
        return explain_core.explain(self.runtime, query)

    # -- tokens ------------------------------------------------------------------------------------------

    def _search_tokens(self, params: dict[str, str]) -> list[Any]:
        return token_core.list_tokens(self.admin_context(), token_core.TokenQuery.from_text(params))

    async def tokens(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            found = await run_in_threadpool(self._search_tokens, params)
        except AdminError as err:
            return self.render(request, "tokens.html", 400, tokens=[], values=params, errors=field_errors(err),
                               statuses=token_core.STATUSES)
        return self.render(request, "tokens.html", tokens=found, values=params, errors={},
                           statuses=token_core.STATUSES)

    async def token(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        try:
            detail = await run_in_threadpool(token_core.token_detail, self.admin_context(), token_id)
        except NotFound as err:
            return self.render(request, "message.html", 404, title="Not found", message=f"{err.message}.")
        return self.render(request, "token.html", t=detail.record, detail=detail, empty=token_core.EMPTY)

    async def token_cancel(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        try:
            await run_in_threadpool(token_core.cancel_token, self.admin_context(),
                                    self.admin_actor(request), token_id)
        except NotFound as err:
            return self.render(request, "message.html", 404, title="Not found", message=f"{err.message}.")
        except Conflict:
            ok = 0
        else:
            ok = 1
        base = request.scope.get("root_path", "")
        return RedirectResponse(f"{base}/tokens/{quote(token_id, safe='')}?cancelled={ok}", 303)

    # -- audit -------------------------------------------------------------------------------------------

    def _audit_entries(self, params: dict[str, str]) -> list[audit_core.AuditEntry]:
        ctx = self.admin_context()
        return audit_core.search_audit(ctx, audit_core.AuditQuery.from_text(params, ctx.clock()))

    async def audit_page(self, request: Request) -> Response:
        params = dict(request.query_params)
        errors: dict[str, str] = {}
        try:
            rows = await run_in_threadpool(self._audit_entries, params)
        except AdminError as err:
            rows, errors = [], field_errors(err)
        return self.render(request, "audit.html", 400 if errors else 200, rows=rows, values=params, errors=errors,
                           events=AUDIT_EVENTS, outcomes=AUDIT_OUTCOMES)


def _optional_text(values: dict[str, Any], key: str) -> str | None:
    value = values.get(key)
    return None if value is None else str(value)
