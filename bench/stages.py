"""Where one Issue's CPU goes, stage by stage, in process: the ledger issue 14's next steps are planned from.

Runs the Issue pipeline (``TrustEndpoint.handle``, SAML 2.0 bearer signed and encrypted, digest UsernameToken) on
a fresh bench home without HTTP, with a timer wrapped around each stage's function, and in the same process the
floor's whole pipeline (``bench.floor.Floor.handle``) on the same requests for scale. Stages nest (``2a`` is part
of ``2``); the wrappers cost about a microsecond each, and a stage called inside another counts in both.

In process each request commits its own rows (``9 commit``); ``sts serve`` group-commits the rows of the requests
that finish in one loop turn (about 8 a transaction under load), so over HTTP that line shrinks to about an eighth.

Not a benchmark with targets (``make bench`` is): a profiler with stable, named rows. By hand:
``python -m bench.stages --signing ecdsa --requests 3000``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/stages.py` from any directory

from bench.floor import Floor  # noqa: E402
from bench.homes import make_home  # noqa: E402
from bench.issue_bench import bodies, issue_each, loopback_context  # noqa: E402
from sts.config import load_settings  # noqa: E402
from sts.runtime import build_runtime  # noqa: E402

#: (module, attribute looked up at call time, label). Only attributes that callers reach through the module or
#: the class are timed: a function imported by name elsewhere would escape its wrapper.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("sts.web.pipeline", "TrustEndpoint.handle", "0 the whole request"),
    ("sts.web.pipeline", "TrustEndpoint._envelope", "1 parse, envelope"),
    ("sts.service.auth", "RequestAuthenticator.authenticate", "2 authentication"),
    ("sts.service.throttle", "AuthThrottle.admit", "2a throttle: read the failure counts"),
    ("sts.store.users", "SqlUserStore.digest_secret", "2b the user's digest secret"),
    ("sts.store.replay", "SqlReplayCache.first_seen", "2c nonce insert (own commit)"),
    ("sts.service.token_service", "SecurityTokenService.plan_issue", "3 plan: relying party, lifetime, claims"),
    ("sts.service.providers", "SamlTokenProvider.issue", "4 token: build, sign, encrypt"),
    ("sts.service.providers", "SamlTokenProvider.signer_for", "4a the signer (key schedule)"),
    ("sts.tokens.crypto.signing", "XmlSigner.signature_for", "4b signature"),
    ("sts.store.tokens", "SqlTokenStore.put", "5 token row (deferred)"),
    ("sts.web.pipeline", "TrustEndpoint._record", "6 audit row (deferred), outcome"),
    ("sts.web.pipeline", "TrustEndpoint._reply", "7 RSTR and envelope"),
    ("sts.store.prepared", "_Scope.connection", "8 the request's connection"),
    ("sts.store.prepared", "_commit_now", "9 commit of the request's rows"),
)


@dataclass(frozen=True)
class Ledger:
    signing: str
    requests: int
    cpu_us: float  # CPU per request, timers included
    floor_us: float  # the floor's CPU per request on the same kind of request
    stages: dict[str, tuple[float, float]]  # label -> (µs per request, calls per request)

    def render(self) -> str:
        lines = [f"Issue in process, {self.signing.upper()}, {self.requests} requests: {self.cpu_us:.0f} µs of CPU "
                 f"a request (the floor: {self.floor_us:.0f} µs)"]
        for label, (micros, calls) in sorted(self.stages.items()):
            lines.append(f"  {label:44s} {micros:7.1f} µs  ({calls:.1f} a request)")
        return "\n".join(lines)


@contextmanager
def timed(stages: tuple[tuple[str, str, str], ...]) -> Iterator[tuple[Counter[str], Counter[str]]]:
    """Wrap each stage's function with a timer for the block; the originals are put back after it."""
    spent: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    restore: list[tuple[Any, str, Any]] = []
    try:
        for module, attribute, label in stages:
            owner: Any = import_module(module)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            original = owner.__dict__[name]
            if isinstance(original, (staticmethod, classmethod)):
                raise ValueError(f"{attribute}: static and class methods are not timed")
            setattr(owner, name, _timer(original, label, spent, calls))
            restore.append((owner, name, original))
        yield spent, calls
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)


def _timer(function: Callable[..., Any], label: str, spent: Counter[str], calls: Counter[str]) -> Callable[..., Any]:
    clock = time.perf_counter_ns

    @functools.wraps(function)
    def timer(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += clock() - start
            calls[label] += 1

    return timer


def measure(signing: str = "ecdsa", requests: int = 3000, warmup: int = 300) -> Ledger:
    """The ledger for ``requests`` unique Issue requests on a fresh home in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="sts-stages-") as directory:
        home = make_home(Path(directory) / signing, signing=signing)
        runtime = build_runtime(load_settings(home.path).with_bind("127.0.0.1", 8080, tls=False))
        try:
            ctx = loopback_context()
            every = bodies(warmup + requests)
            issue_each(runtime.endpoint, every[:warmup], ctx)
            with timed(STAGES) as (spent, calls):
                started = time.process_time()
                issue_each(runtime.endpoint, every[warmup:], ctx)
                cpu = time.process_time() - started
            floor = Floor(home.path, Path(directory) / "floor.db")
            floor_bodies = bodies(warmup + requests)
            for body in floor_bodies[:warmup]:
                floor.handle(body)
            started = time.process_time()
            for body in floor_bodies[warmup:]:
                floor.handle(body)
            floor_cpu = time.process_time() - started
        finally:
            runtime.stores.engine.dispose()
    return Ledger(signing, requests, cpu / requests * 1e6, floor_cpu / requests * 1e6,
                  {label: (spent[label] / requests / 1000, calls[label] / requests) for label in spent})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--signing", choices=("rsa", "ecdsa"), default="ecdsa")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    print(measure(args.signing, args.requests).render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
