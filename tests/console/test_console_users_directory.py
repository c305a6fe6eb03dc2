"""The console's users page with a directory configured: local users managed as before, directory users found by
search and shown read-only with the claims the mapping gives them (a real slapd, tests/servers/slapd.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from servers.slapd import Slapd
from sts.config import load_settings
from sts.home import CLAIMS, DEMO_USER
from sts.runtime import Runtime, build_runtime
from sts.store.ldap_directory import ROLE_CLAIM

GIVEN = f"{CLAIMS}/givenname"


@pytest.fixture
def runtime(console_home: Path, slapd: Slapd) -> Iterator[Runtime]:
    """The console's runtime (tests/console/conftest.py) with the test directory as ``user_store``."""
    built = build_runtime(replace(load_settings(console_home), **slapd.settings(ldap_start_tls=True)))
    yield built
    assert built.directory is not None
    built.directory.close()
    built.stores.close()


def test_directory_users_are_found_by_search_and_shown_read_only(client: TestClient, admin: str) -> None:
    page = client.get("/console/users", params={"directory": "car"})
    assert page.status_code == 200
    section = page.text[page.text.index('id="directory-users"'):page.text.index("<h2>Add a user</h2>")]
    assert "<td>carol</td>" in section
    assert f'<code title="{GIVEN}">givenname</code> = Carol' in section
    assert f'<code title="{ROLE_CLAIM}">role</code> = sts-admins, sts-users' in section
    # Read-only: no link to an edit page, no form that changes anything.
    assert "/users/carol" not in page.text and 'method="post"' not in section
    # The local users are still listed and managed as before.
    assert f'/console/users/{DEMO_USER}">{DEMO_USER}</a>' in page.text


def test_the_directory_is_never_listed_whole(client: TestClient, admin: str) -> None:
    short = client.get("/console/users", params={"directory": "*"})
    assert short.status_code == 200 and 'id="directory-error"' in short.text and "at least 2" in short.text
    injected = client.get("/console/users", params={"directory": "*)(uid=*"})
    assert "No directory user's login name contains *)(uid=*." in injected.text
    assert "<td>carol</td>" not in injected.text


def test_a_search_that_finds_more_than_a_page_says_so(client: TestClient, admin: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sts.store.ldap_directory as ldap_directory

    monkeypatch.setattr(ldap_directory, "SEARCH_LIMIT", 1)
    page = client.get("/console/users", params={"directory": "fran"})
    assert "<td>frances</td>" in page.text and "<td>frank</td>" not in page.text
    assert "More users match" in page.text


def test_a_directory_that_does_not_answer_is_said_on_the_page(client: TestClient, admin: str, slapd: Slapd) -> None:
    with slapd.paused():
        page = client.get("/console/users", params={"directory": "car"})
    assert page.status_code == 200 and "the directory did not answer" in page.text
