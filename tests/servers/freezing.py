"""Freezing a server's processes (SIGSTOP) for outage tests, and waiting until the freeze has taken hold.

``kill(SIGSTOP)`` returns before the target has stopped: each of its threads stops when the kernel next schedules
it. On a loaded machine a server thread can still answer a request sent right after the signal, and a test that
expects a hang would then see an answer. :func:`freeze` returns only once every thread of every process is stopped.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["freeze", "signal_quietly", "thaw"]


def freeze(pids: Iterable[int], timeout: float = 10.0) -> None:
    """SIGSTOP each process, then wait until all their threads are stopped (a process already gone is skipped)."""
    pids = list(pids)
    for pid in pids:
        signal_quietly(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while not all(_stopped(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} did not stop within {timeout} s of SIGSTOP")
        time.sleep(0.005)


def thaw(pids: Iterable[int]) -> None:
    for pid in pids:
        signal_quietly(pid, signal.SIGCONT)


def _stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (state T), ending, or gone."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        states = [_state(task / "stat") for task in tasks]
    except FileNotFoundError:
        return True
    return all(state in ("T", "t", "Z", "X", None) for state in states)  # a thread that is ending answers nothing


def _state(stat: Path) -> str | None:
    try:
        text = stat.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None  # the thread ended
    return text[text.rindex(")") + 2]  # "pid (comm) S ...": the command may hold spaces and parentheses


def signal_quietly(pid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to ``pid``; a process that is already gone is not an error."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
