"""The Keys page in a real browser: a switch in the past is refused with its explanation until confirmed, and the
dashboard warns of a switch that is near."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from browser_support import console_server, requires_chromium, shot, sign_in  # type: ignore[import-not-found]
from console_support import ADMIN  # type: ignore[import-not-found]
from live import LiveServer

from sts.config import load_settings
from sts.runtime import build_runtime
from sts.store.audit import AuditTrail
from sts.tokens.crypto.keys import load_certificate
from sts.tokens.keyring import LEGACY_ID, Keyring
from sts.xmltime import utcnow

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A home of its own: these tests change its signing keys."""
    with console_server(tmp_path_factory.mktemp("console-keys-home")) as server_info:
        yield server_info


def _ring(live: LiveServer) -> Keyring:
    return Keyring.for_home(load_settings(live.home).signing_key_path)


def _schedule(page: Any, at: str, *, confirm: bool = False) -> None:
    page.fill("#f-active_from", at)
    if confirm:
        page.check("#f-confirm_short_lead-1")
    page.click("form.card button[type=submit]")


def test_a_past_switch_is_refused_until_confirmed(page: Any, live: LiveServer) -> None:
    sign_in(page, live)
    page.goto(f"{live.base_url}/console/keys")
    in_use = load_settings(live.home).signing_cert_path.read_bytes()
    _schedule(page, "2019-01-01T00:00")
    error = page.locator("#active_from-error").inner_text()
    assert error.startswith("the switch time 2019-01-01T00:00:00+00:00 is not in the future")
    assert page.locator("#confirm_short_lead-error").inner_text() == (
        "Nothing was scheduled. To switch anyway, tick this box.")
    risk = page.locator("label[for=f-confirm_short_lead-1]").inner_text()
    assert risk.startswith("Switch sooner than 24 h ahead") and "will reject every token" in risk
    assert page.locator("#f-active_from").input_value() == "2019-01-01T00:00"  # kept for the second try
    shot(page, "keys-refused")
    assert [e.id for e in _ring(live).entries()] == [LEGACY_ID]  # nothing scheduled
    assert load_settings(live.home).signing_cert_path.read_bytes() == in_use

    _schedule(page, "2019-01-01T00:00", confirm=True)
    page.wait_for_url(f"{live.base_url}/console/keys?scheduled=1")
    assert page.locator("p.ok").inner_text() == "Scheduled."
    states = {e.id: e.state for e in _ring(live).entries()}
    new_id = next(key for key in states if key != LEGACY_ID)
    assert states == {LEGACY_ID: "retired-published", new_id: "active"}  # a past time means now
    assert new_id in page.locator("table.list").nth(1).inner_text()
    in_use_now = load_certificate(load_settings(live.home).signing_cert_path.read_bytes())
    assert in_use_now == _ring(live).current(utcnow()).certificate
    runtime = build_runtime(load_settings(live.home))
    try:
        records = AuditTrail(runtime.stores.engine).search(event="keys.rollover")
    finally:
        runtime.stores.close()
    assert [(r.actor, r.outcome) for r in records] == [(ADMIN, "ok"), (ADMIN, "refused")]
    assert records[0].detail["after"]["override"] == "confirmed"


def test_the_dashboard_warns_of_a_near_switch(page: Any, live: LiveServer) -> None:
    sign_in(page, live)
    assert page.locator("#switch-warning").count() == 0  # no key scheduled ahead yet
    page.goto(f"{live.base_url}/console/keys")
    at = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    _schedule(page, at)  # two days ahead: more than the minimum lead, no confirmation needed
    page.wait_for_url(f"{live.base_url}/console/keys?scheduled=1")
    next_id = next(e.id for e in _ring(live).entries() if e.state == "next")
    page.goto(f"{live.base_url}/console/")
    warning = page.locator("#switch-warning").inner_text()
    assert next_id in warning and re.search(r"\(in (48|47\.\d) h\)", warning), warning
    assert "Relying parties must fetch the federation metadata before then" in warning
    shot(page, "dashboard-switch-warning")
