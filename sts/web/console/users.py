"""Users and their claims: the console pages over ``sts.admin.users`` (read the form, call the core, render)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sts.admin import users as core
from sts.admin.base import Actor, AdminContext, AdminError, field_errors
from sts.model import UserRecord
from sts.claim_dictionary import KNOWN_CLAIMS, short_name
from sts.web.console.core import ConsoleCore, _form_values, _text

# What the claim pickers offer (short name, URI, description); any URI may still be typed.
CLAIM_CONTEXT: dict[str, Any] = {"known_claims": KNOWN_CLAIMS, "short_name": short_name}


def claim_lines(values: dict[str, Any]) -> list[str]:
    """The claims textarea's lines, plus the picker's claim (``claim_name`` = ``claim_value``) when one is given."""
    lines = str(values.get("claims", "")).splitlines()
    picked = str(values.get("claim_name", "")).strip()
    if picked:
        lines.append(f"{picked}={str(values.get('claim_value', '')).strip()}")
    return lines


class UserPages(ConsoleCore):
    """Users and their claims."""

    async def users(self, request: Request) -> Response:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        warnings: tuple[str, ...] = ()
        status = 200
        if request.method == "POST":
            raw = await self.form(request)
            assert raw is not None
            values = _form_values(raw)
            name = str(values.get("name", "")).strip()
            try:
                change = await run_in_threadpool(self._add_user, self.admin_actor(request), name,
                                                 str(values.get("password", "")), claim_lines(values),
                                                 bool(values.get("admin")))
            except AdminError as err:
                errors, status = field_errors(err), 400
            else:
                if not change.warnings:
                    return RedirectResponse(f"{request.scope.get('root_path', '')}/users?added={quote(name)}", 303)
                warnings, values = change.warnings, {}
        records = await run_in_threadpool(core.list_users, self.admin_context())
        return self.render(request, "users.html", status, users=records, values=values, errors=errors,
                           warnings=warnings, min_length=self.runtime.settings.admin_password_min_length,
                           **await self._directory_search(request), **CLAIM_CONTEXT)

    async def _directory_search(self, request: Request) -> dict[str, Any]:
        """The read-only directory section: the search asked for in ``?directory=`` and its answer or refusal."""
        directory = self.runtime.directory
        text = request.query_params.get("directory", "").strip()
        found: dict[str, Any] = {"directory": directory is not None, "directory_query": text,
                                 "directory_found": None, "directory_error": ""}
        if directory is None or not text:
            return found
        try:
            found["directory_found"] = await run_in_threadpool(core.search_directory, self.admin_context(), text,
                                                               directory)
        except AdminError as err:
            found["directory_error"] = str(err)
        return found

    def _add_user(self, actor: Actor, name: str, password: str, lines: list[str], admin: bool) -> core.UserChange:
        return core.add_user(self.admin_context(), actor, name, password, core.parse_claim_lines(lines), admin=admin)

    async def user_edit(self, request: Request) -> Response:
        name = request.path_params["name"]
        base = request.scope.get("root_path", "")
        record = await run_in_threadpool(self.runtime.stores.users.get, name)
        if record is None:
            return self.render(request, "message.html", 404, title="Not found", message=f"No user named {name}.")
        values: dict[str, Any] = {"claims": "\n".join(f"{short_name(c.uri)}={v}" for c in record.claims
                                                      for v in c.values)}
        if request.method == "GET":
            return self._user_page(request, record, values)
        raw = await self.form(request)
        assert raw is not None
        action = _text(raw.get("action"))
        if action == "remove" and raw.get("confirm") != "yes" and name != self.actor(request):
            return self.render(request, "confirm.html", title="Remove user",
                               question=f"Remove the user {name} and its claims?",
                               action=f"users/{quote(name, safe='')}", back=f"users/{quote(name, safe='')}",
                               fields={"action": "remove", "confirm": "yes"})
        operation = self._user_operation(action, raw)
        if operation is None:
            return self.render(request, "message.html", 400, title="Bad request", message="Unknown action.")
        actor = self.admin_actor(request)
        try:
            change = await run_in_threadpool(operation, self.admin_context(), actor, name)
        except AdminError as err:
            if action == "claims":
                values = _form_values(raw)
            record = await run_in_threadpool(self.runtime.stores.users.get, name) or record
            return self._user_page(request, record, values, 400, errors=field_errors(err), failed=action)
        if action == "remove":
            return RedirectResponse(f"{base}/users?removed={quote(name)}", 303)
        if isinstance(change, core.UserChange) and change.warnings:
            return self._user_page(request, change.user, _form_values(raw), warnings=change.warnings, saved=True)
        return RedirectResponse(f"{base}/users/{quote(name, safe='')}?saved={action}", 303)

    def _user_page(self, request: Request, record: UserRecord, values: dict[str, Any], status: int = 200, *,
                   errors: dict[str, str] | None = None, warnings: tuple[str, ...] = (), failed: str = "",
                   saved: bool = False) -> Response:
        return self.render(request, "user.html", status, record=record, values=values, errors=errors or {},
                           warnings=warnings, failed=failed, saved=saved,
                           min_length=self.runtime.settings.admin_password_min_length, **CLAIM_CONTEXT)

    @staticmethod
    def _user_operation(action: str, raw: FormData) -> Callable[[AdminContext, Actor, str], object] | None:
        """The core operation a user page form asks for, with its form values bound."""
        password = _text(raw.get("password"))
        operations: dict[str, Callable[[AdminContext, Actor, str], object]] = {
            "claims": lambda ctx, actor, name: core.set_claims(
                ctx, actor, name, core.parse_claim_lines(claim_lines(_form_values(raw)))),
            "password": lambda ctx, actor, name: core.set_password(ctx, actor, name, password),
            "disable": lambda ctx, actor, name: core.set_disabled(ctx, actor, name, True),
            "enable": lambda ctx, actor, name: core.set_disabled(ctx, actor, name, False),
            "promote": lambda ctx, actor, name: core.promote(ctx, actor, name, password),
            "demote": lambda ctx, actor, name: core.demote(ctx, actor, name),
            "remove": lambda ctx, actor, name: core.remove_user(ctx, actor, name),
        }
        return operations.get(action)
