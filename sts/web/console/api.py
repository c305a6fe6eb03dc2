"""The JSON admin API under /console/api: the same operations as the pages."""

from __future__ import annotations

from dataclasses import asdict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sts.web.console import forms
from sts.web.console.core import _json_body, _json, _json_ready, _now, _rp_json, _safe_details, optional_module
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
        module = optional_module("sts.service.explain")
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
