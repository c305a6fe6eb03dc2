"""Requests together on the event loop (``sts.offload``): parked calls run back to back, kind by kind, each in its
own request's context, with its own result or exception; a request alone, a thread or a plain call is untouched."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sts import offload
from sts.offload import MoveToThread, heavy, note_company, on_event_loop, run_inline, together

_request: contextvars.ContextVar[str] = contextvars.ContextVar("test_request", default="none")


@pytest.fixture
def company() -> Iterator[Callable[[float], None]]:
    """Set the loop's company as if its group commits had held that many requests (call inside the loop)."""

    def set_to(requests: float) -> None:
        batch = offload._Batch.for_loop(asyncio.get_running_loop())
        batch.company = requests

    yield set_to


def _run(main: Callable[[], Any]) -> Any:
    return asyncio.run(main())


def test_parked_calls_run_back_to_back_kind_by_kind_with_their_own_results(
        company: Callable[[float], None]) -> None:
    log: list[tuple[str, str]] = []

    def step(kind: str, tag: str) -> str:
        log.append((kind, tag))
        return f"{kind}:{tag}"

    def pipeline(tag: str) -> list[str]:
        return [together("parse", step, "parse", tag), together("sign", step, "sign", tag)]

    async def main() -> list[list[str]]:
        company(8)
        return await asyncio.gather(*(run_inline(lambda tag=tag: pipeline(tag)) for tag in "abcd"))

    results = _run(main)
    assert results == [[f"parse:{t}", f"sign:{t}"] for t in "abcd"]
    # Every request's parse ran before any signature: the four reached each step before it ran, in arrival order.
    assert log == [("parse", t) for t in "abcd"] + [("sign", t) for t in "abcd"]


def test_each_call_runs_in_its_requests_context_and_keeps_what_it_sets(company: Callable[[float], None]) -> None:
    def pipeline(tag: str) -> tuple[str, str, str]:
        _request.set(tag)
        seen = together("k", _request.get)
        changed = together("k", lambda: (_request.set(tag + "!"), _request.get())[1])
        return seen, changed, _request.get()

    async def one(tag: str) -> tuple[tuple[str, str, str], str]:
        _request.set("outer " + tag)
        inner = await run_inline(lambda: pipeline(tag))
        return inner, _request.get()

    async def main() -> list[Any]:
        company(8)
        return await asyncio.gather(*(one(tag) for tag in "xyz"))

    assert _run(main) == [((t, t + "!", t + "!"), "outer " + t) for t in "xyz"]


def test_an_exception_is_raised_where_its_request_parked_and_only_there(company: Callable[[float], None]) -> None:
    def step(tag: str) -> str:
        if tag == "bad":
            raise ValueError("this request's own error")
        return tag

    def pipeline(tag: str) -> str:
        try:
            return together("k", step, tag)
        except ValueError as exc:
            return f"caught: {exc}"

    async def main() -> list[str]:
        company(8)
        return await asyncio.gather(*(run_inline(lambda tag=tag: pipeline(tag)) for tag in ("a", "bad", "c")))

    assert _run(main) == ["a", "caught: this request's own error", "c"]


class _Signal(BaseException):
    """A control-flow signal of the kind MoveToThread and Throttled are: not an Exception."""


@pytest.mark.parametrize("error", [ValueError("an error"), MoveToThread(), _Signal()],
                         ids=["Exception", "MoveToThread", "BaseException"])
def test_whatever_a_parked_call_raises_is_its_own_requests_and_the_others_go_on(
        company: Callable[[float], None], error: BaseException) -> None:
    """Any exception a batched call raises, control-flow signals included, goes to the request that parked it,
    raised where it parked; the batch's other requests get their results (none is left parked)."""
    def step(tag: str) -> str:
        if tag == "bad":
            raise error
        return tag

    async def main() -> list[object]:
        company(8)
        runs = [run_inline(lambda tag=tag: together("k", step, tag)) for tag in ("a", "bad", "c")]
        return await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), timeout=5)

    a, bad, c = _run(main)
    assert (a, c) == ("a", "c") and bad is error


def test_a_request_that_raises_raises_from_run_inline_and_its_greenlet_serves_the_next(
        company: Callable[[float], None]) -> None:
    def broken() -> str:
        together("k", str)
        raise RuntimeError("a bug")

    async def main() -> str:
        company(8)
        with pytest.raises(RuntimeError, match="a bug"):
            await run_inline(broken)
        with pytest.raises(MoveToThread):  # a control-flow signal passes too (run_throttled reruns in a thread)
            with on_event_loop():
                await run_inline(heavy)
        return await run_inline(lambda: together("k", str, "fine"))

    assert _run(main) == "fine"


def test_a_request_cancelled_while_parked_is_cancelled_and_its_call_is_skipped(
        company: Callable[[float], None]) -> None:
    ran: list[str] = []
    unwound: list[str] = []

    def pipeline(tag: str) -> str:
        try:
            return together("k", lambda: (ran.append(tag), tag)[1])
        except BaseException as exc:
            unwound.append(type(exc).__name__)
            raise

    async def main() -> tuple[str, bool]:
        company(8)
        kept = asyncio.ensure_future(run_inline(lambda: pipeline("kept")))
        cancelled = asyncio.ensure_future(run_inline(lambda: pipeline("cancelled")))
        await asyncio.sleep(0)  # both parked
        cancelled.cancel()
        result = await kept
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        return result, cancelled.cancelled()

    assert _run(main) == ("kept", True)
    assert ran == ["kept"] and unwound == ["CancelledError"]


def test_alone_the_request_runs_as_a_plain_call(company: Callable[[float], None]) -> None:
    """While the loop's group commits hold fewer than COMPANY requests, no greenlet and no park: a request alone
    (one client at a time) would pay for the parks and win nothing."""
    threads: list[object] = []

    def pipeline() -> str:
        threads.append(offload.greenlet.getcurrent())
        return together("k", str, "direct")

    async def main() -> str:
        company(offload.COMPANY - 0.5)
        return await run_inline(pipeline)

    assert _run(main) == "direct"
    assert not isinstance(threads[0], offload._Inline)


def test_the_company_follows_the_group_commits() -> None:
    async def main() -> tuple[float, float]:
        for _ in range(64):
            note_company(8)
        busy = offload._Batch.for_loop(asyncio.get_running_loop()).company
        for _ in range(64):
            note_company(1)
        return busy, offload._Batch.for_loop(asyncio.get_running_loop()).company

    busy, alone = _run(main)
    assert busy > offload.COMPANY > alone


def test_outside_the_loop_together_is_a_plain_call() -> None:
    assert together("k", str, "here") == "here"
    found: list[str] = []
    thread = threading.Thread(target=lambda: found.append(together("k", str, "in a thread")))
    thread.start()
    thread.join()
    assert found == ["in a thread"]


def test_greenlets_are_reused_and_bounded(company: Callable[[float], None], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offload, "_MAX_IDLE", 3)

    async def main() -> tuple[int, set[int]]:
        company(8)
        seen: set[int] = set()

        def pipeline() -> None:
            seen.add(id(offload.greenlet.getcurrent()))
            together("k", str)

        await asyncio.gather(*(run_inline(pipeline) for _ in range(6)))
        idle = len(offload._Batch.for_loop(asyncio.get_running_loop()).idle)
        for _ in range(5):
            await run_inline(pipeline)  # one at a time: the same greenlet each time, from the idle ones
        return idle, seen

    idle, seen = _run(main)
    assert idle == 3 and len(seen) == 6
