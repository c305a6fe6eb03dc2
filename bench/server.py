"""One `sts serve --workers N` session on a free loopback port, observed from outside through /proc.

The server is started exactly as an operator starts it (bench.soak's ``start_server``: a new process group, its
output in the home's serve.log) and stopped with SIGTERM at the end. :class:`Served` is what a measurement needs
of a server: a session is one, and so is a farm of them (bench.farm).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench import procfs
from bench.soak import kill_group, start_server, stop_server, wait_until_answering
from sts.web.loopback import free_port

STS_PATH = "/services/sts"


class Served(Protocol):
    """What a measurement drives and reads: where to send requests, the CPU the serving processes used, memory."""

    @property
    def endpoints(self) -> list[tuple[str, int]]: ...  # (host, port) of each node: the load is spread evenly

    @property
    def workers(self) -> int: ...

    @property
    def sts_url(self) -> str: ...  # the first node's

    def cpu_parts(self) -> dict[str, float]: ...  # CPU seconds so far by part (one part: a single server)

    def worker_memory(self) -> list[procfs.Memory]: ...


@dataclass(frozen=True)
class Session:
    """A running server: where it listens, its process, how many workers."""

    host: str
    port: int
    pid: int
    workers: int
    home: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def sts_url(self) -> str:
        return self.base_url + STS_PATH

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]

    def cpu_seconds(self) -> float:
        """CPU seconds the server (supervisor and workers) has used so far."""
        return procfs.tree_cpu_seconds(self.pid)

    def cpu_parts(self) -> dict[str, float]:
        return {"server": self.cpu_seconds()}

    def worker_memory(self) -> list[procfs.Memory]:
        """Resident memory of each worker process now (and its peak so far)."""
        found = (procfs.memory(pid) for pid in procfs.worker_pids(self.pid, self.workers))
        return [memory for memory in found if memory is not None]


@contextmanager
def serving(home: Path, workers: int, env: dict[str, str] | None = None) -> Iterator[Session]:
    """``sts serve --workers N`` for the block, stopped with SIGTERM (killed if it does not exit)."""
    port = free_port()
    process = start_server(home, port, workers, env=env)
    session = Session("127.0.0.1", port, process.pid, workers, home)
    try:
        wait_until_answering(session.base_url, process)
        _wait_for_workers(session)
        yield session
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL to the process group if it does not exit within 30 s."""
    try:
        stop_server(process, timeout=30)
    except RuntimeError:
        kill_group(process)


def _wait_for_workers(session: Session, timeout: float = 60) -> None:
    """Until every worker process exists (the supervisor answers /healthz through the first one that is up)."""
    deadline = time.monotonic() + timeout
    while len(procfs.worker_pids(session.pid, session.workers)) < session.workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"`sts serve --workers {session.workers}` did not start its workers")
        time.sleep(0.1)
