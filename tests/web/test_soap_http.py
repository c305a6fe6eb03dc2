"""The SOAP routes' HTTP side (sts.web.soap_http): inline on the event loop, heavy requests in a thread, group
commit, and what the client gets when the rows cannot be recorded. Real HTTP on loopback."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from live import running
from trust_client import post, rst_envelope

from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.offload import heavy, note_commit, on_loop
from sts.runtime import Runtime
from sts.service.throttle import run_throttled
from sts.web.soap_http import runs_inline


@pytest.fixture
def home(tmp_path: Path) -> Path:
    init_home(tmp_path / "home")
    return tmp_path / "home"


def _issue(url: str, *, digest: bool = True, password: str = DEMO_PASSWORD):  # type: ignore[no-untyped-def]
    return post(url, rst_envelope(user=DEMO_USER, password=password, applies_to=DEMO_RP_ENDPOINT, digest=digest))


def _recorded(runtime: Runtime) -> int:
    return len(runtime.stores.tokens.search(subject=DEMO_USER, limit=10_000))


def test_concurrent_issues_are_all_recorded_before_their_answers(home: Path) -> None:
    with running(home) as live:
        runtime = live.runtime
        assert isinstance(runtime, Runtime) and runtime.group_commit is not None
        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda _: _issue(live.sts_url), range(48)))
        assert [r.status for r in replies] == [200] * 48
        assert _recorded(runtime) == 48  # every answered token is in the database
        committer = runtime.group_commit
        assert committer.requests == 48 and 1 <= committer.commits <= 48
        audited = runtime.audit.search(event="issue", actor=DEMO_USER, limit=1000)
        assert len(audited) == 48


def test_requests_run_together_and_each_gets_its_own_valid_token(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the loop's parks always on (sts.offload: the parse, the signature and the encryption of the requests
    ready together run back to back), every answer is its own request's token, signed and encrypted correctly."""
    from sts import offload
    from sts.config import load_settings
    from sts.rp.verifier import TokenVerifier
    from sts.tokens.crypto.keys import load_certificate, load_private_key

    monkeypatch.setattr(offload, "COMPANY", 0.0)
    sizes: list[tuple[str, ...]] = []
    real_run = offload._Batch.run

    def run(batch: offload._Batch) -> None:
        sizes.append(tuple(call.kind for call in batch.calls))
        real_run(batch)

    monkeypatch.setattr(offload._Batch, "run", run)
    verifier = TokenVerifier([load_certificate(load_settings(home).signing_cert_path.read_bytes())],
                             rp_private_key=load_private_key((home / "demo" / "rp.key").read_bytes()),  # type: ignore[arg-type]
                             audience=DEMO_RP_ENDPOINT)
    with running(home) as live, ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: _issue(live.sts_url), range(48)))
    assert [r.status for r in replies] == [200] * 48
    tokens = [verifier.verify(reply.token()) for reply in replies]
    assert {token.subject for token in tokens} == {DEMO_USER}
    assert len({token.token_id for token in tokens}) == 48
    assert {kind for batch in sizes for kind in batch} == {"parse", "sign", "encrypt"}
    assert max(len(batch) for batch in sizes) > 1  # requests did run together


def test_password_text_leaves_the_loop_for_scrypt_and_a_cached_pair_stays_on_it(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sts.store.users as users_module

    calls: list[bool] = []  # on the event loop when the store asked for scrypt?
    real_heavy = users_module.heavy

    def recording_heavy() -> None:
        calls.append(on_loop())
        real_heavy()

    monkeypatch.setattr(users_module, "heavy", recording_heavy)
    with running(home) as live:
        reply = _issue(live.sts_url, digest=False)
        assert reply.status == 200, reply.fault_reason
        reply.token()
        # First on the loop (MoveToThread), then the same request again in a worker thread, where scrypt runs.
        assert calls == [True, False]
        reply = _issue(live.sts_url, digest=False)  # verified a moment ago: a cache hit, no scrypt, no move
        assert reply.status == 200 and calls == [True, False]
        wrong = _issue(live.sts_url, digest=False, password="wrong")
        assert wrong.fault_code[1] == "FailedAuthentication" and calls[2:] == [True, False]


def test_when_the_rows_cannot_be_committed_the_client_gets_request_failed_and_no_token(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    import sts.store.group_commit as group_commit

    def refuse(engine, conn, pending):  # type: ignore[no-untyped-def]
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    with running(home) as live:
        runtime = live.runtime
        assert isinstance(runtime, Runtime)
        monkeypatch.setattr(group_commit, "commit_together", refuse)
        reply = _issue(live.sts_url)
        monkeypatch.undo()
        assert reply.status == 500 and reply.fault_code[1] == "RequestFailed"
        assert reply.find(".//{*}RequestedSecurityToken") is None
        assert _recorded(runtime) == 0
        assert _issue(live.sts_url).status == 200 and _recorded(runtime) == 1
        metrics = httpx.get(f"{live.base_url}/metrics").text
    assert 'sts_faults_total{code="wst:RequestFailed"} 1\n' in metrics, metrics
    assert 'sts_tokens_issued_total{relying_party="https://service-a.example/"} 1\n' in metrics  # not the failed one


def test_runs_inline() -> None:
    assert runs_inline(b'<?xml version="1.0"?><s:Envelope/>')
    assert runs_inline(b"  \n<Envelope/>")
    assert not runs_inline(b"<Envelope><wst:ActAs/></Envelope>")
    assert not runs_inline(b"<Envelope><wsp:OnBehalfOf/></Envelope>")
    assert not runs_inline(b"<Envelope><wst:RequestSecurityTokenCollection/></Envelope>")
    assert not runs_inline("<Envelope/>".encode("utf-16"))
    assert not runs_inline(b"\xef\xbb\xbf<Envelope/>")  # a BOM: the thread, where the parser decides
    assert not runs_inline(b"")


def test_a_heavy_step_before_any_commit_reruns_the_request_in_a_thread() -> None:
    runs: list[tuple[bool, int]] = []

    def request() -> str:
        runs.append((on_loop(), threading.get_ident()))
        heavy()
        return "done"

    async def main() -> str:
        return await run_throttled(request, inline=True)

    assert asyncio.run(main()) == "done"
    assert [on for on, _ in runs] == [True, False] and runs[0][1] != runs[1][1]


def test_after_a_commit_a_heavy_step_stays_where_it_is() -> None:
    runs: list[bool] = []

    def request() -> str:
        runs.append(on_loop())
        note_commit()  # e.g. the nonce is recorded: running again would be a replay of itself
        heavy()
        return "done"

    async def main() -> str:
        return await run_throttled(request, inline=True)

    assert asyncio.run(main()) == "done" and runs == [True]
