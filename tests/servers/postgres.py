"""A throwaway PostgreSQL 15 server for tests: initdb in a temporary directory, one database and role for the STS.

    with PostgresServer() as server:
        open_database(server.url)            # postgresql+psycopg://sts:...@127.0.0.1:<port>/sts
        url = server.fresh_url()             # a new, empty database (one per test: no state leaks)
        server.pause(); server.resume()      # SIGSTOP/SIGCONT every server process: a stuck database
        server.halt(); server.start()        # an outage: stopped, then back on the same port with the same data

PostgreSQL refuses to run as root and CI runs as root: then every server command runs as the ``postgres``
user (``runuser -u postgres --``) and the directory is handed to that user. The server listens on a unix socket
in its directory and on a free loopback TCP port (the STS connects over TCP, with a password, as in production);
``fsync=off`` because the data is thrown away. Starting takes about a second.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from servers.freezing import freeze, signal_quietly, thaw

BIN_DIR = Path("/usr/lib/postgresql/15/bin")
SERVER_USER = "postgres"  # the unprivileged account the Debian package creates
MISSING = "PostgreSQL 15 is not installed ({path} is missing): `make deps` installs postgresql-15"


class PostgresServer:
    """One PostgreSQL server in a temporary directory; ``start`` it (or use ``with``), ``stop`` removes it."""

    def __init__(self, database: str = "sts", role: str = "sts", password: str = "sts-test-password",
                 bin_dir: Path = BIN_DIR, start_timeout: float = 30.0) -> None:
        self.database = database
        self.role = role
        self.password = password
        self.bin_dir = bin_dir
        self.start_timeout = start_timeout
        self.port = 0
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    # -- what tests use --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the STS database (psycopg 3, TCP, password)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{self.role}:{self.password}@127.0.0.1:{self.port}/{database}"

    def fresh_url(self) -> str:
        """A new empty database owned by the STS role, for one test."""
        name = f"{self.database}_{os.getpid()}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}" OWNER "{self.role}"')
        return self.url_for(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the unix socket; returns psql's unaligned output."""
        result = self._run([self._binary("psql"), "-h", str(self._socket_dir), "-p", str(self.port),
                            "-U", SERVER_USER, "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        return result.stdout.decode()

    def start(self) -> PostgresServer:
        """Create the cluster on first use, then start the server and wait until it accepts connections."""
        if self._process is not None:
            return self
        fresh = self.directory is None
        if fresh:
            self._init_cluster()
        if not self.port:
            self.port = _free_port()
        self._process = subprocess.Popen(
            self._as_server_user([
                self._binary("postgres"), "-D", str(self._data_dir), "-k", str(self._socket_dir),
                "-h", "127.0.0.1", "-p", str(self.port),
                # Throwaway data: no flushes; enough connections for two nodes' pools and the tests' own.
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200", "-c", "shared_buffers=32MB",
            ]),
            stdout=subprocess.DEVNULL, stderr=open(self._log_path, "ab"),  # noqa: SIM115 - the child owns it
        )
        self._wait_ready()
        if fresh:
            self.psql(f"CREATE ROLE \"{self.role}\" LOGIN PASSWORD '{self.password}'")
            self.psql(f'CREATE DATABASE "{self.database}" OWNER "{self.role}"')
        return self

    def halt(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected), keeping its data for ``start``."""
        if self._process is None:
            return
        self.resume()  # a stopped process cannot shut down
        process, self._process = self._process, None
        pid = self._postmaster_pid()
        if pid is not None:
            signal_quietly(pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            if pid is not None:
                signal_quietly(pid, signal.SIGKILL)
            process.kill()
            process.wait()
        _wait_gone(pid)

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        self.halt()
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def pause(self) -> None:
        """Freeze every server process (SIGSTOP): connections hang instead of failing, as with a stuck server."""
        freeze(self._server_pids())  # returns once every process has really stopped (tests/servers/freezing.py)

    def resume(self) -> None:
        thaw(self._server_pids())
        if self._process is not None:
            # runuser stops itself when its child stops (as a shell's job would): wake it too.
            signal_quietly(self._process.pid, signal.SIGCONT)

    def log(self) -> str:
        """The server's own log (for a failing test's message)."""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # -- how -------------------------------------------------------------------------------------------

    @property
    def _data_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def _socket_dir(self) -> Path:
        assert self.directory is not None
        return self.directory

    @property
    def _log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "server.log"

    def _binary(self, name: str) -> str:
        path = self.bin_dir / name
        if not path.exists():
            raise RuntimeError(MISSING.format(path=path))
        return str(path)

    def _init_cluster(self) -> None:
        initdb = self._binary("initdb")
        directory = Path(tempfile.mkdtemp(prefix="sts-pg-"))
        if os.geteuid() == 0:
            shutil.chown(directory, SERVER_USER, SERVER_USER)
        self.directory = directory
        # trust on the socket (the superuser's psql), passwords over TCP (the STS, as in production).
        self._run([initdb, "-D", str(self._data_dir), "-U", SERVER_USER, "-E", "UTF8", "--no-sync",
                   "--auth-local=trust", "--auth-host=scram-sha-256"])

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(self._as_server_user(command), capture_output=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                               f"{result.stderr.decode(errors='replace')}")
        return result

    @staticmethod
    def _as_server_user(command: list[str]) -> list[str]:
        # As root: PostgreSQL will not run, so run as its own unprivileged user.
        return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command

    def _wait_ready(self) -> None:
        isready = [self._binary("pg_isready"), "-q", "-h", str(self._socket_dir), "-p", str(self.port)]
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start ({self._process.returncode}):\n{self.log()}")
            if subprocess.run(isready, check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not start within {self.start_timeout} s:\n{self.log()}")

    def _postmaster_pid(self) -> int | None:
        # runuser stays as the parent of the server: the postmaster's own pid is in its pid file.
        try:
            return int((self._data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _server_pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer...), from /proc."""
        postmaster = self._postmaster_pid()
        if postmaster is None:
            return []
        pids = [postmaster]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _parent_pid(entry) == postmaster:
                pids.append(int(entry.name))
        return pids


def _parent_pid(proc_entry: Path) -> int | None:
    try:
        stat = (proc_entry / "stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may itself contain spaces.
    return int(stat.rsplit(")", 1)[1].split()[1])




def _wait_gone(pid: int | None, timeout: float = 10.0) -> None:
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
