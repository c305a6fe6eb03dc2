"""key_source = "database": two nodes (two homes, two runtimes) on one database file share the signing keys, the
rollover schedule and the secrets key, sealed under the key-encryption key from the environment."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from lxml import etree
from sqlalchemy import select, update
from starlette.testclient import TestClient

from live import init_home_with, running
from sts import ns
from sts.admin.base import Actor, AdminContext
from sts.admin.keys import Override, Rollover, schedule_rollover
from sts.cli.main import main
from sts.config import Settings, load_settings
from sts.home import DEMO_PASSWORD, init_home
from sts.model import RelyingParty
from sts.rp.verifier import TokenVerifier
from sts.runtime import Runtime, build_runtime
from sts.store.schema import key_material
from sts.tokens.crypto.keys import load_certificate
from sts.tokens.key_store import (REFRESH_SECONDS, KeySourceError, check_key_source, secret_box_for,
                                   secrets_key)
from sts.tokens.keyring import LEGACY_ID
from sts.web.asgi import create_app
from sts.web.console.auth import COOKIE, SessionCodec
from sts.xmltime import utcnow
from trust_client import post, rst_envelope

PLAIN = "https://plain.example/app"
METADATA = "/FederationMetadata/2007-06/FederationMetadata.xml"
KEK_ENV = "STS_KEY_ENCRYPTION_KEY"


def _kek() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


def _use(home: Path, **values: str) -> None:
    """Set top-level settings in the home's sts.toml (as an operator edits it)."""
    config = home / "sts.toml"
    lines = config.read_text().splitlines()
    for name, value in values.items():
        lines = [f'{name} = "{value}"' if line.startswith(f"{name} =") else line for line in lines]
    config.write_text("\n".join(lines) + "\n")


@pytest.fixture
def farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """Node A's home (its keys imported into its database) and node B's home on the same database file."""
    monkeypatch.setenv(KEK_ENV, _kek())
    node_a = init_home_with(tmp_path / "a", RelyingParty(endpoint=PLAIN, encrypt=False))
    url = f"sqlite:///{tmp_path / 'a' / 'sts.db'}"
    result = CliRunner().invoke(main, ["--home", str(node_a), "keys", "import-to-database"])
    assert result.exit_code == 0, result.output
    assert f"imported signing key {LEGACY_ID}" in result.output and "imported the secrets key" in result.output
    node_b = tmp_path / "b"
    init_home(node_b, demo=False)
    for home in (node_a, node_b):
        _use(home, key_source="database", database_url=url)
    yield node_a, node_b


def _runtime(home: Path) -> Runtime:
    return build_runtime(load_settings(home))


def test_both_nodes_sign_with_the_imported_key_not_their_own_files(farm: tuple[Path, Path]) -> None:
    node_a, node_b = farm
    a_file = load_certificate((node_a / "keys" / "sts-signing.crt").read_bytes())
    b_file = load_certificate((node_b / "keys" / "sts-signing.crt").read_bytes())
    assert a_file != b_file  # two `sts init`: two different keys in the files
    a, b = _runtime(node_a), _runtime(node_b)
    try:
        now = utcnow()
        assert a.keyring is not None and b.keyring is not None
        assert a.signing_key.certificate == b.signing_key.certificate == a_file
        assert a.keyring.published(now) == b.keyring.published(now) == [a_file]
        assert a.keyring.source == "database"
    finally:
        a.stores.close()
        b.stores.close()


def test_a_second_import_keeps_what_is_there(farm: tuple[Path, Path]) -> None:
    node_a, _ = farm
    again = CliRunner().invoke(main, ["--home", str(node_a), "keys", "import-to-database"])
    assert again.exit_code == 0, again.output
    assert f"signing key {LEGACY_ID} is already in the database" in again.output
    assert "the secrets key is already in the database" in again.output


def test_a_home_with_other_keys_cannot_replace_the_shared_secrets(farm: tuple[Path, Path]) -> None:
    _, node_b = farm
    _use(node_b, key_source="files")
    result = CliRunner().invoke(main, ["--home", str(node_b), "keys", "import-to-database"])
    assert result.exit_code == 1
    assert "different signing key" in result.output or "different secrets key" in result.output
    assert "Traceback" not in result.output


def test_rollover_on_node_a_is_published_by_node_b_at_once_and_signs_on_both_from_its_switch(
        farm: tuple[Path, Path]) -> None:
    node_a, node_b = farm
    with running(node_a) as live_a, running(node_b) as live_b:
        old = load_certificate((node_a / "keys" / "sts-signing.crt").read_bytes())
        assert _metadata_certs(live_b.base_url) == [old]
        at = utcnow() + timedelta(seconds=8)  # room for the command and the "before" Issues on a loaded machine
        done = CliRunner().invoke(main, ["--home", str(node_a), "keys", "rollover", "--at", at.isoformat(),
                                         "--allow-short-lead", "--overlap-days", "1"])
        assert done.exit_code == 0, done.output
        # The switch time that was stored (later than asked if the command itself ran past it).
        at = datetime.fromisoformat(done.output.strip().rsplit(" from ", 1)[1])
        # Published by the other node at once (before it signs anywhere); both still sign with the old key.
        published = _metadata_certs(live_b.base_url)
        assert published[0] == old and len(published) == 2
        new = published[1]
        assert _metadata_certs(live_a.base_url) == published
        for live in (live_a, live_b):
            TokenVerifier([old], audience=PLAIN).verify(_issue(live.sts_url))
        time.sleep(max(0.0, (at - utcnow()).total_seconds()) + REFRESH_SECONDS + 0.2)
        for live in (live_a, live_b):
            assert TokenVerifier([new], audience=PLAIN).verify(_issue(live.sts_url)).subject == "alice"
        assert _metadata_certs(live_b.base_url) == [new, old]


def test_a_rollover_through_the_admin_core_is_stored_sealed_with_its_schedule(farm: tuple[Path, Path]) -> None:
    node_a, node_b = farm
    a, b = _runtime(node_a), _runtime(node_b)
    try:
        assert a.keyring is not None and b.keyring is not None
        now = utcnow()
        at = now + timedelta(hours=2)
        ctx = AdminContext.for_stores(a.stores, a.settings)
        done = schedule_rollover(ctx, Actor.cli(), Rollover(at=at, overlap=timedelta(days=1),
                                                            override=Override.SHORT_LEAD), a.keyring)
        states = {e.id: (e.state, e.retire_after) for e in b.keyring.entries(now)}
        assert states == {LEGACY_ID: ("active", at + timedelta(days=1)), done.key_id: ("next", None)}
        assert b.keyring.current(now).certificate != b.keyring.current(at).certificate
        with a.stores.engine.connect() as conn:
            row = conn.execute(select(key_material).where(key_material.c.id == done.key_id)).one()
        assert row.sealed is not None and b"PRIVATE KEY" not in row.sealed and row.hsm_label is None
    finally:
        a.stores.close()
        b.stores.close()


def test_a_wrong_or_missing_kek_is_a_clear_error(farm: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, node_b = farm
    monkeypatch.setenv(KEK_ENV, _kek())
    with pytest.raises(KeySourceError, match="sealed under key-encryption key .* give this node the same KEK"):
        _runtime(node_b)
    monkeypatch.delenv(KEK_ENV)
    with pytest.raises(KeySourceError, match=f"set the environment variable {KEK_ENV}"):
        _runtime(node_b)
    monkeypatch.setenv(KEK_ENV, "c2hvcnQ=")
    with pytest.raises(KeySourceError, match="is 5 bytes, not 32"):
        _runtime(node_b)
    listing = CliRunner().invoke(main, ["--home", str(node_b), "keys", "list"])
    assert listing.exit_code == 1 and "is 5 bytes, not 32" in listing.output and "Traceback" not in listing.output


def test_the_startup_check_loads_what_a_node_needs(farm: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, node_b = farm
    check_key_source(load_settings(node_b))  # the keys and the secrets key open: no error
    monkeypatch.setenv(KEK_ENV, _kek())
    with pytest.raises(KeySourceError, match="give this node the same KEK"):
        check_key_source(load_settings(node_b))


def test_a_sealed_key_moved_to_another_row_does_not_open(farm: tuple[Path, Path]) -> None:
    node_a, node_b = farm
    a = _runtime(node_a)
    try:
        assert a.keyring is not None
        new_id = a.keyring.generate_and_schedule(utcnow() + timedelta(days=2), timedelta(days=1))
        with a.stores.engine.begin() as conn:
            sealed = conn.execute(select(key_material.c.sealed).where(key_material.c.id == LEGACY_ID)).scalar_one()
            conn.execute(update(key_material).where(key_material.c.id == new_id).values(sealed=sealed))
    finally:
        a.stores.close()
    with pytest.raises(KeySourceError, match=f"key '{new_id}' .* altered or moved"):
        _runtime(node_b)


def test_an_empty_database_says_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEK_ENV, _kek())
    home = init_home_with(tmp_path / "n")
    _use(home, key_source="database")
    with pytest.raises(KeySourceError, match="run `sts keys import-to-database`"):
        _runtime(home)


def test_the_secrets_key_is_shared_passwords_at_rest_and_console_sessions(farm: tuple[Path, Path]) -> None:
    node_a, node_b = farm
    settings_a, settings_b = load_settings(node_a), load_settings(node_b)
    assert secrets_key(settings_a) == secrets_key(settings_b) == (node_a / "keys" / "secrets.key").read_bytes()
    sealed = secret_box_for(settings_a).seal("digest secret", b"user:alice")
    assert secret_box_for(settings_b).open(sealed, b"user:alice") == "digest secret"
    own_files: Settings = replace(settings_b, key_source="files")
    with pytest.raises(ValueError, match="cannot be opened"):
        secret_box_for(own_files).open(sealed, b"user:alice")
    cookie, _ = SessionCodec(secrets_key(settings_a)).issue("admin")
    assert SessionCodec(secrets_key(settings_b)).read(cookie) is not None
    assert SessionCodec(secrets_key(own_files)).read(cookie) is None


def test_a_console_session_made_on_node_a_is_accepted_by_node_b(farm: tuple[Path, Path]) -> None:
    node_a, node_b = farm
    a, b = _runtime(node_a), _runtime(node_b)
    alone = build_runtime(replace(load_settings(node_b), key_source="files"))  # B with its own secrets key
    try:
        a.stores.users.add(ADMIN, ADMIN_PASSWORD, admin=True)
        on_a = TestClient(create_app(a, loopback_bind=True), follow_redirects=False)
        csrf = sign_in(on_a)
        cookie = on_a.cookies[COOKIE]
        on_b = TestClient(create_app(b, loopback_bind=True), follow_redirects=False, cookies={COOKIE: cookie})
        page = on_b.get("/console/")
        assert page.status_code == 200 and csrf_of(page.text) == csrf  # the same session, CSRF token and all
        off = on_b.post("/console/logout", data={"csrf": csrf})
        assert off.status_code == 303 and off.headers["location"].endswith("/console/login")
        elsewhere = TestClient(create_app(alone, loopback_bind=True), follow_redirects=False,
                               cookies={COOKIE: cookie})
        refused = elsewhere.get("/console/")
        assert refused.status_code == 303 and "/console/login" in refused.headers["location"]
    finally:
        for runtime in (a, b, alone):
            runtime.stores.close()


def test_check_config_reports_keys_it_cannot_load(farm: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, node_b = farm
    fine = CliRunner().invoke(main, ["--home", str(node_b), "check-config"])
    assert "cannot be read" not in fine.output, fine.output
    monkeypatch.delenv(KEK_ENV)
    result = CliRunner().invoke(main, ["--home", str(node_b), "check-config"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"STS signing keys: cannot be read (the key-encryption key is missing: set the environment variable " \
           f"{KEK_ENV}" in result.output


ADMIN, ADMIN_PASSWORD = "root", "console-secret"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def sign_in(client: TestClient) -> str:
    """Sign in as ADMIN; the session's CSRF token."""
    page = client.get("/console/login")
    response = client.post("/console/login", data={"csrf": csrf_of(page.text), "name": ADMIN,
                                                   "password": ADMIN_PASSWORD})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/console/").text)


def _metadata_certs(base_url: str) -> list[x509.Certificate]:
    root = etree.fromstring(httpx.get(base_url + METADATA, timeout=10).content)
    role = root.find(f"{{{ns.MD}}}RoleDescriptor")
    assert role is not None
    return [x509.load_der_x509_certificate(base64.b64decode(d.findtext(f".//{{{ns.DS}}}X509Certificate") or ""))
            for d in role.findall(f"{{{ns.MD}}}KeyDescriptor") if d.get("use") == "signing"]


def _issue(sts_url: str) -> etree._Element:
    reply = post(sts_url, rst_envelope(user="alice", password=DEMO_PASSWORD, applies_to=PLAIN))
    assert reply.status == 200, reply
    return reply.token()
