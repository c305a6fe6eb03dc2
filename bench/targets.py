"""The figures issue 14 asks the benchmark to report, each beside its target (reported, never asserted).

Scenario identifiers are bench.run's: ``issue/<token>/<auth>/<signing>/w<workers>/c<clients>``.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from bench.results import RunResults
from bench.scenarios import Measurement

HEADLINE = "issue/saml20-enc/digest/rsa/w1/c16"
REVIEWER_ROW = "reviewer check: 8 clients, 3 rounds, median"


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None  # None: not measured in this run (the detail says why)
    unit: str
    target: str  # "≥ 0.35", "" for a figure with no target
    met: bool | None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _at_least(name: str, value: float | None, unit: str, bound: float, detail: str = "") -> Target:
    met = None if value is None else value >= bound
    return Target(name, value, unit, f"≥ {bound:g}", met, detail)


def _figure(name: str, value: float | None, unit: str, detail: str = "") -> Target:
    return Target(name, value, unit, "", None, detail)


def _versus_floor(run: RunResults) -> list[Target]:
    """The headline Issue rows over the floor's (bench.floor, same kind of request, same clients): the share of
    what Python on this stack can physically do that the STS reaches with all its features."""
    found = []
    for signing in ("rsa", "ecdsa"):
        sts, floor = run.find(f"issue/saml20-enc/digest/{signing}/w1/c16"), run.find(
            f"floor/saml20-enc/digest/{signing}/w1/c16")
        value = sts.cpu_rate / floor.cpu_rate if sts and floor and floor.cpu_rate else None
        found.append(_figure(
            f"STS vs floor, {signing.upper()}: Issue tokens per server CPU-second / the bare pipeline's", value,
            "ratio", f"STS {sts.cpu_rate:.0f}, floor {floor.cpu_rate:.0f} tokens/CPU-s; floor at "
                     f"{floor.ratio:.3f} of raw {signing.upper()}" if sts and floor else ""))
    return found


def _farm(run: RunResults, headline: Measurement | None) -> list[Target]:
    """Issue 15's farm rows (1 and 2 nodes on PostgreSQL, CPU of the nodes and PostgreSQL) beside the single node
    on SQLite; nothing when the run left the farm out (``--no-farm``, the smoke mode)."""
    found = []
    for nodes in (1, 2):
        farm = run.find(f"farm/saml20-enc/digest/rsa/n{nodes}/c16")
        if farm is None:
            continue
        parts = farm.extra.get("server_cpu_seconds", {})
        database = parts.get("PostgreSQL", 0.0) if isinstance(parts, dict) else 0.0
        share = database / sum(parts.values()) if isinstance(parts, dict) and sum(parts.values()) else 0.0
        versus = (f" vs {headline.cpu_rate:.0f} on SQLite; wall {farm.wall_rate:.0f} vs {headline.wall_rate:.0f} "
                  "tokens/s") if headline else " (no single-node SQLite row in this run)"
        found.append(_figure(
            f"{nodes} node{'s' if nodes > 1 else ''} on {'a shared ' if nodes > 1 else ''}PostgreSQL vs 1 node on "
            "SQLite: tokens per server CPU-second (nodes + PostgreSQL), ratio",
            farm.cpu_rate / headline.cpu_rate if headline and headline.cpu_rate else None, "ratio",
            f"{farm.cpu_rate:.0f} tokens/CPU-s{versus}; PostgreSQL {share:.0%} of the server CPU"))
    return found


def compute(run: RunResults) -> list[Target]:
    targets = []
    headline = run.find(HEADLINE)
    targets.append(_at_least(
        "Issue RSA-2048, SAML 2.0 bearer signed+encrypted (AES-256-GCM, RSA-OAEP), digest UsernameToken, 1 worker, "
        "16 clients: tokens per server CPU-second / raw RSA-2048 signs per CPU-second",
        headline.ratio if headline else None, "ratio", 0.35,
        f"{headline.cpu_rate:.0f} tokens/CPU-s, raw RSA {headline.limit_rate:.0f}/CPU-s" if headline else ""))
    rounds = [m for m in run.measurements if m.scenario.startswith("reviewer/round")]
    if rounds:
        ratios = [m.ratio for m in rounds]
        errors = sum(m.errors for m in rounds)
        median = statistics.median(ratios)
        target = _at_least(REVIEWER_ROW, median, "ratio", 0.35,
                           f"rounds {', '.join(f'{r:.3f}' for r in ratios)}; errors {errors}")
        targets.append(Target(target.name, target.value, target.unit, target.target + ", 0 errors",
                              bool(target.met) and errors == 0, target.detail))
    ecdsa = run.find("issue/saml20-enc/digest/ecdsa/w1/c16")
    targets.append(_at_least("Issue as above with an ECDSA P-256 signing key: tokens per server CPU-second",
                             ecdsa.cpu_rate if ecdsa else None, "tokens/CPU-s", 1500,
                             f"ratio to raw ECDSA P-256 {ecdsa.ratio:.3f}" if ecdsa else ""))
    targets += _versus_floor(run)
    targets += _farm(run, headline)
    for clients in (16, 64):
        one, two = run.find(f"issue/saml20-enc/digest/rsa/w1/c{clients}"), run.find(
            f"issue/saml20-enc/digest/rsa/w2/c{clients}")
        value = two.cpu_rate / one.cpu_rate if one and two and one.cpu_rate else None
        targets.append(Target(
            f"2 workers vs 1, {clients} clients: tokens per server CPU-second, ratio", value, "ratio",
            "within 15 % (≥ 0.85)", None if value is None else value >= 0.85,
            f"{two.cpu_rate:.0f} vs {one.cpu_rate:.0f} tokens/CPU-s; wall {two.wall_rate:.0f} vs {one.wall_rate:.0f}"
            f" tokens/s" if one and two else ""))
    for rate in run.verifier:
        if "signed only" in rate.name:
            targets.append(_at_least(f"verifier: {rate.name}, tokens per CPU-second", rate.per_cpu_second,
                                     "tokens/CPU-s", 1600))
        else:
            targets.append(_figure(f"verifier: {rate.name}, tokens per CPU-second", rate.per_cpu_second,
                                   "tokens/CPU-s"))
    validate = run.find("validate/saml20-enc/digest/rsa/w1/c16")
    targets.append(_figure("Validate vs Issue: per server CPU-second, ratio",
                           validate.cpu_rate / headline.cpu_rate if validate and headline else None, "ratio",
                           f"Validate {validate.cpu_rate:.0f}, Issue {headline.cpu_rate:.0f} tokens/CPU-s"
                           if validate and headline else ""))
    for state in ("cold", "warm"):
        row = run.find(f"issue/saml20-enc/text-{state}/rsa/w1/c4")
        detail = f"p50 {row.p50_ms:.1f} ms" if row else (
            "" if state == "cold" or run.password_cache else "no password_cache_seconds setting in sts/config.py yet")
        targets.append(_figure(f"PasswordText (scrypt) {state}: tokens per server CPU-second",
                               row.cpu_rate if row else None, "tokens/CPU-s", detail))
    half = next((m for m in run.measurements if m.scenario.startswith("latency/")), None)
    targets.append(_figure("p50 at half the saturation rate", half.p50_ms if half else None, "ms",
                           f"open loop at {half.offered_rate:.0f}/s" if half and half.offered_rate else ""))
    targets.append(_figure("p99 at half the saturation rate", half.p99_ms if half else None, "ms"))
    peaks = [peak for m in run.measurements for peak in m.worker_peak_rss_mib]
    targets.append(_figure("peak RSS per worker (largest seen)", max(peaks) if peaks else None, "MiB"))
    soak = run.find("soak/saml20-enc/digest/rsa/w1/c16")
    if soak is not None:
        series = soak.rss_series
        first, last = (max(series[0][1]), max(series[-1][1])) if series else (0.0, 0.0)
        targets.append(_figure("RSS growth over the soak (last sample - first)", last - first, "MiB",
                               f"{first:.1f} -> {last:.1f} MiB over {soak.window_seconds / 60:.1f} min"))
    for count in (1, 10, 100):
        row = run.find(f"issue/claims-{count}/digest/rsa/w1/c16")
        targets.append(_figure(f"peak RSS per worker, {count} claim{'s' if count > 1 else ''} on the user",
                               max(row.worker_peak_rss_mib) if row and row.worker_peak_rss_mib else None, "MiB",
                               f"{row.cpu_rate:.0f} tokens/CPU-s" if row else ""))
    return targets
