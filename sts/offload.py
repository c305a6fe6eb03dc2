"""Where a SOAP request runs: inline on the event loop, or moved to a worker thread when it turns out heavy.

A digest or X.509 Issue costs about a millisecond of CPU, and handing it to a thread costs a large share of that
again (a thread-pool hop, the GIL handed back and forth). So the HTTP layer runs the pipeline inline on the loop
(``run_on_loop``) and the few steps that take much longer ask to leave it with ``heavy()``: a PasswordText check
against the stored scrypt hash (≈ 90 ms, in C with the GIL released) runs in a thread, where other requests go on
meanwhile. ``heavy()`` raises ``MoveToThread`` and the caller runs the whole request again in a thread; that is
only safe while the request has changed nothing, so once anything was committed (``note_commit``, called by the
store) ``heavy()`` lets the step run where it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


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


__all__ = ["MoveToThread", "heavy", "note_commit", "on_event_loop", "on_loop"]
