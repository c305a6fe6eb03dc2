"""The console's Explain and audit pages in a real browser (Debian's Chromium via Playwright) against a live STS.

Explain must answer an optional claim the user lacks with a token (the claim left out) and a required one with a
refusal in an administrator's words; a change made with the `sts` command shows in the audit page as cli:<user>.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_support import ADMIN, ADMIN_PASSWORD  # type: ignore[import-not-found]
from live import LiveServer, start_server

from sts.config import load_settings
from sts.home import DEMO_RP_ENDPOINT, init_home
from sts.runtime import build_runtime

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed (/usr/bin/chromium): run `make deps`")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("console-admin-home")
    init_home(home)
    stores = build_runtime(load_settings(home)).stores
    stores.users.add(ADMIN, ADMIN_PASSWORD, admin=True)
    stores.users.add("bob", "pw", [("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "Bob")])
    stores.close()
    server_info, server, thread = start_server(home)
    yield server_info
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    signed_in = context.new_page()
    signed_in.goto(f"{live.base_url}/console/login")
    signed_in.fill("#f-name", ADMIN)
    signed_in.fill("#f-password", ADMIN_PASSWORD)
    signed_in.click("button[type=submit]")
    signed_in.wait_for_url(f"{live.base_url}/console/")
    yield signed_in
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def explain(page: Any, live: LiveServer, claims: str) -> str:
    page.goto(f"{live.base_url}/console/explain")
    page.fill("#f-user", "bob")
    page.fill("#f-rp", DEMO_RP_ENDPOINT)
    page.fill("#f-claims", claims)
    page.click("button[type=submit]:has-text('Explain')")
    page.wait_for_selector("#explanation")
    return str(page.locator("#explanation").inner_text())


def test_explain_optional_and_required_claims(page: Any, live: LiveServer) -> None:
    optional = explain(page, live, "givenname\nsurname?")
    assert "Would issue" in optional and "Would refuse" not in optional
    assert "givenname" in page.locator("#explain-claims").inner_text()
    assert "surname" in page.locator("#explain-omitted").inner_text()
    shot(page, "explain-optional")
    required = explain(page, live, "givenname\nsurname")
    assert "Would refuse" in required
    assert page.locator("#explain-problem").inner_text() == "Refused: bob lacks the requested claim surname"
    assert "wst:RequestFailed" in page.locator("#explain-fault").inner_text()
    shot(page, "explain-required")


def test_a_cli_change_appears_in_the_audit_page(page: Any, live: LiveServer) -> None:
    env = {**os.environ, "STS_PASSWORD_HASH_N": "16"}
    added = subprocess.run([sys.executable, "-m", "sts", "--home", str(live.home), "user", "add", "carol",
                            "--password", "pw", "--claim", "emailaddress=carol@example.org"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert added.returncode == 0, added.stderr
    page.goto(f"{live.base_url}/console/audit")
    page.fill("#f-event", "user.*")
    page.click("button[type=submit]:has-text('Filter')")
    page.wait_for_url(lambda url: "event=user" in url)
    row = page.locator("#audit-entries tbody tr", has_text="carol").first
    cells = row.locator("td").all_inner_texts()
    assert cells[1:5] == ["user.add", f"cli:{getpass.getuser()}", "ok", "carol"]
    assert "emailaddress" in cells[5]
    shot(page, "audit-cli-change")


def test_claim_picker_adds_a_known_claim_by_its_short_name(page: Any, live: LiveServer) -> None:
    page.goto(f"{live.base_url}/console/users")
    page.fill("#f-name", "dora")
    page.fill("#f-password", "pw")
    page.fill("#f-claim_name", "givenname")
    page.fill("#f-claim_value", "Dora")
    page.fill("#f-claims", "urn:example:boots=7")
    page.click("button[type=submit]:has-text('Add user')")
    assert "Warning: claim URI urn:example:boots is not in the claim dictionary" in page.content()
    row = page.locator("table.list tr", has_text="dora").first.inner_text()
    assert "givenname = Dora" in row and "urn:example:boots = 7" in row
    shot(page, "users-picker")
