"""A server's CPU time and memory, read from /proc (Linux): the process, its descendants, their workers.

CPU is utime+stime (plus what reaped children left in cutime+cstime) summed over the process tree, read before and
after a measured window: the difference is the server CPU that window cost, whatever the load generator beside it
took of the shared cores. Memory is VmRSS and VmHWM (peak) of each worker process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces), or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process visible now."""
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    tree, found, todo = children_map(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, with reaped children's) of ``pid`` alone; 0 once it has gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    return sum(int(value) for value in fields[11:15]) / TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and all its descendants."""
    return sum(cpu_seconds(each) for each in descendants(pid))


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def worker_pids(server_pid: int, workers: int) -> list[int]:
    """The processes that answer requests: the server itself with one worker, else its worker children (uvicorn's
    supervisor starts them with multiprocessing; its resource tracker is not a worker)."""
    if workers == 1:
        return [server_pid]
    return sorted(pid for pid in children_map().get(server_pid, []) if "resource_tracker" not in cmdline(pid))


@dataclass(frozen=True)
class Memory:
    """One process's resident memory in MiB: now and its peak."""

    rss_mib: float
    hwm_mib: float


def memory(pid: int) -> Memory | None:
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    values = {name: float(rest.split()[0]) / 1024 for name, _, rest in (line.partition(":") for line in lines)
              if name in ("VmRSS", "VmHWM")}
    return Memory(values.get("VmRSS", 0.0), values.get("VmHWM", 0.0))
