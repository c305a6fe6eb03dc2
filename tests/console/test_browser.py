"""The console in a real browser (Debian's Chromium driven by Playwright) against a live STS.

Playwright never downloads a browser here: it launches /usr/bin/chromium (``make deps`` installs it). Each page
is saved under tests/console/artifacts/; the relying-party page becomes docs/console-relying-parties.png when that
file is missing or STS_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from a11y import check_page  # type: ignore[import-not-found]
from browser_support import ARTIFACTS, console_server, requires_chromium, shot, sign_in  # type: ignore[import-not-found]
from live import LiveServer
from trust_client import post, rst_envelope

from sts import ns
from sts.tokens.crypto.encryption import decrypt_element
from sts.tokens.crypto.keys import load_private_key
from sts.home import DEMO_PASSWORD, DEMO_USER

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console-relying-parties.png"
RP = "https://browser-rp.example/app"

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with console_server(tmp_path_factory.mktemp("console-home")) as server_info:
        yield server_info


def issue_for(live: LiveServer, endpoint: str) -> Any:
    return post(live.sts_url, rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=endpoint))


def test_unauthenticated_page_redirects_to_sign_in(page: Any, live: LiveServer) -> None:
    page.goto(f"{live.base_url}/console/rps")
    assert "/console/login?next=" in page.url
    assert page.locator("h1").inner_text() == "Sign in"
    shot(page, "login")


def test_relying_party_lifecycle(page: Any, live: LiveServer, tmp_path: Path) -> None:
    sign_in(page, live)
    shot(page, "dashboard")
    assert "FederationMetadata.xml" in page.content()

    # Add by uploading the demo RP's certificate file; the STS encrypts for it, we decrypt with its key.
    page.goto(f"{live.base_url}/console/rps/new")
    page.fill("#f-endpoint", RP)
    page.set_input_files("#f-cert_file", str(live.home / "demo" / "rp.crt"))
    page.click("button[type=submit]:has-text('Add')")
    page.wait_for_url(lambda url: "/console/rps?added=" in url)
    assert page.locator("td code", has_text=RP).count() == 1
    assert "CN=" in page.locator("table.list").inner_text()
    shot(page, "relying-parties")
    if not SCREENSHOT.exists() or os.environ.get("STS_UPDATE_SCREENSHOTS") == "1":
        # The README's picture: refreshed on request only, so a test run leaves the work tree clean.
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / "relying-parties.png", SCREENSHOT)

    reply = issue_for(live, RP)
    assert reply.status == 200, reply.fault_reason
    encrypted = reply.token().find(f".//{{{ns.XENC}}}EncryptedData")
    assert encrypted is not None
    key = load_private_key((live.home / "demo" / "rp.key").read_bytes())
    assertion = decrypt_element(encrypted, key)
    assert assertion.tag == f"{{{ns.SAML2}}}Assertion"

    # A broken certificate is refused next to the field, the endpoint kept, nothing stored.
    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    page.goto(f"{live.base_url}/console/rps/new")
    page.fill("#f-endpoint", "https://broken.example/")
    page.set_input_files("#f-cert_file", str(broken))
    page.click("button[type=submit]:has-text('Add')")
    assert "not a PEM or DER X.509 certificate" in page.locator("#cert-error").inner_text()
    assert page.input_value("#f-endpoint") == "https://broken.example/"
    shot(page, "relying-party-error")

    # Remove, with the confirmation; the next RST for it is refused.
    page.goto(f"{live.base_url}/console/rps")
    page.locator("tr", has_text=RP).locator("a.remove").click()
    assert "Remove the relying party" in page.content()
    shot(page, "relying-party-remove")
    page.click("#confirm")
    page.wait_for_url(lambda url: "/console/rps?removed=" in url)
    assert page.locator("td code", has_text=RP).count() == 0
    refused = issue_for(live, RP)
    assert refused.fault_code is not None and refused.fault_code[1] == "InvalidScope"


def test_post_without_csrf_token_is_forbidden(page: Any, live: LiveServer) -> None:
    sign_in(page, live)
    response = page.request.post(f"{live.base_url}/console/rps/new",
                                 form={"endpoint": "https://csrf.example/", "encrypt": "1"})
    assert response.status == 403
    page.goto(f"{live.base_url}/console/rps")
    assert "csrf.example" not in page.content()


PAGES = {"dashboard": "/console/", "rps": "/console/rps", "rp-new": "/console/rps/new",
         "rp-edit": "/console/rps/edit?endpoint=https%3A%2F%2Fservice-a.example%2F", "users": "/console/users",
         "user": "/console/users/alice", "explain": "/console/explain", "tokens": "/console/tokens",
         "keys": "/console/keys", "audit": "/console/audit"}


def test_every_page_screenshot_and_accessibility(page: Any, live: LiveServer) -> None:
    issue_for(live, "https://service-a.example/")  # a token to list
    sign_in(page, live)
    for name, path in PAGES.items():
        response = page.goto(f"{live.base_url}{path}")
        assert response.status == 200, path
        check_page(page.content(), path)
        shot(page, name)
    page.goto(f"{live.base_url}/console/tokens")
    page.locator("table.list a").first.click()
    check_page(page.content(), "token")
    shot(page, "token")
