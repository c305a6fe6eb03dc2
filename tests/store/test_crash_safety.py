"""SIGKILL `sts serve --workers 2` (its whole process group) in the middle of a 64-client soak, restart it on the same
home, and check that nothing the clients saw acknowledged is lost, no token ID was issued twice, the database is
intact, and the server answers again promptly.

An operation whose answer was cut by the kill is in doubt (it may or may not have committed) and is not checked;
every acknowledged one must be in effect, since the store commits before the answer is sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx

from bench.soak import (DEMO_RP_ENDPOINT, SOAP, VERSION, Journal, envelope, kill_group, new_home, run_clients,
                        start_server, stop_server, token_id_of, wait_until_answering)
from sts.config import load_settings
from sts.runtime import open_stores
from sts.web.loopback import free_port
from sts.protocol.xmlsafe import parse

CLIENTS = 64
KILL_AT_CANCELS = 16  # SIGKILL once this many Cancels (so as many whole cycles) were acknowledged
RESTART_BOUND = 30.0  # seconds; generous, the machine is shared (the figure is printed)


async def _soak_then_kill(url: str, process: subprocess.Popen[bytes]) -> Journal:
    """Run the clients; SIGKILL the server's process group mid-load, while requests of every kind are in flight."""
    stop = asyncio.Event()
    journal = Journal()

    async def kill() -> None:
        deadline = time.monotonic() + 120
        while len(journal.cancelled) < KILL_AT_CANCELS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # the master and both workers; no shutdown code runs
        stop.set()  # each client ends after the operation the kill interrupted

    killer = asyncio.create_task(kill())
    await run_clients(url, CLIENTS, seconds=180, stop=stop, journal=journal)
    await killer
    return journal


def _database_is_intact(path: Path) -> None:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("SELECT token_id FROM tokens GROUP BY token_id HAVING count(*) > 1").fetchall() == []


def _first_token(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> str:
    """Issue until it works (the server is starting); the token ID."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the restarted server exited"
        try:
            response = httpx.post(url, content=envelope("Issue", applies_to=DEMO_RP_ENDPOINT),
                                  headers={"content-type": SOAP.content_type}, timeout=10)
        except httpx.TransportError:
            time.sleep(0.02)
            continue
        assert response.status_code == 200, response.text[:500]
        return token_id_of(parse(response.content))
    raise AssertionError(f"no token within {timeout} s of the restart")


async def _statuses(url: str, token_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Validate every token by reference on the restarted server: {token ID: (status, reason)}."""
    wst = VERSION.value

    async def one(client: httpx.AsyncClient, token_id: str) -> tuple[str, tuple[str, str]]:
        async with limit:
            response = await client.post(url, content=envelope(
                "Validate", applies_to=None, targets={"ValidateTarget": token_id},
                token_type_uri=VERSION.uri("RSTR/Status")))
        assert response.status_code == 200, response.text[:500]
        root = parse(response.content)
        return token_id, (str(root.findtext(f".//{{{wst}}}Status/{{{wst}}}Code")).rsplit("/", 1)[1],
                          str(root.findtext(f".//{{{wst}}}Status/{{{wst}}}Reason")))

    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(headers={"content-type": SOAP.content_type}, timeout=60) as client:
        return dict(await asyncio.gather(*(one(client, token_id) for token_id in token_ids)))


def test_acknowledged_operations_survive_sigkill_during_a_soak(tmp_path: Path) -> None:
    home = new_home(tmp_path / "home")
    settings = load_settings(home)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    url = f"{base_url}/services/sts"
    process = start_server(home, port, workers=2)
    try:
        wait_until_answering(base_url, process)
        journal = asyncio.run(_soak_then_kill(url, process))
    finally:
        kill_group(process)

    # The kill cut requests in flight (the clients saw transport errors, never a fault), after real work.
    failures = {code for _, code in journal.errors}
    assert journal.error_count > 0 and all(issubclass(getattr(httpx, code), httpx.TransportError)
                                           for code in failures), journal.samples
    assert len(journal.cancelled) >= KILL_AT_CANCELS, "the soak did not get far enough to test anything"
    assert settings.sqlite_path is not None
    _database_is_intact(settings.sqlite_path)  # as the kill left it (SQLite recovers the WAL on opening)

    started = time.monotonic()
    process = start_server(home, port, workers=2)
    try:
        first = _first_token(url, process)
        restart_seconds = time.monotonic() - started
        print(f"\nrestart to first token after SIGKILL: {restart_seconds:.2f} s "
              f"({len(journal.issued)} issued, {len(journal.renewed)} renewed, {len(journal.cancelled)} cancelled "
              f"acknowledged before the kill, {journal.error_count} requests cut; {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f})")
        assert restart_seconds < RESTART_BOUND

        # No token ID twice: among the acknowledged answers, and after the restart against those before it.
        before = journal.token_ids()
        assert len(before) == len(set(before))
        assert first not in set(before)

        stores = open_stores(settings)
        try:
            records = {token_id: stores.tokens.get(token_id) for token_id in [*before, first]}
        finally:
            stores.close()
        assert [token_id for token_id, record in records.items() if record is None] == []  # every Issue recorded
        renewed = {old for old, _ in journal.renewed}
        cancelled = set(journal.cancelled)
        for old, new in journal.renewed:  # every acknowledged Renew: the old token superseded, the new one renewed
            assert records[old].status == "renewed", old  # type: ignore[union-attr]
            assert records[new].renewal_count == 1, new  # type: ignore[union-attr]
        for token_id in cancelled:
            assert records[token_id].status == "cancelled", token_id  # type: ignore[union-attr]

        # And the restarted server says so.
        statuses = asyncio.run(_statuses(url, sorted(renewed | cancelled)))
        assert {statuses[token_id] for token_id in cancelled} == {("invalid", "The token was cancelled")}
        assert {statuses[token_id] for token_id in renewed} == {("invalid", "The token was superseded by its renewal")}
        assert stop_server(process) == 0
    finally:
        if process.poll() is None:
            kill_group(process)
    _database_is_intact(settings.sqlite_path)
