"""The console's sign-in (form and HTTP Basic) under the one brute-force throttle: a delay, never a lock-out, the
state in the database (shared with the SOAP endpoint), and the throttling visible in the audit view."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from console_support import ADMIN, ADMIN_PASSWORD, csrf_of, sign_in  # type: ignore[import-not-found]
from starlette.testclient import TestClient
from trust_client import rst_envelope

from sts.config import load_settings
from sts.home import DEMO_RP_ENDPOINT
from sts.runtime import Runtime, build_runtime
from sts.store.throttle import SqlThrottleStore
from sts.web.asgi import create_app
from sts.xmltime import utcnow

DELAY = 0.3  # base = cap: every throttled check waits exactly this long
SLACK = 1.5


@pytest.fixture
def throttled_runtime(console_home: Path) -> Iterator[Runtime]:
    settings = replace(load_settings(console_home), auth_throttle_free_failures=2,
                       auth_throttle_base_delay_ms=int(DELAY * 1000), auth_throttle_max_delay_ms=int(DELAY * 1000))
    runtime = build_runtime(settings)
    yield runtime
    runtime.stores.close()


@pytest.fixture
def web(throttled_runtime: Runtime) -> TestClient:
    return TestClient(create_app(throttled_runtime, loopback_bind=True), follow_redirects=False)


def _sign_in(client: TestClient, password: str) -> tuple[int, float, str]:
    page = client.get("/console/login")
    start = time.monotonic()
    response = client.post("/console/login", data={"csrf": csrf_of(page.text), "name": ADMIN, "password": password})
    return response.status_code, time.monotonic() - start, response.text


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{ADMIN}:{password}".encode()).decode()}


def test_sign_in_is_delayed_never_locked_out(web: TestClient) -> None:
    results = [_sign_in(web, "guess") for _ in range(6)]
    assert [status for status, _, _ in results] == [401] * 6
    assert all("wrong name or password" in text for _, _, text in results)
    assert all(elapsed < DELAY for _, elapsed, _ in results[:2])
    assert all(DELAY * 0.95 <= elapsed < DELAY + SLACK for _, elapsed, _ in results[2:])
    # The administrator still gets in, after the capped delay.
    status, elapsed, _ = _sign_in(web, ADMIN_PASSWORD)
    assert status == 303 and DELAY * 0.95 <= elapsed < DELAY + SLACK


def test_http_basic_is_throttled_too(web: TestClient) -> None:
    for _ in range(3):
        assert web.get("/console/api/users", headers=_basic("guess")).status_code == 401
    start = time.monotonic()
    response = web.get("/console/api/users", headers=_basic(ADMIN_PASSWORD))
    assert response.status_code == 200 and time.monotonic() - start >= DELAY * 0.95


def test_console_and_soap_share_one_count_in_the_database(web: TestClient, throttled_runtime: Runtime) -> None:
    for _ in range(2):
        assert _sign_in(web, "guess")[0] == 401
    throttle = throttled_runtime.throttle
    assert throttle is not None
    since = utcnow() - throttle.policy.window
    assert SqlThrottleStore(throttled_runtime.stores.engine).counts(ADMIN, "testclient", since) == (2, 2)
    # The next password check of that user is delayed on the SOAP endpoint as well.
    body = rst_envelope(user=ADMIN, password=ADMIN_PASSWORD, applies_to=DEMO_RP_ENDPOINT)
    start = time.monotonic()
    response = web.post("/services/sts", content=body, headers={"content-type": "application/soap+xml"})
    assert response.status_code == 200 and time.monotonic() - start >= DELAY * 0.95


def test_the_audit_view_shows_and_filters_throttling(web: TestClient) -> None:
    for _ in range(3):
        _sign_in(web, "guess")
    sign_in(web)
    page = web.get("/console/audit", params={"event": "auth.throttled", "outcome": "throttled"})
    assert page.status_code == 200
    rows = page.text.split('<tbody>')[1].split('</tbody>')[0]
    assert "auth.throttled" in rows and f"<td>{ADMIN}</td>" in rows and "testclient" in rows
    assert "console.login-failed" not in rows  # filtered to the throttling
    assert '<option value="throttled" selected>' in page.text
    assert "guess" not in page.text


def test_non_ascii_csrf_tokens_are_refused_not_a_server_error(web: TestClient) -> None:
    # hmac.compare_digest raises TypeError on non-ASCII str: the console compares bytes.
    web.get("/console/login")
    response = web.post("/console/login", data={"csrf": "é" * 32, "name": ADMIN, "password": ADMIN_PASSWORD})
    assert response.status_code == 403
    sign_in(web)
    response = web.post("/console/api/users", json={}, headers={"x-csrf-token": ("é" * 32).encode("latin-1")})
    assert response.status_code == 403
