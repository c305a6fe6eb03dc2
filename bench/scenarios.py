"""One measurement: a kind of request, driven at `sts serve` by the load generator, with the server's CPU, memory
and the answers' latencies over a window.

How a measurement goes: a short calibration run (which also warms the server) estimates the rate; enough unique
requests for the window are generated; the generator starts, answers its warm-up requests, and then the window
opens: the server's CPU (its whole process tree, /proc) is read at both ends, the generator's records are cut to
the window. Errors are counted over the whole run, warm-up included: any one is reported.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from bench.loadgen import Generators, Load, Records, spread
from bench.messages import CONTENT_TYPE, RequestKind, generate
from bench.server import STS_PATH, Served


@dataclass(frozen=True)
class Timing:
    """How long the parts of one measurement take (a mode: full or smoke)."""

    seconds: float  # the measured window
    calibration: float  # the calibration run
    warmup: float  # answered before the window opens
    most: int | None = None  # at most this many requests (the smoke mode: the window ends when they run out)
    least: int = 5  # answers the window waits for past ``seconds`` (slow kinds: PasswordText), up to ``longest``
    longest: float = 60.0


@dataclass
class Measurement:
    """One row of the report."""

    name: str  # what the report prints
    scenario: str  # a stable identifier: kind/token/auth/signing/workers/clients
    kind: str
    workers: int
    clients: int
    offered_rate: float | None  # open loop: requests per second sent; None: closed loop
    window_seconds: float
    ok: int
    errors: int
    error_classes: dict[str, int]
    error_samples: dict[str, str]
    wall_rate: float  # successful answers per wall second
    cpu_rate: float  # successful answers per server CPU-second (all its processes)
    server_cores_busy: float  # server CPU-seconds per wall second
    client_cores_busy: float  # the load generator's CPU-seconds per wall second
    p50_ms: float
    p99_ms: float
    worker_rss_mib: list[float]
    worker_peak_rss_mib: list[float]
    limit: str = ""  # the raw signature the ratio is to
    limit_rate: float = 0.0  # its signatures per CPU-second, the mean of before and after the session
    rss_series: list[tuple[float, list[float]]] = field(default_factory=list)  # (seconds into the window, RSS)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Tokens per server CPU-second over raw signatures per CPU-second."""
        return self.cpu_rate / self.limit_rate if self.limit_rate else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": self.ratio}


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _generators(session: Served, kind: RequestKind, requests: list[bytes], clients: int, warmup: int,
                rate: float | None) -> Generators:
    """The load generator(s): one process per server endpoint, the load spread evenly among them."""
    host, port = session.endpoints[0]
    load = Load(host, port, STS_PATH, CONTENT_TYPE, requests, kind.success_marker, clients, warmup, rate)
    return Generators(spread(load, session.endpoints))


def calibrate(session: Served, kind: RequestKind, clients: int, seconds: float, rate: float | None = None) -> float:
    """Answers per second over a short run (it warms the server too); errors here show again in the measurement."""
    offered = rate or kind.expected_rate
    generator = _generators(session, kind, generate(kind, max(4 * clients, math.ceil(offered * seconds) + 8)),
                            clients, 1, rate)
    generator.wait_warm()
    start = time.monotonic()
    generator.release()
    while time.monotonic() - start < seconds and not generator.finished():
        time.sleep(0.02)
    end = time.monotonic()
    records = generator.stop()
    done = [at for at in records.done_at if start <= at <= end]
    return max(len(done) / max(end - start, 1e-3), 1.0)


def measure(session: Served, kind: RequestKind, name: str, scenario: str, *, clients: int, timing: Timing,
            rate: float | None = None, rss_every: float | None = None, expected: float | None = None
            ) -> Measurement:
    """Drive ``kind`` at the server: ``clients`` closed-loop connections, or open loop at ``rate`` per second.
    ``expected`` (a rate measured before), or without a calibration time (the smoke mode) the kind's expected
    rate, sizes the run instead of a calibration run."""
    estimate = rate or expected or (calibrate(session, kind, clients, timing.calibration) if timing.calibration
                                    else kind.expected_rate)
    warmup = max(2 * clients, math.ceil(estimate * timing.warmup))
    count = warmup + math.ceil(estimate * timing.seconds * 1.6) + 4 * clients
    if timing.most is not None:
        warmup, count = min(warmup, timing.most // 4), min(count, timing.most)
    generator = _generators(session, kind, generate(kind, count), clients, warmup, rate)
    generator.wait_warm()
    rss_series: list[tuple[float, list[float]]] = []
    parts_start, client_start, start = session.cpu_parts(), generator.cpu_seconds(), time.monotonic()
    answered_start, next_rss = generator.answered(), start
    # Only now: reading a farm's CPU (every node's and PostgreSQL's processes) took long enough on a busy machine for
    # the smoke run's few requests to be answered before the window opened (0 in the window, the CI failure).
    generator.release()
    while not generator.finished() and (
            time.monotonic() - start < timing.seconds
            or (generator.answered() - answered_start < timing.least and time.monotonic() - start < timing.longest)):
        if rss_every is not None and time.monotonic() >= next_rss:
            rss_series.append((time.monotonic() - start, [m.rss_mib for m in session.worker_memory()]))
            next_rss += rss_every
        time.sleep(0.02)
    end, parts_end = time.monotonic(), session.cpu_parts()
    client_end = generator.cpu_seconds()
    cpu = {part: parts_end[part] - parts_start[part] for part in parts_start}
    records = generator.stop()
    memory = session.worker_memory()
    if rss_every is not None:
        rss_series.append((end - start, [m.rss_mib for m in memory]))
    result = summarise(name, scenario, kind.name, session.workers, clients, rate, records, start, end, sum(cpu.values()),
                       client_end - client_start)
    if len(cpu) > 1:  # a farm: the nodes' and the database's share of the server CPU
        result.extra["server_cpu_seconds"] = cpu
    result.worker_rss_mib = [m.rss_mib for m in memory]
    result.worker_peak_rss_mib = [m.hwm_mib for m in memory]
    result.rss_series = rss_series
    return result


def summarise(name: str, scenario: str, kind: str, workers: int, clients: int, rate: float | None, records: Records,
              start: float, end: float, server_cpu: float, client_cpu: float) -> Measurement:
    """The window's figures from the generator's records and the CPU read at both ends."""
    if records.exhausted_at is not None and records.exhausted_at < end:
        end = records.exhausted_at  # the requests ran out early: the rest of the window was idle
    window = max(end - start, 1e-6)
    ok_latencies = [latency for at, latency, ok in zip(records.done_at, records.latency, records.ok, strict=True)
                    if ok and start <= at <= end]
    errors = Counter(records.errors)
    return Measurement(
        name=name, scenario=scenario, kind=kind, workers=workers, clients=clients, offered_rate=rate, window_seconds=window,
        ok=len(ok_latencies), errors=sum(errors.values()), error_classes=dict(errors),
        error_samples=dict(records.samples), wall_rate=len(ok_latencies) / window,
        cpu_rate=len(ok_latencies) / server_cpu if server_cpu > 0 else 0.0, server_cores_busy=server_cpu / window,
        client_cores_busy=client_cpu / window, p50_ms=percentile(ok_latencies, 0.50) * 1e3,
        p99_ms=percentile(ok_latencies, 0.99) * 1e3, worker_rss_mib=[], worker_peak_rss_mib=[])


def combine(name: str, scenario: str, parts: list[Measurement]) -> Measurement:
    """Segments of one long run as one row: sums and rates over all of them; p50 is the segments' median p50,
    p99 their largest; the RSS samples in one series (time since the first segment's window opened)."""
    window = sum(part.window_seconds for part in parts)
    ok = sum(part.ok for part in parts)
    server_cpu = sum(part.ok / part.cpu_rate for part in parts if part.cpu_rate)
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    series: list[tuple[float, list[float]]] = []
    offset = 0.0
    for part in parts:
        errors.update(part.error_classes)
        samples.update(part.error_samples)
        series += [(offset + at, rss) for at, rss in part.rss_series]
        offset += part.window_seconds
    last = parts[-1]
    return Measurement(
        name=name, scenario=scenario, kind=last.kind, workers=last.workers, clients=last.clients,
        offered_rate=last.offered_rate, window_seconds=window, ok=ok, errors=sum(errors.values()),
        error_classes=dict(errors), error_samples=samples, wall_rate=ok / window if window else 0.0,
        cpu_rate=ok / server_cpu if server_cpu else 0.0,
        server_cores_busy=sum(p.server_cores_busy * p.window_seconds for p in parts) / window if window else 0.0,
        client_cores_busy=sum(p.client_cores_busy * p.window_seconds for p in parts) / window if window else 0.0,
        p50_ms=statistics.median(part.p50_ms for part in parts), p99_ms=max(part.p99_ms for part in parts),
        worker_rss_mib=last.worker_rss_mib, worker_peak_rss_mib=last.worker_peak_rss_mib,
        rss_series=series, extra={"segments": len(parts)})
