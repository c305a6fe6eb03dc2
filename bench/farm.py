"""A farm under the benchmark: several `sts serve` nodes sharing one throwaway PostgreSQL database (issue 15).

The database is tests/servers/postgres.py's ``PostgresServer`` (initdb in a temporary directory, run as the
``postgres`` user when we are root; ``fsync=off``, as its data is thrown away: so the figure leaves out what a
durable PostgreSQL pays for its flushes). The home is bench.homes' with ``database_url`` set before `sts init`
runs, so users, relying parties, nonces, tokens and the audit log all live in PostgreSQL; every node serves that
one home (the same keys, the same configuration), each as `sts serve --workers 1` on its own loopback port.

The CPU a farm's token costs is every node's process tree plus PostgreSQL's (the postmaster and its backends,
from /proc): a :class:`Farm` reports them as separate parts, summed into its tokens per server CPU-second.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import procfs
from bench.server import Session, serving

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_LAUNCHER = ROOT / "tests" / "servers" / "postgres.py"


def postgres_launcher() -> ModuleType:
    """tests/servers/postgres.py, loaded by path (bench does not put tests/ on sys.path: its helpers' names would
    shadow others)."""
    spec = importlib.util.spec_from_file_location("sts_bench_postgres", POSTGRES_LAUNCHER)
    if spec is None or spec.loader is None or not POSTGRES_LAUNCHER.exists():
        raise RuntimeError(f"{POSTGRES_LAUNCHER} is missing: the farm scenario needs its PostgreSQL launcher")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL server for the block (RuntimeError naming `make deps` when PostgreSQL is missing)."""
    with postgres_launcher().PostgresServer() as server:
        yield server


def postmaster_pid(server: Any) -> int:
    """The postmaster's pid from its data directory's postmaster.pid (first line, PostgreSQL's own convention):
    the process above runuser's child, parent of every backend."""
    return int((Path(server.directory) / "data" / "postmaster.pid").read_text().split()[0])


@dataclass(frozen=True)
class Farm:
    """Nodes on one database, measured as one server: requests spread over the nodes, CPU summed with the
    database's."""

    nodes: tuple[Session, ...]
    database_pid: int

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        return [endpoint for node in self.nodes for endpoint in node.endpoints]

    @property
    def workers(self) -> int:
        return sum(node.workers for node in self.nodes)

    @property
    def sts_url(self) -> str:
        return self.nodes[0].sts_url

    def cpu_parts(self) -> dict[str, float]:
        parts = {f"node {index}": node.cpu_seconds() for index, node in enumerate(self.nodes, start=1)}
        parts["PostgreSQL"] = procfs.tree_cpu_seconds(self.database_pid)
        return parts

    def worker_memory(self) -> list[procfs.Memory]:
        return [memory for node in self.nodes for memory in node.worker_memory()]


@contextmanager
def farm_serving(home: Path, server: Any, nodes: int = 2) -> Iterator[Farm]:
    """``nodes`` × `sts serve --workers 1` on ``home`` (whose database_url is ``server``'s) for the block."""
    with ExitStack() as stack:
        sessions = tuple(stack.enter_context(serving(home, 1)) for _ in range(nodes))
        yield Farm(sessions, postmaster_pid(server))
