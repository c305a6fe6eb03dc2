"""The console's read-only directory search in a real browser (Debian's Chromium via Playwright), against a live
STS whose ``user_store`` is a real slapd (tests/servers/slapd.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from a11y import check_page  # type: ignore[import-not-found]
from browser_support import requires_chromium, shot, sign_in  # type: ignore[import-not-found]
from console_support import ADMIN, ADMIN_PASSWORD  # type: ignore[import-not-found]
from live import LiveServer, running
from servers.slapd import Slapd

from sts.config import load_settings
from sts.home import init_home
from sts.runtime import build_runtime

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("console-directory")
    with Slapd.started(root) as slapd:
        home = root / "home"
        init_home(home)
        stores = build_runtime(load_settings(home)).stores
        stores.users.add(ADMIN, ADMIN_PASSWORD, admin=True)
        stores.close()
        with running(home, **slapd.settings(ldap_start_tls=True)) as server:
            yield server


def test_search_the_directory_from_the_users_page(page: Any, live: LiveServer) -> None:
    sign_in(page, live)
    page.goto(f"{live.base_url}/console/users")
    page.fill("#f-directory", "car")
    page.click("button:has-text('Search the directory')")
    page.wait_for_url(lambda url: "directory=car" in url)
    table = page.locator("table[aria-label='Directory users']")
    assert table.locator("tbody tr td:first-child").all_inner_texts() == ["carol"]
    claims = table.locator("tbody tr td:nth-child(2)").inner_text()
    assert "givenname = Carol" in claims and "role = sts-admins, sts-users" in claims
    assert table.locator("a").count() == 0  # read-only: nothing to open or edit
    check_page(page.content(), "users page with a directory search")
    shot(page, "users-directory")

    # Too short a search is said next to the box, and nothing is listed.
    page.fill("#f-directory", "c")
    page.click("button:has-text('Search the directory')")
    page.wait_for_url(lambda url: "directory=c" in url and "directory=car" not in url)
    assert "at least 2 characters" in page.locator("#directory-error").inner_text()
    assert page.locator("#f-directory").get_attribute("aria-invalid") == "true"
    check_page(page.content(), "users page with a refused directory search")
