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
from typing import Any

import pytest
from browser_support import console_server, requires_chromium, shot, sign_in  # type: ignore[import-not-found]
from live import LiveServer

from sts.home import DEMO_RP_ENDPOINT
from sts.store.database import Database

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    def add_bob(stores: Database) -> None:
        stores.users.add("bob", "pw", [("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "Bob")])

    with console_server(tmp_path_factory.mktemp("console-admin-home"), add_bob) as server_info:
        yield server_info


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    signed_in = context.new_page()
    sign_in(signed_in, live)
    yield signed_in
    context.close()


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
