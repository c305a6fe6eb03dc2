"""What every browser test of the console shares: Debian's Chromium, a live STS on a fresh home, signing in.

Playwright never downloads a browser here: it launches /usr/bin/chromium (``make deps`` installs it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from console_support import ADMIN, ADMIN_PASSWORD  # type: ignore[import-not-found]
from live import LiveServer, running

from sts.config import load_settings
from sts.home import init_home
from sts.runtime import build_runtime
from sts.store.database import Database

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]

requires_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                       reason="Debian's chromium is not installed (/usr/bin/chromium): run `make deps`")


@contextmanager
def console_server(home: Path, setup: Callable[[Database], None] | None = None) -> Iterator[LiveServer]:
    """A live STS on a fresh ``home`` with the console administrator (and what ``setup`` adds to its stores)."""
    init_home(home)
    stores = build_runtime(load_settings(home)).stores
    stores.users.add(ADMIN, ADMIN_PASSWORD, admin=True)
    if setup is not None:
        setup(stores)
    stores.close()
    with running(home) as server_info:
        yield server_info


@contextmanager
def launched_browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


def sign_in(page: Any, live: LiveServer) -> None:
    page.goto(f"{live.base_url}/console/login")
    page.fill("#f-name", ADMIN)
    page.fill("#f-password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.base_url}/console/")


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
