"""Where a SOAP request runs: inline on the event loop, or moved to a worker thread when it turns out heavy.

A digest or X.509 Issue costs about a millisecond of CPU, and handing it to a thread costs a large share of that
again (a thread-pool hop, the GIL handed back and forth). So the HTTP layer runs the pipeline inline on the loop
(``run_inline``) and the few steps that take much longer ask to leave it with ``heavy()``: a PasswordText check
against the stored scrypt hash (≈ 90 ms, in C with the GIL released) runs in a thread, where other requests go on
meanwhile. ``heavy()`` raises ``MoveToThread`` and the caller runs the whole request again in a thread; that is
only safe while the request has changed nothing, so once anything was committed (``note_commit``, called by the
store) ``heavy()`` lets the step run where it is.

**Requests together.** Run one after the other, each request takes every step of the pipeline cold: between two
RSA signatures the rest of a request (lxml, SQLite, the interpreter) has pushed the key's code and data out of the
CPU's caches, so a signature costs 300 µs in place against 256 µs right after another, an ECDSA one 45 µs against
22, parsing a request 38 µs against 10. So while requests arrive together (the loop's group commits hold at least
``COMPANY`` of them on average), ``run_inline`` runs each pipeline in a greenlet, and the expensive steps
(``together``: the request's parse, its signature, its encryption) park it; once every request ready on the loop
has reached one, the parked calls run back to back, kind by kind, each in its own request's context; then the
batch resumes each request where it parked, with its result (or its exception, raised there), and runs it to its
next park or its end, so between two parks the requests also run the same code one after the other. Nothing else
changes: each request is still decided alone, answered after its own rows are committed, and a request on its own
(one client at a time) runs as a plain call.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import greenlet

T = TypeVar("T")


class MoveToThread(BaseException):
    """The request must run in a worker thread. A BaseException: a control-flow signal that passes the pipeline's
    ``except Exception`` (which turns errors into faults) untouched, like ``sts.service.throttle.Throttled``."""


class _OnLoop:
    __slots__ = ("committed",)

    def __init__(self) -> None:
        self.committed = False


_state: ContextVar[_OnLoop | None] = ContextVar("sts_on_event_loop", default=None)


@contextmanager
def on_event_loop() -> Iterator[None]:
    """Mark the code inside as running on the event loop, for ``heavy()``."""
    token = _state.set(_OnLoop())
    try:
        yield
    finally:
        _state.reset(token)


def heavy() -> None:
    """Call before a slow step: on the event loop, and while nothing is committed, raise ``MoveToThread``."""
    state = _state.get()
    if state is not None and not state.committed:
        raise MoveToThread


def on_loop() -> bool:
    """Whether the caller runs inline on the event loop (inside ``on_event_loop``)."""
    return _state.get() is not None


def note_commit() -> None:
    """The request has changed stored state: from now on it cannot be run again from the start."""
    state = _state.get()
    if state is not None:
        state.committed = True


class _Inline(greenlet.greenlet):  # type: ignore[misc]
    """Runs requests' pipelines on the event loop (``run_inline``), one at a time, parked by ``together``.

    Kept and reused: a fresh greenlet for each request cost it about 60 µs more than a plain call (measured; a
    reused one costs about 12)."""

    def __init__(self) -> None:
        super().__init__(self._serve)
        #: The request's task waits on this for the outcome; the entry of the batch it is parked in, if any.
        self.finished: asyncio.Future[Any] | None = None
        self.parked: _Call | None = None

    def _serve(self, fn: Callable[[], Any]) -> Any:
        while True:
            try:
                done = _Done(fn(), None)
            except greenlet.GreenletExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the request's task, which raises it
                done = _Done(None, exc)
            fn = self.parent.switch(done)


class _Done:
    __slots__ = ("value", "error")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value, self.error = value, error


class _Call:
    """A parked call: what to run, in which request's context, and the greenlet to resume with its outcome."""

    __slots__ = ("kind", "fn", "args", "inline")

    def __init__(self, kind: str, fn: Callable[..., Any], args: tuple[Any, ...], inline: _Inline) -> None:
        self.kind, self.fn, self.args, self.inline = kind, fn, args, inline


#: At most this many idle greenlets are kept per event loop for ``run_inline`` to reuse.
_MAX_IDLE = 256


async def run_inline(fn: Callable[[], T]) -> T:
    """``fn()`` on the event loop, in a greenlet with a copy of the caller's context: a call to ``together``
    inside may park it until its batch has run, and the other requests go on meanwhile. Directly, as a plain call,
    while the loop has no company for it (``note_company``)."""
    loop = asyncio.get_running_loop()
    batch = _Batch.for_loop(loop)
    if batch.company < COMPANY:
        return fn()
    inline = batch.idle.pop() if batch.idle else _Inline()
    inline.gr_context = contextvars.copy_context()
    finished = inline.finished = loop.create_future()
    batch.resume(inline, inline.switch, fn)
    try:
        return await finished  # type: ignore[no-any-return]
    except asyncio.CancelledError:
        if inline.parked is not None:  # unwind the pipeline from where it is parked; its call will not run
            inline.parked = None
            batch.resume(inline, inline.throw, asyncio.CancelledError())
        raise


def _settle(finished: asyncio.Future[Any] | None, outcome: _Done) -> None:
    if finished is None or finished.done():
        return  # its task was cancelled meanwhile
    if outcome.error is not None:
        finished.set_exception(outcome.error)
    else:
        finished.set_result(outcome.value)


def together(kind: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, run one after the other with the same ``kind`` of call of the other requests on the event
    loop, once each has reached it (see the module's docstring); directly outside ``run_inline``'s greenlets (a
    request run while the loop has no company, a worker thread, a test, the command line)."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Inline):
        return fn(*args)
    current.parked = _Batch.for_loop(asyncio.get_running_loop()).add(_Call(kind, fn, args, current))
    # Back to whoever ran it last (its task, or a batch resuming it); the batch resumes it with the outcome.
    return current.parent.switch(None)  # type: ignore[no-any-return]


def note_company(requests: int) -> None:
    """How many requests the event loop's last group commit held (``sts.store.group_commit``): its running mean
    says whether requests arrive together, so that parking one finds others to run with."""
    batch = _Batch.for_loop(asyncio.get_running_loop())
    batch.company += (requests - batch.company) * _COMPANY_WEIGHT


#: Requests park at ``together`` only while the loop's group commits hold at least this many on average: a park
#: costs two turns of the loop, which a batch of one does not pay back (one client at a time: 87 µs a token more).
COMPANY = 2.0
_COMPANY_WEIGHT = 1 / 16


class _Batch:
    """The calls parked on one event loop (one per thread), run together soon after the first."""

    _local = threading.local()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.company = 0.0
        self.calls: list[_Call] = []
        #: Greenlets whose request has finished, for ``run_inline`` to reuse (at most ``_MAX_IDLE``).
        self.idle: list[_Inline] = []

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop) -> _Batch:
        batch: _Batch | None = getattr(cls._local, "batch", None)
        if batch is None or batch.loop is not loop:
            batch = cls._local.batch = cls(loop)
        return batch

    def add(self, call: _Call) -> _Call:
        if not self.calls:
            # After the callbacks already due and one more look at the sockets, as the group commit does: the
            # requests ready in this turn, and those whose bytes arrived while it ran, reach it too.
            self.loop.call_soon(self.loop.call_soon, self.run)
        self.calls.append(call)
        return call

    def run(self) -> None:
        """Every parked call back to back, kind by kind, each in its request's context; then each request goes on
        from where it parked (to its next park, or to its end) with its own result or exception."""
        calls, self.calls = self.calls, []
        calls.sort(key=lambda call: call.kind)  # stable: each kind in arrival order
        outcomes: list[tuple[_Call, bool, Any]] = []
        for call in calls:
            if call.inline.parked is not call:  # its request was cancelled while parked
                continue
            try:
                outcomes.append((call, True, call.inline.gr_context.run(call.fn, *call.args)))
            except BaseException as exc:  # noqa: BLE001 - its request's alone (MoveToThread too), raised where it parked
                outcomes.append((call, False, exc))
        for call, ok, outcome in outcomes:
            inline = call.inline
            if inline.parked is not call:
                continue
            inline.parked = None
            self.resume(inline, inline.switch if ok else inline.throw, outcome)

    def resume(self, inline: _Inline, action: Callable[[Any], Any], argument: Any) -> None:
        """Run ``inline`` (start it, or resume it with its call's outcome) until it parks again (in this loop's next
        batch, which resumes it) or finishes: then its task's future is settled and the greenlet kept for reuse."""
        outcome = action(argument)
        if not isinstance(outcome, _Done):
            return
        finished, inline.finished = inline.finished, None
        if len(self.idle) < _MAX_IDLE:
            self.idle.append(inline)
        _settle(finished, outcome)


__all__ = ["COMPANY", "MoveToThread", "heavy", "note_commit", "note_company", "on_event_loop", "on_loop",
           "run_inline", "together"]
