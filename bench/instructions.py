"""Machine instructions per Issue request, counted by valgrind's callgrind: a cost that does not move with the noise.

On this class of machine identical timing runs of the same code differ by 10-30 % (shared cores, steal time), so a
change worth a few per cent cannot be shown by timing it. The number of instructions an Issue executes is
deterministic to about 0.1 % run to run: it cannot see cache misses or I/O waits (timings and ``make bench`` do),
but it shows at once whether a change does less work.

The count covers ``TrustEndpoint.handle`` in process (SAML 2.0 bearer signed and encrypted, digest UsernameToken,
the bench home's demo relying party) for ``--requests`` unique requests after a warm-up: the child zeroes
callgrind's counters once warm (``callgrind_control --zero``) and leaves with ``os._exit`` so that interpreter
teardown is not counted. ``--root`` counts another checkout (a ``git worktree`` of an earlier commit, say), so two
commits compare on the same machine: ``python -m bench.instructions --root /tmp/base``.

``--served``: each request as ``sts serve`` runs it, inline on an event loop with the group committer, and
``--batch`` requests (8 by default, what a few concurrent clients make) answered before their rows are committed
together; without it every request commits its own rows, as a request outside the event loop does.

Needs valgrind (``make deps`` installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")
_WARMUP = 30


@dataclass(frozen=True)
class Count:
    root: Path
    signing: str
    requests: int
    instructions: int
    batch: int = 0  # --served: requests a group commit

    @property
    def per_request(self) -> int:
        return self.instructions // self.requests

    def render(self) -> str:
        served = f", served, {self.batch} a commit" if self.batch else ""
        return (f"{self.per_request:,} instructions per Issue request ({self.signing.upper()}, {self.requests} "
                f"requests{served}, {self.root})")


class ValgrindMissing(RuntimeError):
    pass


def count(root: Path = ROOT, signing: str = "ecdsa", requests: int = 200, batch: int = 0) -> Count:
    """Run the child under callgrind and read the instructions it executed after warming up."""
    valgrind = shutil.which("valgrind")
    if valgrind is None or shutil.which("callgrind_control") is None:
        raise ValgrindMissing("valgrind is not installed: run `make deps` (Debian package valgrind)")
    with tempfile.TemporaryDirectory(prefix="sts-instructions-") as directory:
        result = subprocess.run(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={directory}/callgrind.out",
             # This file runs the child whatever ``root`` holds; the pipeline and the bench home come from ``root``.
             sys.executable, str(Path(__file__).resolve()), "--child", "--signing", signing,
             "--requests", str(requests), "--home", f"{directory}/home", "--batch", str(batch)],
            cwd=root, env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'tests'}"},
            capture_output=True, text=True, check=False)
    found = _COLLECTED.findall(result.stderr)
    if result.returncode != 0 or not found:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise RuntimeError(f"the counted run failed (exit {result.returncode}):\n{tail}")
    return Count(root, signing, requests, int(found[-1].replace(",", "")), batch)


def child(home: Path, signing: str, requests: int, batch: int = 0) -> None:
    """Under callgrind: warm up, zero the counters, run ``requests`` Issues, leave without teardown.

    Runs on ``--root``'s checkout, which may be older than this file: it uses only what every checkout has
    (``make_home``, ``bodies``, the runtime), not the newer helpers in ``bench.issue_bench``."""
    from bench.homes import make_home
    from bench.issue_bench import bodies
    from sts.config import load_settings
    from sts.model import RequestContext
    from sts.runtime import build_runtime
    from sts.xmltime import utcnow

    bench_home = make_home(home, signing=signing)
    runtime = build_runtime(load_settings(bench_home.path).with_bind("127.0.0.1", 8080, tls=False))
    every = bodies(_WARMUP + requests)
    ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=utcnow())

    def issue_all(chunk: list[bytes]) -> None:
        if batch:
            asyncio.run(_served(runtime, chunk, ctx, batch))
            return
        for body in chunk:
            _must_issue(runtime.endpoint.handle(body, ctx).status)

    issue_all(every[:_WARMUP])
    subprocess.run(["callgrind_control", "--zero", str(os.getpid())], check=True, capture_output=True)
    issue_all(every[_WARMUP:])
    sys.stdout.flush()
    os._exit(0)  # noqa: SLF001 - interpreter teardown is not the request's cost


async def _served(runtime: Any, chunk: list[bytes], ctx: Any, batch: int) -> None:
    """As ``sts.web.soap_http`` runs requests: inline on the loop, rows handed to the group committer, each answer
    waiting for its commit; ``batch`` requests at a time finish before the loop commits their rows together."""
    from sts.offload import on_event_loop

    committer = runtime.group_commit
    for start in range(0, len(chunk), batch):
        waiters = []
        for body in chunk[start:start + batch]:
            with committer.collecting() as waiter, on_event_loop():
                _must_issue(runtime.endpoint.handle(body, ctx).status)
            waiters.append(waiter)
        for waiter in waiters:
            if not await waiter.committed():
                _must_issue(500)


def _must_issue(status: int) -> None:
    if status != 200:
        print(f"an Issue request was answered with HTTP {status}", file=sys.stderr)
        os._exit(3)  # noqa: SLF001


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--signing", choices=("rsa", "ecdsa"), default="ecdsa")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to count (default: this one)")
    parser.add_argument("--served", action="store_true",
                        help="run each request inline on an event loop with the group committer, as sts serve does")
    parser.add_argument("--batch", type=int, default=None,
                        help="with --served: requests committed together (default 8)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    if args.child:
        child(args.home, args.signing, args.requests, args.batch or 0)
    if args.batch is not None and (not args.served or args.batch < 1):
        parser.error("--batch goes with --served and must be at least 1")
    batch = (args.batch or 8) if args.served else 0
    if not (args.root / "sts" / "__init__.py").is_file():
        parser.error(f"--root {args.root}: not a checkout of this project (no sts/__init__.py)")
    try:
        print(count(args.root.resolve(), args.signing, args.requests, batch).render())
    except ValgrindMissing as missing:
        print(missing, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
