"""The output of a run: a table on stdout, build/bench/bench.json, build/bench/bench.md, build/bench/throughput.svg."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from bench.chart import line_chart
from bench.results import RunResults
from bench.scenarios import Measurement
from bench.targets import Target

COLUMNS = ("scenario", "workers", "clients", "ok", "errors", "tokens/s", "per server CPU-s", "server cores",
           "p50 ms", "p99 ms", "peak RSS/worker MiB", "ratio to raw")


def _row(m: Measurement) -> tuple[str, ...]:
    clients = f"{m.clients}" if m.offered_rate is None else f"open {m.offered_rate:.0f}/s"
    peak = max(m.worker_peak_rss_mib) if m.worker_peak_rss_mib else 0.0
    ratio = f"{m.ratio:.3f} ({m.limit.split()[0]})" if m.limit_rate else ""
    return (m.name, str(m.workers), clients, str(m.ok), str(m.errors), f"{m.wall_rate:.0f}", f"{m.cpu_rate:.0f}",
            f"{m.server_cores_busy:.2f}", f"{m.p50_ms:.1f}", f"{m.p99_ms:.1f}", f"{peak:.0f}", ratio)


def _value(target: Target) -> str:
    if target.value is None:
        return "not measured"
    return f"{target.value:.3f}" if target.unit == "ratio" else f"{target.value:,.1f}"


def _met(target: Target) -> str:
    return "" if target.met is None else ("met" if target.met else "NOT met")


def _limits_lines(run: RunResults) -> list[str]:
    rsa, ecdsa = run.limit_mean("RSA"), run.limit_mean("ECDSA")
    count = len(run.limits)
    return [f"raw limits (mean of {count} measurements on one core, per CPU-second): RSA-2048 {rsa:,.0f}/s, "
            f"ECDSA P-256 {ecdsa:,.0f}/s"]


def text_table(run: RunResults, targets: list[Target]) -> str:
    rows = [COLUMNS, *(_row(m) for m in run.measurements)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = _limits_lines(run) + [""]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", "verifier (in process, one core):"]
    lines += [f"  {v.name}: {v.per_cpu_second:,.0f} tokens/CPU-s ({v.per_wall_second:,.0f}/s wall), p50 "
              f"{v.p50_ms:.2f} ms, p99 {v.p99_ms:.2f} ms, errors {v.errors}" for v in run.verifier]
    lines += ["", "peers (same content, same RSA-2048 key, one core):"]
    lines += [f"  {p.name} [{p.library}]: {p.per_cpu_second:,.1f}/CPU-s ({p.per_wall_second:,.1f}/s wall)"
              f"{'; ' + p.note if p.note else ''}" for p in run.peers]
    lines += ["", "targets:"]
    lines += [f"  {t.name}: {_value(t)} {t.unit if t.value is not None else ''} {t.target} {_met(t)}"
              f"{'  (' + t.detail + ')' if t.detail else ''}".rstrip() for t in targets]
    lines += [f"note: {note}" for note in run.notes]
    lines += [f"FAILURE: {failure}" for failure in run.failures]
    return "\n".join(lines)


def markdown(run: RunResults, targets: list[Target]) -> str:
    def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
        return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
                *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)]

    lines = [f"# make bench ({run.mode})", "",
             f"Started {run.started}, {run.seconds:.0f} s; {_machine()}.", "", *_limits_lines(run), "",
             "Tokens per server CPU-second count every process of `sts serve` (supervisor and workers, /proc "
             "utime+stime over the measured window); the load generator runs in its own process on the same cores.",
             "", "## Targets", ""]
    lines += table(("figure", "value", "unit", "target", "", "detail"),
                   [(t.name, _value(t), t.unit, t.target, _met(t), t.detail) for t in targets])
    lines += ["", "## Scenarios", ""] + table(COLUMNS, [_row(m) for m in run.measurements])
    lines += ["", "## Verifier (TokenVerifier in process)", ""]
    lines += table(("tokens", "per CPU-s", "per wall s", "p50 ms", "p99 ms", "errors"),
                   [(v.name, f"{v.per_cpu_second:.0f}", f"{v.per_wall_second:.0f}", f"{v.p50_ms:.2f}",
                     f"{v.p99_ms:.2f}", str(v.errors)) for v in run.verifier])
    lines += ["", "## Peers", ""]
    lines += table(("peer", "library", "per CPU-s", "per wall s", "note"),
                   [(p.name, p.library, f"{p.per_cpu_second:.1f}", f"{p.per_wall_second:.1f}", p.note)
                    for p in run.peers])
    lines += ["", "## Raw signature rates", ""]
    lines += table(("when", "algorithm", "per CPU-s", "per wall s"),
                   [(s.when, s.rate.algorithm, f"{s.rate.per_cpu_second:.0f}", f"{s.rate.per_wall_second:.0f}")
                    for s in run.limits])
    errors = [(m.name, cls, str(n), m.error_samples.get(cls, "")) for m in run.measurements
              for cls, n in m.error_classes.items()]
    if errors:
        lines += ["", "## Errors", ""] + table(("scenario", "class", "count", "sample"), errors)
    lines += [""] + [f"Note: {note}" for note in run.notes] + [f"**Failure:** {f}" for f in run.failures]
    lines += ["", "![throughput against concurrency](throughput.svg)", ""]
    return "\n".join(lines)


def chart(run: RunResults) -> str:
    """Per configuration a solid line (tokens per wall second) and a dashed one (per server CPU-second)."""
    series: dict[str, list[tuple[float, float]]] = {}
    dashed = set()
    for m in run.measurements:
        parts = m.scenario.split("/")
        if parts[0] == "issue" and parts[1] == "saml20-enc" and parts[2] == "digest":
            name = f"{parts[3].upper()}, {m.workers} worker{'s' if m.workers > 1 else ''}"
            series.setdefault(f"{name}: per wall s", []).append((float(m.clients), m.wall_rate))
            series.setdefault(f"{name}: per server CPU-s", []).append((float(m.clients), m.cpu_rate))
            dashed.add(f"{name}: per server CPU-s")
    series = {name: points for name, points in series.items() if len(points) > 1}
    return line_chart("Issue (SAML 2.0 signed+encrypted, digest UsernameToken)", "concurrent clients",
                      "tokens per second", series, frozenset(dashed))


def _machine() -> str:
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} at the end"


def write(run: RunResults, targets: list[Target], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "md": out / "bench.md", "svg": out / "throughput.svg"}
    document = {
        "mode": run.mode, "started": run.started, "seconds": run.seconds, "machine": _machine(),
        "password_cache": run.password_cache,
        "limits": [s.as_dict() for s in run.limits],
        "limit_means": {"RSA-2048": run.limit_mean("RSA"), "ECDSA P-256": run.limit_mean("ECDSA")},
        "measurements": [m.as_dict() for m in run.measurements],
        "verifier": [v.as_dict() for v in run.verifier], "peers": [p.as_dict() for p in run.peers],
        "targets": [t.as_dict() for t in targets], "notes": run.notes, "failures": run.failures,
        "errors": sum(m.errors for m in run.measurements) + sum(v.errors for v in run.verifier),
    }
    paths["json"].write_text(json.dumps(document, indent=2) + "\n")
    paths["md"].write_text(markdown(run, targets))
    paths["svg"].write_text(chart(run))
    return paths
