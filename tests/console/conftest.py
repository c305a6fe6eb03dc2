"""Console fixtures: a fresh home with an administrator, the whole ASGI app, a signed-in TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_support import ADMIN, ADMIN_PASSWORD, sign_in  # type: ignore[import-not-found]
from starlette.testclient import TestClient

from sts.web.asgi import create_app
from sts.config import load_settings
from sts.home import init_home
from sts.runtime import Runtime, build_runtime


@pytest.fixture
def console_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    init_home(home)
    runtime = build_runtime(load_settings(home))
    runtime.stores.users.add(ADMIN, ADMIN_PASSWORD, admin=True)
    runtime.stores.close()
    return home


@pytest.fixture
def runtime(console_home: Path) -> Iterator[Runtime]:
    rt = build_runtime(load_settings(console_home))
    yield rt
    rt.stores.close()


@pytest.fixture
def client(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime, loopback_bind=True), follow_redirects=False)


@pytest.fixture
def admin(client: TestClient) -> str:
    return sign_in(client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, one per test module (browser tests only)."""
    from browser_support import launched_browser  # type: ignore[import-not-found]

    with launched_browser() as instance:
        yield instance


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh 1280 x 900 browser page (its own context: no cookies from another test)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()
