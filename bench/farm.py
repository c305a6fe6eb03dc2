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

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import procfs
from bench.server import Session, serving

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / "tests" / "servers"  # the test servers' package (``servers``), PostgreSQL's launcher among them


def postgres_launcher() -> ModuleType:
    """tests/servers/postgres.py, imported as the tests import it (``servers.postgres``, so its own imports of
    ``servers.*`` work). Only the ``servers`` package is made importable: bench does not put tests/ on sys.path,
    where the test helpers' names would shadow others."""
    if "servers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("servers", SERVERS / "__init__.py",
                                                      submodule_search_locations=[str(SERVERS)])
        if spec is None or spec.loader is None or not (SERVERS / "postgres.py").exists():
            raise RuntimeError(f"{SERVERS / 'postgres.py'} is missing: the farm scenario needs its PostgreSQL launcher")
        package = importlib.util.module_from_spec(spec)
        sys.modules["servers"] = package
        spec.loader.exec_module(package)
    return importlib.import_module("servers.postgres")


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
