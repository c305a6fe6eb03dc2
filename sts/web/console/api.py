"""The JSON admin API under /console/api: the same operations as the pages."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sts.admin import relying_parties as rp_core
from sts.admin import tokens as token_core
from sts.admin import users as user_core
from sts.admin.base import Actor, AdminContext, AdminError, ConfirmationRequired, Conflict, NotFound, field_errors
from sts.web.console.core import _json_body, _json, _rp_json
from sts.web.console.activity import ActivityPages
from sts.web.console.overview import OverviewPages
from sts.web.console.relying_parties import RelyingPartyPages
from sts.web.console.users import UserPages


class ApiRoutes(OverviewPages, RelyingPartyPages, UserPages, ActivityPages):
    """The JSON admin API under /console/api: the same operations as the pages."""

    # -- JSON API ----------------------------------------------------------------------------------------

    async def api_status(self, request: Request) -> Response:
        status = await run_in_threadpool(self.status, request)
        return _json(status)

    async def api_rps(self, request: Request) -> Response:
        """GET lists; POST adds (``certificate_pem``, or ``metadata``/``metadata_url``); PATCH ``?endpoint=``
        changes what the body gives; DELETE ``?endpoint=`` removes. Refusals: ``{"errors": {field: message}}``
        with 400 (409 for a duplicate, 404 for an unknown endpoint)."""
        if request.method == "GET":
            rows = await run_in_threadpool(self._rp_rows)
            return _json([{**_rp_json(r["rp"]), "certificate": r["cert"]} for r in rows])
        ctx, actor = self.admin_context(), self.admin_actor(request)
        endpoint = request.query_params.get("endpoint", "")
        if request.method == "DELETE":
            try:
                await run_in_threadpool(rp_core.remove_relying_party, ctx, actor, endpoint)
            except AdminError as err:
                return _admin_error_json(err, removed=False)
            return _json({"removed": True})
        body = await _json_body(request)
        if body is None:
            return _json({"error": "the body must be a JSON object"}, 400)
        policy = _rp_policy_json(body)
        legacy = bool(body.get("legacy"))
        certificate = str(body["certificate_pem"]).encode() if body.get("certificate_pem") else None
        try:
            if request.method == "PATCH":
                change = await run_in_threadpool(lambda: rp_core.update_relying_party(
                    ctx, actor, endpoint, policy, certificate=certificate, allow_legacy=legacy))
            elif body.get("metadata") or body.get("metadata_url"):
                source = str(body["metadata"]).encode() if body.get("metadata") else str(body["metadata_url"])
                change = await run_in_threadpool(lambda: rp_core.add_relying_party_from_metadata(
                    ctx, actor, source, endpoint=body.get("endpoint") or None, policy=policy, allow_legacy=legacy))
            else:
                change = await run_in_threadpool(lambda: rp_core.add_relying_party(
                    ctx, actor, str(body.get("endpoint") or ""), certificate=certificate, policy=policy,
                    allow_legacy=legacy))
        except AdminError as err:
            return _admin_error_json(err)
        return _json({**_rp_json(change.relying_party), "warnings": list(change.warnings)},
                     200 if request.method == "PATCH" else 201)

    async def api_users(self, request: Request) -> Response:
        """GET lists; POST adds ``{"name", "password", "claims": [[NAME, VALUE], ...] or {NAME: VALUE}, "admin"}``
        (NAME a short claim name or a URI). Refusals: ``{"errors": {field: message}}``."""
        ctx = self.admin_context()
        if request.method == "GET":
            records = await run_in_threadpool(user_core.list_users, ctx)
            return _json([user_core.user_data(r) for r in records])
        body = await _json_body(request)
        if body is None:
            return _json({"error": "the body must be a JSON object"}, 400)
        try:
            change = await run_in_threadpool(
                user_core.add_user, ctx, self.admin_actor(request), str(body.get("name", "")),
                str(body.get("password", "")), _claim_pairs(body.get("claims")), admin=bool(body.get("admin")))
        except AdminError as err:
            return _admin_error_json(err)
        return _json({"name": change.user.name, "warnings": list(change.warnings)}, 201)

    async def api_user(self, request: Request) -> Response:
        """DELETE removes; PATCH applies what the body gives: ``claims`` (replaced), ``password``, ``disabled``,
        ``admin`` (true needs a ``password`` that meets the administrators' policy)."""
        name = request.path_params["name"]
        ctx, actor = self.admin_context(), self.admin_actor(request)
        if request.method == "DELETE":
            try:
                await run_in_threadpool(user_core.remove_user, ctx, actor, name)
            except AdminError as err:
                return _admin_error_json(err, removed=False)
            return _json({"removed": True})
        body = await _json_body(request)
        if body is None:
            return _json({"error": "the body must be a JSON object"}, 400)
        try:
            change = await run_in_threadpool(_patch_user, ctx, actor, name, body)
        except AdminError as err:
            return _admin_error_json(err)
        return _json({**user_core.user_data(change.user), "warnings": list(change.warnings)})

    async def api_tokens(self, request: Request) -> Response:
        """GET ``?subject=&applies_to=&status=&limit=``: the tokens, each with its claims and readable details."""
        try:
            found = await run_in_threadpool(self._search_tokens, dict(request.query_params))
        except AdminError as err:
            return _admin_error_json(err)
        return _json([token_core.describe(t).to_dict() for t in found])

    async def api_token_cancel(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        try:
            await run_in_threadpool(token_core.cancel_token, self.admin_context(),
                                    self.admin_actor(request), token_id)
        except AdminError as err:
            return _admin_error_json(err, cancelled=False)
        return _json({"cancelled": True})

    async def api_audit(self, request: Request) -> Response:
        """GET ``?actor=&action=(or event=)&since=&until=&outcome=&limit=``, newest first."""
        try:
            entries = await run_in_threadpool(self._audit_entries, dict(request.query_params))
        except AdminError as err:
            return _admin_error_json(err)
        return _json([entry.to_dict() for entry in entries])

    async def api_explain(self, request: Request) -> Response:
        """POST ``{"user", "rp", "claims": ["surname", "upn?"], "token_type", "lifetime"}``: the dry run, with
        ``problem`` (the refusal in an administrator's words) beside the wire ``fault``."""
        body = await _json_body(request)
        if body is None:
            return _json({"error": "the body must be a JSON object"}, 400)
        try:
            answer = await run_in_threadpool(self._explain, dict(body))
        except AdminError as err:
            return _admin_error_json(err)
        return _json(answer.to_dict())


def _claim_pairs(raw: object) -> list[tuple[str, str]]:
    """``[[NAME, VALUE], ...]``, ``{NAME: VALUE or [VALUES]}`` or ``["NAME=VALUE", ...]`` as (name, value) pairs."""
    if isinstance(raw, dict):
        return [(str(k), str(v)) for k, values in raw.items()
                for v in (values if isinstance(values, list) else [values])]
    if not isinstance(raw, list):
        return []
    lines = [item for item in raw if isinstance(item, str)]
    pairs = [(str(c[0]), str(c[1])) for c in raw if isinstance(c, list) and len(c) == 2]
    return pairs + user_core.parse_claim_lines(lines)


def _patch_user(ctx: AdminContext, actor: Actor, name: str, body: dict[str, Any]) -> user_core.UserChange:
    """Each change the body asks for, through its own core operation (each audited)."""
    change = user_core.UserChange(user_core.get_user(ctx, name))
    warnings: tuple[str, ...] = ()
    if "claims" in body:
        change = user_core.set_claims(ctx, actor, name, _claim_pairs(body["claims"]))
        warnings = change.warnings
    if body.get("admin") is True and not change.user.admin:
        change = user_core.promote(ctx, actor, name, str(body.get("password", "")))
    elif body.get("password"):
        change = user_core.set_password(ctx, actor, name, str(body["password"]))
    if body.get("admin") is False and change.user.admin:
        change = user_core.demote(ctx, actor, name)
    if "disabled" in body:
        change = user_core.set_disabled(ctx, actor, name, bool(body["disabled"]))
    return user_core.UserChange(change.user, warnings)


def _rp_policy_json(body: dict[str, Any]) -> rp_core.RelyingPartyPolicy:
    """The policy fields of a JSON body (lists or one string each); a missing field keeps its default (POST) or
    stays as it is (PATCH)."""

    def strings(key: str) -> tuple[str, ...] | None:
        value = body.get(key)
        if value is None:
            return None
        return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)

    def scalar(key: str, kind: type) -> Any:
        value = body.get(key)
        return None if value is None else kind(value)

    return rp_core.RelyingPartyPolicy(
        match_prefix=scalar("match_prefix", bool), token_type=scalar("token_type", str),
        required_claims=strings("required_claims"), permitted_claims=strings("permitted_claims"),
        encrypt=scalar("encrypt", bool), default_lifetime=_seconds(body.get("default_lifetime")),
        max_lifetime=_seconds(body.get("max_lifetime")), refuse_long_lifetime=scalar("refuse_long_lifetime", bool),
        name_id_claim=scalar("name_id_claim", str), signature=scalar("signature", str),
        data_encryption=scalar("data_encryption", str), key_transport=scalar("key_transport", str),
        allowed_token_types=strings("allowed_token_types"), allowed_key_types=strings("allowed_key_types"),
        additional_audiences=strings("additional_audiences"))


def _seconds(value: object) -> int | None:
    """A lifetime in seconds; a value that is not a whole number becomes 0, which the core refuses by field."""
    if value is None:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _admin_error_json(error: AdminError, **extra: object) -> Response:
    """An AdminError as the API answers it: 404 not found, 409 conflict, else 400; errors by field."""
    status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 400
    body: dict[str, object] = {**extra, "errors": field_errors(error)}
    if isinstance(error, ConfirmationRequired):
        body["risk"] = error.risk
    return _json(body, status)
