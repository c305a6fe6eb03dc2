"""The management console: server-rendered pages under /console and a JSON API under /console/api.

Every page and action needs an administrator's session (``sts admin add``); forms carry a CSRF token, the API
takes either the session with an ``X-CSRF-Token`` header or HTTP Basic with an administrator's credentials.
Back-end pieces that may be absent from a build (explain, the audit trail, the keyring, metadata import) are
looked up at run time; their pages say so instead of failing.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sts.runtime import Runtime
from sts.web.console.api import ApiRoutes
from sts.web.console.core import HERE


class Console(ApiRoutes):
    """The whole console: every page and API handler (see the modules named for each concept)."""


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
        Route("/api/rps", c.api(c.api_rps), methods=["GET", "POST", "PATCH", "DELETE"]),
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
