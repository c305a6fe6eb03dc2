"""Prometheus metrics of one STS node, in the text exposition format 0.0.4 (served as ``GET /metrics``).

Counted per SOAP request: ``sts_requests_total`` and ``sts_request_duration_seconds`` by endpoint, SOAP binding,
WS-Trust version, request type (and outcome for the count), ``sts_faults_total`` by fault code and
``sts_tokens_issued_total`` by relying party. Computed at scrape time: the number of tokens in the store and of
nonces in the replay cache.

Cheap enough to leave on: :meth:`Metrics.observe` is a few dict updates under one uncontended lock. Label values
are bounded: every label but the relying party takes its value from a fixed set ("other" otherwise), and the
relying party is resolved only at scrape time, through the registry, to the registered endpoint or
``unregistered`` (the hot path keeps the raw AppliesTo, at most ``max_applies_to`` distinct ones a process).

Several worker processes (``sts serve --workers N``): a scrape reaches one of them. Each writes a snapshot of its
counters to the node's directory (``STS_METRICS_DIR``, a temporary directory ``sts serve`` makes for its workers)
every ``flush_seconds`` when they changed, and at exit; the worker that answers a scrape adds the other snapshots
to its own live counters. A snapshot is never deleted while the node runs, so a worker that died still counts and
every counter only grows.
"""

from __future__ import annotations

import atexit
import contextlib
import hmac
import ipaddress
import json
import os
import secrets
import shutil
import tempfile
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sts.web.proxies import Origin, origin_of

if TYPE_CHECKING:
    from sts.config import Settings
    from sts.interfaces import RelyingPartyRegistry
    from sts.web.request_log import RequestFacts

#: Environment variable naming the node's snapshot directory (set by ``sts serve`` for its worker processes).
DIRECTORY_ENV = "STS_METRICS_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds of the latency buckets, in seconds: an Issue takes 1-2 ms of CPU, a throttled password check
#: waits up to seconds, and anything near 10 s is a stall.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OTHER = "other"
UNKNOWN = "unknown"
UNREGISTERED = "unregistered"
ENDPOINTS = frozenset({"sts", "usernamemixed", "certificatetransport"})
BINDINGS = frozenset({"soap11", "soap12"})
TRUST_VERSIONS = frozenset({"1.3", "2005", UNKNOWN})
REQUEST_TYPES = frozenset({"issue", "validate", "renew", "cancel", "batch", "metadata", UNKNOWN})
#: Fault codes come from the error tree (a few dozen); the cap only guards against a future code path that
#: would put request data in one.
MAX_FAULT_CODES = 64

_RequestKey = tuple[str, str, str, str, str]  # endpoint, binding, trust, request_type, outcome
_LatencyKey = tuple[str, str, str, str]  # endpoint, binding, trust, request_type
_HISTOGRAM_SIZE = len(BUCKETS) + 2  # a count per bucket and +Inf, then the sum


@dataclass
class Snapshot:
    """One process's counters, as written to and read from its snapshot file."""

    requests: dict[_RequestKey, int] = field(default_factory=dict)
    #: Per label set: the count of each bucket (not cumulative, the last one is +Inf), then the sum of seconds.
    latency: dict[_LatencyKey, list[float]] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    issued: dict[str, int] = field(default_factory=dict)  # raw AppliesTo (or "other") -> tokens

    def to_json(self) -> str:
        return json.dumps({
            "requests": [[*key, n] for key, n in self.requests.items()],
            "latency": [[*key, values] for key, values in self.latency.items()],
            "faults": self.faults,
            "issued": self.issued,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        snapshot = cls()
        for *labels, n in data["requests"]:
            snapshot.requests[_label_tuple(labels, 5)] = int(n)
        for *labels, values in data["latency"]:
            if len(values) != _HISTOGRAM_SIZE:
                raise ValueError("a snapshot written with other buckets")  # an upgrade mid-run: left out
            snapshot.latency[_label_tuple(labels, 4)] = [*(int(c) for c in values[:-1]), float(values[-1])]
        snapshot.faults = {str(k): int(v) for k, v in data["faults"].items()}
        snapshot.issued = {str(k): int(v) for k, v in data["issued"].items()}
        return snapshot

    def add(self, other: Snapshot) -> None:
        """Add ``other``'s counters to these."""
        for key, n in other.requests.items():
            self.requests[key] = self.requests.get(key, 0) + n
        for lkey, values in other.latency.items():
            mine = self.latency.get(lkey)
            self.latency[lkey] = list(values) if mine is None else [a + b for a, b in zip(mine, values, strict=True)]
        for code, n in other.faults.items():
            self.faults[code] = self.faults.get(code, 0) + n
        for applies_to, n in other.issued.items():
            self.issued[applies_to] = self.issued.get(applies_to, 0) + n


def _label_tuple(labels: list[object], size: int) -> Any:
    if len(labels) != size or not all(isinstance(label, str) for label in labels):
        raise ValueError("a snapshot's label set is not what this version writes")
    return tuple(labels)


class Metrics:
    """The counters of one process, and (with a ``directory``) its share of the node's figures."""

    def __init__(self, directory: Path | None = None, *, flush_seconds: float = 1.0,
                 max_applies_to: int = 512) -> None:
        self._lock = threading.Lock()  # the counters
        self._writing = threading.Lock()  # the snapshot file (the flushing thread, close() at exit, a test)
        self._live = Snapshot()
        self._max_applies_to = max_applies_to
        self._changes = 0
        self.directory = directory
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if directory is not None:
            # Random as well as the pid: a later worker that gets a dead one's pid must not overwrite its counts.
            self._file = directory / f"worker-{os.getpid()}-{secrets.token_hex(4)}.json"
            self._written = 0
            self._flusher = threading.Thread(target=self._flush_loop, args=(flush_seconds,), daemon=True,
                                             name="sts-metrics-flush")
            self._flusher.start()
            atexit.register(self.close)

    @classmethod
    def from_environment(cls) -> Metrics:
        """The metrics of a worker process: node-wide when ``sts serve`` set ``STS_METRICS_DIR``."""
        directory = os.environ.get(DIRECTORY_ENV)
        return cls(Path(directory) if directory else None)

    def observe(self, *, endpoint: str, binding: str, trust: str, request_type: str, outcome: str,
                relying_party: str | None, seconds: float) -> None:
        """Count one SOAP request: ``outcome`` is ``ok`` or its fault code (``wst:FailedAuthentication``);
        ``relying_party`` the AppliesTo of an Issue that returned a token (None otherwise)."""
        self._count(endpoint, binding, trust, request_type, outcome, relying_party, seconds)

    def observe_request(self, facts: RequestFacts, seconds: float) -> None:
        """Count one answered SOAP request from what the pipeline noted (``RequestObserver``'s hook)."""
        outcome = facts.outcome
        issued = outcome == "ok" and facts.request_type == "issue"
        self._count(facts.endpoint or OTHER, facts.binding, facts.trust, facts.request_type, outcome,
                    (facts.relying_party or "") if issued else None, seconds)

    def _count(self, endpoint: str, binding: str, trust: str, request_type: str, outcome: str,
               relying_party: str | None, seconds: float) -> None:
        # Inline membership tests rather than a helper: this runs on every request.
        lkey = (endpoint if endpoint in ENDPOINTS else OTHER, binding if binding in BINDINGS else OTHER,
                trust if trust in TRUST_VERSIONS else OTHER, request_type if request_type in REQUEST_TYPES else OTHER)
        ok = outcome == "ok"
        key = (*lkey, "ok" if ok else "fault")
        bucket = bisect_left(BUCKETS, seconds)
        live = self._live
        with self._lock:
            live.requests[key] = live.requests.get(key, 0) + 1
            histogram = live.latency.get(lkey)
            if histogram is None:
                histogram = live.latency[lkey] = [0] * _HISTOGRAM_SIZE
            histogram[bucket] += 1
            histogram[-1] += seconds
            if not ok:
                faults = live.faults
                code = outcome if outcome in faults or len(faults) < MAX_FAULT_CODES else OTHER
                faults[code] = faults.get(code, 0) + 1
            elif relying_party is not None:
                issued = live.issued
                rp = relying_party if relying_party in issued or len(issued) < self._max_applies_to else OTHER
                issued[rp] = issued.get(rp, 0) + 1
            self._changes += 1

    def snapshot(self) -> Snapshot:
        """A copy of this process's counters."""
        with self._lock:
            live = self._live
            return Snapshot(dict(live.requests), {k: list(v) for k, v in live.latency.items()},
                            dict(live.faults), dict(live.issued))

    def node_snapshot(self) -> tuple[Snapshot, int]:
        """This process's counters plus every other worker's last snapshot, and how many processes that is."""
        total = self.snapshot()
        processes = 1
        if self.directory is None:
            return total, processes
        for path in sorted(self.directory.glob("worker-*.json")):
            if path == self._file:
                continue
            try:
                total.add(Snapshot.from_json(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError):  # vanished or unreadable: that worker is left out
                continue
            processes += 1
        return total, processes

    def flush(self) -> None:
        """Write this process's snapshot for the other workers (atomically: a reader sees the old or the new)."""
        if self.directory is None:
            return
        with self._writing:
            with self._lock:
                changes = self._changes
            if changes == self._written:
                return
            temporary = self._file.with_suffix(".tmp")
            temporary.write_text(self.snapshot().to_json())
            os.replace(temporary, self._file)
            self._written = changes

    def close(self) -> None:
        """Stop the flushing thread after a last flush."""
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        with contextlib.suppress(OSError):
            self.flush()

    def _flush_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            with contextlib.suppress(OSError):  # a full disk must not end the thread; the next round tries again
                self.flush()


@contextlib.contextmanager
def worker_directory(workers: int) -> Iterator[Path | None]:
    """For ``sts serve``: with several workers, a fresh snapshot directory named in ``STS_METRICS_DIR`` for as
    long as the node runs (a new run starts from zero, as a restarted process does)."""
    if workers <= 1:
        yield None
        return
    directory = Path(tempfile.mkdtemp(prefix="sts-metrics-"))
    previous = os.environ.get(DIRECTORY_ENV)
    os.environ[DIRECTORY_ENV] = str(directory)
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(DIRECTORY_ENV, None)
        else:
            os.environ[DIRECTORY_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class StoreSizes:
    tokens: int
    nonces: int


def store_sizes(engine: Engine) -> StoreSizes:
    """Rows in the token store and the replay cache: two COUNTs, computed per scrape."""
    from sts.store.schema import nonces, tokens

    with engine.connect() as conn:
        token_count = conn.execute(select(func.count()).select_from(tokens)).scalar_one()
        nonce_count = conn.execute(select(func.count()).select_from(nonces)).scalar_one()
    return StoreSizes(int(token_count), int(nonce_count))


def render(snapshot: Snapshot, *, sizes: StoreSizes | None, processes: int,
           relying_party_of: Callable[[str], str | None]) -> str:
    """The exposition text; ``relying_party_of`` maps an AppliesTo to its registered endpoint (None: not one)."""
    out: list[str] = []
    _family(out, "sts_requests_total", "counter", "SOAP requests answered, by endpoint, binding, WS-Trust version, "
            "request type and outcome (ok or fault).",
            (("", _labels(("endpoint", "binding", "trust", "request_type", "outcome"), key), n)
             for key, n in sorted(snapshot.requests.items())))
    _family(out, "sts_request_duration_seconds", "histogram", "Time from the request reaching the application to "
            "its answer, by endpoint, binding, WS-Trust version and request type.",
            _histogram_samples(snapshot.latency))
    _family(out, "sts_faults_total", "counter", "SOAP faults answered, by fault code.",
            (("", _labels(("code",), (code,)), n) for code, n in sorted(snapshot.faults.items())))
    _family(out, "sts_tokens_issued_total", "counter", "Issue requests answered with a token, by registered relying "
            "party (\"unregistered\" when allow_unregistered_audiences let another AppliesTo through).",
            (("", _labels(("relying_party",), (rp,)), n)
             for rp, n in sorted(_by_relying_party(snapshot.issued, relying_party_of).items())))
    if sizes is not None:
        _family(out, "sts_tokens_stored", "gauge", "Issued tokens recorded in the store (any status).",
                [("", "", sizes.tokens)])
        _family(out, "sts_replay_cache_entries", "gauge", "Nonces held by the replay cache.",
                [("", "", sizes.nonces)])
    _family(out, "sts_metrics_processes", "gauge", "Worker processes whose counters these figures add up.",
            [("", "", processes)])
    return "\n".join(out) + "\n"


def _by_relying_party(issued: Mapping[str, int], relying_party_of: Callable[[str], str | None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for applies_to, n in issued.items():
        label = OTHER if applies_to == OTHER else (relying_party_of(applies_to) or UNREGISTERED)
        counts[label] = counts.get(label, 0) + n
    return counts


def _histogram_samples(latency: Mapping[_LatencyKey, list[float]]) -> Iterator[tuple[str, str, float]]:
    names = ("endpoint", "binding", "trust", "request_type")
    for key, values in sorted(latency.items()):
        *counts, total = values
        cumulative = 0
        for bound, count in zip((*(repr(b) for b in BUCKETS), "+Inf"), counts, strict=True):
            cumulative += int(count)
            yield "_bucket", _labels((*names, "le"), (*key, bound)), cumulative
        yield "_sum", _labels(names, key), total
        yield "_count", _labels(names, key), cumulative


def _family(out: list[str], name: str, kind: str, help_text: str,
            samples: Iterable[tuple[str, str, float]]) -> None:
    out.append(f"# HELP {name} {_escape_help(help_text)}")
    out.append(f"# TYPE {name} {kind}")
    # A counter's samples carry the name as declared (with _total), as the 0.0.4 format has it.
    out.extend(f"{name}{suffix}{labels} {_number(value)}" for suffix, labels, value in samples)


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    pairs = ",".join(f'{name}="{_escape_label(value)}"' for name, value in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


# --- GET /metrics -------------------------------------------------------------------------------------------------

def may_scrape(origin: Origin, authorization: str, *, public: bool, token: str) -> bool:
    """Who may read ``/metrics`` (it names relying parties and their volumes): anyone with ``metrics_public``;
    a request with ``Authorization: Bearer <metrics_token>``; otherwise only a loopback client that no proxy
    forwarded (``sts.web.proxies`` decides who the client is, once per request)."""
    if public:
        return True
    if token:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    return not origin.forwarded and _is_loopback(origin.client)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MetricsEndpoint:
    """The ``GET /metrics`` route of one node: access rule, store sizes and relying parties read at scrape time."""

    def __init__(self, metrics: Metrics, settings: Settings, engine: Engine,
                 relying_parties: RelyingPartyRegistry) -> None:
        self._metrics = metrics
        self._settings = settings
        self._engine = engine
        self._relying_parties = relying_parties

    async def serve(self, request: Request) -> Response:
        settings = self._settings
        if not settings.metrics_enabled:
            return Response("not found\n", 404, media_type="text/plain")
        if not may_scrape(origin_of(request.scope), request.headers.get("authorization", ""),
                          public=settings.metrics_public, token=settings.metrics_token):
            return Response("metrics are served to loopback clients (see metrics_public and metrics_token)\n", 403,
                            media_type="text/plain")
        return Response(await run_in_threadpool(self.text), headers={"content-type": CONTENT_TYPE})

    def text(self) -> str:
        """The exposition (blocking: it reads the database)."""
        snapshot, processes = self._metrics.node_snapshot()
        try:
            sizes: StoreSizes | None = store_sizes(self._engine)
        except SQLAlchemyError:  # the request figures are still worth having when the database is away
            sizes = None
        return render(snapshot, sizes=sizes, processes=processes, relying_party_of=self._relying_party_of)

    def _relying_party_of(self, applies_to: str) -> str | None:
        try:
            rp = self._relying_parties.lookup(applies_to)
        except (SQLAlchemyError, ValueError):
            return None
        return rp.endpoint if rp is not None else None
