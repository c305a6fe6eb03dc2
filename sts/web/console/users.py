"""Users and their claims."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sts.web.console.core import CLAIM_URIS, ConsoleCore, _form_values, _parse_claim_lines, _text


class UserPages(ConsoleCore):
    """Users and their claims."""

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
