"""The console's layout in a real browser (Debian's Chromium driven by Playwright) against a live STS.

What an administrator sees rather than what the server answers: the navigation marks the page shown, no URL is
split inside a word, a 375 px wide screen never scrolls sideways, the activity chart has axes and shows failures
beside the tokens issued, and the server's bare URL leads to the console. Screenshots go to
tests/console/artifacts/ (``layout-*.png``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import ARTIFACTS, console_server, requires_chromium, sign_in  # type: ignore[import-not-found]
from console_support import ADMIN, ADMIN_PASSWORD  # type: ignore[import-not-found]
from live import LiveServer
from test_browser import PAGES, issue_for  # type: ignore[import-not-found]
from trust_client import post, rst_envelope

from sts.home import DEMO_RP_ENDPOINT, DEMO_USER
from sts.model import RelyingParty
from sts.store.database import Database

pytestmark = requires_chromium

# A long endpoint, so that the narrow screen has a URL wider than itself to place.
LONG_RP = "https://a-relying-party-with-a-long-name.example.org/federation/passive/endpoint/for/tokens?tenant=x"
NAV = {"dashboard": "Dashboard", "rps": "Relying parties", "rp-new": "Relying parties",
       "rp-edit": "Relying parties", "users": "Users", "user": "Users", "explain": "Explain", "tokens": "Tokens",
       "keys": "Keys", "audit": "Audit log"}
FAILED_SIGN_INS = 2

# Where each line of an element's text wraps: the characters either side of every break (JS, run in the page).
LINE_BREAKS = """(element) => {
  const breaks = [];
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  let top = null, before = "", node;
  while ((node = walker.nextNode())) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getBoundingClientRect();
      if (rect.width === 0) { continue; }
      if (top !== null && rect.top > top + 2) { breaks.push(before + node.data[i]); }
      top = rect.top;
      before = node.data[i];
    }
  }
  return breaks;
}"""

# The same for every code value in the page but fingerprints, in one round trip: [[text, breaks], ...].
EVERY_CODE_BREAKS = f"""() => {{
  const lineBreaks = {LINE_BREAKS};
  return Array.from(document.querySelectorAll("main code:not(.fp)"), (e) => [e.textContent, lineBreaks(e)]);
}}"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live STS with an administrator, a long relying-party endpoint, one token issued and two failed sign-ins."""
    home = tmp_path_factory.mktemp("layout-home")

    def add_long_rp(stores: Database) -> None:
        stores.relying_parties.add(RelyingParty(endpoint=LONG_RP, cert_pem=(home / "demo" / "rp.crt").read_bytes()))

    with console_server(home, add_long_rp) as server_info:
        assert issue_for(server_info, DEMO_RP_ENDPOINT).status == 200
        for _ in range(FAILED_SIGN_INS):
            refused = post(server_info.sts_url, rst_envelope(user=DEMO_USER, password="not the password",
                                                             applies_to=DEMO_RP_ENDPOINT))
            assert refused.fault_code is not None and refused.fault_code[1] == "FailedAuthentication"
        yield server_info


def signed_in(browser: Any, live: LiveServer, width: int) -> Any:
    """A new page, ``width`` CSS pixels wide, signed in as the administrator."""
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    sign_in(page, live)
    return page


@pytest.fixture(scope="module")
def wide(browser: Any, live: LiveServer) -> Iterator[Any]:
    page = signed_in(browser, live, 1280)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def narrow(browser: Any, live: LiveServer) -> Iterator[Any]:
    page = signed_in(browser, live, 375)
    yield page
    page.context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"layout-{name}.png"), full_page=True)


def every_page(live: LiveServer, page: Any) -> Iterator[tuple[str, str]]:
    """(name, path) of every console page, a token's detail page and a confirmation included."""
    yield from PAGES.items()
    yield "rp-remove", f"/console/rps/remove?endpoint={LONG_RP.replace(':', '%3A').replace('/', '%2F')}"
    page.goto(f"{live.base_url}/console/tokens")
    yield "token", page.locator("table.list a").first.get_attribute("href")


def test_the_navigation_marks_the_page_shown(wide: Any, live: LiveServer) -> None:
    for name, path in PAGES.items():
        wide.goto(f"{live.base_url}{path}")
        current = wide.locator("nav a[aria-current=page]")
        assert current.count() == 1, path
        assert current.inner_text() == NAV[name], path
        other = wide.locator("nav a:not([aria-current])").first
        style = "e => [getComputedStyle(e).fontWeight, getComputedStyle(e).backgroundColor]"
        assert current.evaluate(style) != other.evaluate(style), f"{path}: the current item looks like the others"
    wide.goto(f"{live.base_url}/console/tokens")
    wide.locator("table.list a").first.click()
    assert wide.locator("nav a[aria-current=page]").inner_text() == "Tokens"


def test_a_narrow_screen_never_scrolls_sideways(narrow: Any, live: LiveServer) -> None:
    for name, path in every_page(live, narrow):
        narrow.goto(f"{live.base_url}{path}")
        shot(narrow, f"narrow-{name}")
        page_width, view_width = narrow.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert page_width <= view_width, f"{path}: the page is {page_width} px wide on a {view_width} px screen"
        nav = narrow.locator("header.top nav").bounding_box()
        assert nav["x"] >= 0 and nav["x"] + nav["width"] <= view_width, f"{path}: the navigation leaves the screen"
    sign_in_page = narrow.context.browser.new_context(viewport={"width": 375, "height": 800}).new_page()
    try:
        sign_in_page.goto(f"{live.base_url}/console/login")
        shot(sign_in_page, "narrow-login")
        assert sign_in_page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    finally:
        sign_in_page.context.close()
    narrow.goto(f"{live.base_url}/console/rps")
    table = narrow.locator("table.list")
    # The list is wider than the screen (the long endpoint) and scrolls inside its own box.
    assert table.evaluate("t => t.scrollWidth > t.clientWidth && getComputedStyle(t).overflowX === 'auto'")


def test_urls_wrap_only_after_a_separator(narrow: Any, wide: Any, live: LiveServer) -> None:
    narrow.goto(f"{live.base_url}/console/")
    endpoints = narrow.locator("code.url")
    assert endpoints.count() == 4
    breaks = [pair for i in range(endpoints.count()) for pair in endpoints.nth(i).evaluate(LINE_BREAKS)]
    assert breaks, "at 375 px the federation-metadata URL should need more than one line"
    assert all(pair[0] in "/?." for pair in breaks), breaks
    # Copying gives the URL unchanged (the <wbr> break points are not text).
    assert narrow.locator("#ep-4").inner_text().replace("\n", "").endswith(
        "/FederationMetadata/2007-06/FederationMetadata.xml")
    # Anywhere else a code value keeps its words whole, on every page and width.
    for page in (narrow, wide):
        for _, path in every_page(live, page):
            page.goto(f"{live.base_url}{path}")
            for text, breaks in page.evaluate(EVERY_CODE_BREAKS):
                mid_word = [pair for pair in breaks if pair[0].isalnum() and pair[1].isalnum()]
                assert not mid_word, f"{path}: {text!r} breaks inside a word: {mid_word}"


def test_the_activity_chart_has_axes_and_shows_failures(wide: Any, live: LiveServer) -> None:
    wide.goto(f"{live.base_url}/console/")
    chart = wide.locator("svg.chart")
    shot(wide, "dashboard")
    counts = chart.locator("text.count").all_text_contents()
    assert counts[0] == "0" and len(counts) >= 2, counts
    times = chart.locator("text.time").all_text_contents()
    assert len(times) == 5 and times[-1] == "now" and all(t.endswith(":00") for t in times[:-1]), times
    failed = [int(t.split()[0]) for t in chart.locator("g.failed rect title").all_text_contents()]
    issued = [int(t.split()[0]) for t in chart.locator("g.issued rect title").all_text_contents()]
    assert len(failed) == len(issued) == 24
    assert sum(failed) >= FAILED_SIGN_INS and sum(issued) >= 1
    assert chart.locator("g.failed rect[height]").evaluate_all(
        "rects => rects.some(r => parseFloat(r.getAttribute('height')) > 0)")
    legend = wide.locator("figure.activity .legend").inner_text()
    assert "issued (" in legend and f"failed: faults and failed sign-ins ({sum(failed)})" in legend
    # Side by side: the failure bar of the current hour stands right of its issued bar and does not overlap it.
    last_issued, last_failed = (chart.locator(f"g.{what} rect").last.bounding_box() for what in ("issued", "failed"))
    assert last_failed["x"] >= last_issued["x"] + last_issued["width"]


def test_the_bare_url_leads_to_the_console(browser: Any, live: LiveServer) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{live.base_url}/")
        assert page.url.startswith(f"{live.base_url}/console/login")
        page.fill("#f-name", ADMIN)
        page.fill("#f-password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live.base_url}/console/")
        assert "FederationMetadata.xml" in page.locator("table.endpoints").inner_text()
    finally:
        context.close()
