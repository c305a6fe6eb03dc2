"""`make bench`: the STS's Issue path against the machine's raw signature rate, and everything around it.

In one run: raw RSA-2048 and ECDSA P-256 signatures per CPU-second (before and after every server session);
`sts serve` with 1 and 2 workers driven by a load generator in its own process (pre-generated unique requests) at 1,
16 and 64 concurrent clients for SAML 1.1 and 2.0, signed only and signed and encrypted, RSA and ECDSA signing keys,
digest UsernameToken, PasswordText (scrypt) and X.509-signed requests, Validate, 1/10/100 claims, latency at half
the saturation rate, a soak; the reviewer's check (8 clients, 3 rounds, median); the floor (bench.floor: a bare
Issue pipeline on the same HTTP stack, the yardstick the headline rows are compared with); 1 and 2 nodes on a shared
PostgreSQL (bench.farm; not in the smoke mode unless --farm); the relying party's verifier in process; auth0's saml
(npm) and pysaml2 signing the same assertion. A table on stdout, JSON, Markdown and an SVG chart under build/bench/.
``--smoke`` runs every scenario for a moment (CI: it asserts nothing about speed).
Exit status 1 when any request failed or a peer is not installed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/run.py` from any directory

from bench import peers, report, targets  # noqa: E402
from bench.farm import farm_serving, postgres  # noqa: E402
from bench.floor import floor_serving  # noqa: E402
from bench.homes import CLAIM_COUNTS, DEMO_USER, PASSWORD, BenchHome, make_home  # noqa: E402
from bench.issued import IssuedToken, issue_tokens  # noqa: E402
from bench.limits import ecdsa_p256_rate, mean_rate, rsa2048_rate  # noqa: E402
from bench.messages import RequestKind, issue_signed, issue_with_password, validate  # noqa: E402
from bench.results import LimitSample, RunResults  # noqa: E402
from bench.scenarios import Measurement, Timing, calibrate, combine, measure  # noqa: E402
from bench.server import Served, serving  # noqa: E402
from bench.verifier import measure_verifier  # noqa: E402
from sts.xmltime import format_datetime, utcnow  # noqa: E402

CACHE_SETTING = "password_cache_seconds"
TOKENS = {"saml20-enc": "SAML 2.0 signed+encrypted", "saml20-signed": "SAML 2.0 signed",
          "saml11-enc": "SAML 1.1 signed+encrypted", "saml11-signed": "SAML 1.1 signed"}
AUTH = {"digest": "digest UsernameToken", "text-cold": "PasswordText (scrypt), cold",
        "text-warm": "PasswordText, warm cache", "x509": "X.509-signed request"}


@dataclass(frozen=True)
class Mode:
    name: str
    timing: Timing
    limit_seconds: float  # each raw-signature measurement
    verifier_seconds: float
    peer_seconds: float
    soak_segment_seconds: float
    soak_rss_every: float
    verifier_tokens: int
    validate_tokens: int
    own_sessions: bool  # claims and soak each in a fresh server (their peak RSS alone); smoke: in the first one


FULL = Mode("full", Timing(seconds=5.0, calibration=1.0, warmup=1.0), 1.0, 3.0, 3.0, 30.0, 5.0, 40, 200, True)
SMOKE = Mode("smoke", Timing(seconds=0.3, calibration=0.0, warmup=0.1, most=300), 0.1, 0.3, 0.4, 1.0, 0.5, 4, 10,
             False)


def scenario_id(kind: str, token: str, auth: str, signing: str, workers: int, clients: int) -> str:
    return f"{kind}/{token}/{auth}/{signing}/w{workers}/c{clients}"


def password_cache_available() -> bool:
    """Whether the STS has the cache of recently verified passwords (then PasswordText is measured warm too)."""
    return CACHE_SETTING in (ROOT / "sts" / "config.py").read_text()


class Bench:
    """One run: the homes, the mode, what has been measured so far."""

    def __init__(self, mode: Mode, directory: Path, soak_minutes: float) -> None:
        self.mode, self.soak_minutes, self.directory = mode, soak_minutes, directory
        self.run = RunResults(mode.name, format_datetime(utcnow()), password_cache=password_cache_available())
        self.rsa = make_home(directory / "rsa")
        self.ecdsa = make_home(directory / "ecdsa", signing="ecdsa")
        self.verifier_tokens: dict[str, list[IssuedToken]] = {}

    # --- the limits and the sessions ----------------------------------------------------------------------------

    def limits(self, when: str) -> list[LimitSample]:
        samples = [LimitSample(when, rsa2048_rate(self.mode.limit_seconds)),
                   LimitSample(when, ecdsa_p256_rate(self.mode.limit_seconds))]
        self.run.limits.extend(samples)
        return samples

    @contextmanager
    def session(self, label: str, home: BenchHome, workers: int, env: dict[str, str] | None = None,
                server: AbstractContextManager[Served] | None = None) -> Iterator[Served]:
        """A server session between two raw-signature measurements; its rows' ratios use their mean. ``server``:
        another server than `sts serve --workers N` on the home (the floor)."""
        before = self.limits(f"before {label}")
        first = len(self.run.measurements)
        with server if server is not None else serving(home.path, workers, env) as session:
            yield session
        samples = before + self.limits(f"after {label}")
        algorithm = "ECDSA" if home.signing == "ecdsa" else "RSA"
        pair = [sample.rate for sample in samples if sample.rate.algorithm.startswith(algorithm)]
        for row in self.run.measurements[first:]:
            if not row.limit_rate:  # the reviewer's rounds carry their own
                row.limit, row.limit_rate = pair[0].algorithm, mean_rate(pair)

    def record(self, row: Measurement) -> Measurement:
        self.run.measurements.append(row)
        if row.errors:
            classes = ", ".join(f"{name} x{count}" for name, count in row.error_classes.items())
            self.run.failures.append(f"{row.name}: {row.errors} errors ({classes})")
        print(f"  {row.name}: {row.ok} ok, {row.errors} errors, {row.wall_rate:.0f}/s, "
              f"{row.cpu_rate:.0f} per server CPU-s", flush=True)
        return row

    def issue(self, session: Served, home: BenchHome, token: str, auth: str, clients: int,
              **options: object) -> Measurement:
        kind = self.kind(session, home, token, auth)
        workers = session.workers
        name = (f"Issue {self.token_label(token)}, {AUTH[auth]}, {home.signing.upper()}, {workers} worker"
                f"{'s' if workers > 1 else ''}, {clients} clients")
        row = measure(session, kind, name, scenario_id("issue", token, auth, home.signing, workers, clients),
                      clients=clients, timing=self.mode.timing, **options)  # type: ignore[arg-type]
        return self.record(row)

    @staticmethod
    def token_label(token: str) -> str:
        if token.startswith("claims-"):
            count = int(token.split("-")[1])
            return f"SAML 2.0 signed+encrypted, {count} claim{'s' if count > 1 else ''} on the user"
        return TOKENS[token]

    def kind(self, session: Served, home: BenchHome, token: str, auth: str) -> RequestKind:
        party = home.parties[token]
        user = home.claim_users[int(token.split("-")[1])] if token.startswith("claims-") else DEMO_USER
        if auth == "x509":
            assert home.client_key is not None and home.client_cert is not None
            return issue_signed(session.sts_url, home.client_key, home.client_cert, party.endpoint)
        return issue_with_password(user, PASSWORD, party.endpoint, party.token_type, digest=auth == "digest")

    # --- the scenarios --------------------------------------------------------------------------------------------

    def rsa_one_worker(self) -> None:
        env = {"STS_PASSWORD_CACHE_SECONDS": "0"} if self.run.password_cache else None
        with self.session("rsa, 1 worker", self.rsa, 1, env) as session:
            self.reviewer_check(session)
            for clients in (1, 16, 64):
                self.issue(session, self.rsa, "saml20-enc", "digest", clients)
            for token in ("saml20-signed", "saml11-enc", "saml11-signed"):
                self.issue(session, self.rsa, token, "digest", 16)
            self.issue(session, self.rsa, "saml20-enc", "x509", 16)
            self.validate(session)
            self.issue(session, self.rsa, "saml20-enc", "text-cold", 4)
            for token in ("saml20-signed", "saml20-enc"):
                kind = self.kind(session, self.rsa, token, "digest")
                self.verifier_tokens[token] = issue_tokens(session, kind, self.mode.verifier_tokens)
            self.half_saturation(session)
            if not self.mode.own_sessions:
                self.claims(session)
                self.soak(session)

    def reviewer_check(self, session: Served) -> None:
        """The independent reviewer's measurement: 8 clients, digest Issue for the demo relying party, raw RSA-2048
        just before and after each of 3 rounds; the median ratio is the target row."""
        kind = self.kind(session, self.rsa, "saml20-enc", "digest")
        for round_number in (1, 2, 3):
            before = rsa2048_rate(self.mode.limit_seconds)
            row = measure(session, kind, f"reviewer check: 8 clients, round {round_number}",
                          f"reviewer/round{round_number}", clients=8, timing=self.mode.timing)
            after = rsa2048_rate(self.mode.limit_seconds)
            self.run.limits += [LimitSample(f"reviewer round {round_number}", rate) for rate in (before, after)]
            row.limit, row.limit_rate = before.algorithm, mean_rate([before, after])
            self.record(row)
        rounds = self.run.measurements[-3:]
        median = sorted(rounds, key=lambda row: row.ratio)[1]
        summary = replace(median, name=targets.REVIEWER_ROW, scenario="reviewer/median",
                          errors=sum(row.errors for row in rounds),
                          extra={"round_ratios": [row.ratio for row in rounds],
                                 "median_ratio": statistics.median(row.ratio for row in rounds)})
        self.run.measurements.append(summary)

    def validate(self, session: Served) -> None:
        issue = self.kind(session, self.rsa, "saml20-enc", "digest")
        token_ids = [token.token_id for token in issue_tokens(session, issue, self.mode.validate_tokens)]
        kind = validate(DEMO_USER, PASSWORD, token_ids)
        self.record(measure(session, kind, "Validate (by reference) of SAML 2.0 signed+encrypted, digest "
                                           "UsernameToken, RSA, 1 worker, 16 clients",
                            scenario_id("validate", "saml20-enc", "digest", "rsa", 1, 16), clients=16,
                            timing=self.mode.timing))

    def half_saturation(self, session: Served) -> None:
        """Open loop at half the saturation rate: p50/p99 under a load the server can carry. Saturation is the
        closed-loop rate at 64 clients measured just before (the machine's other load changes by the minute); the
        smoke mode takes the rate measured earlier in the run."""
        kind = self.kind(session, self.rsa, "saml20-enc", "digest")
        if self.mode.timing.calibration:
            saturation = calibrate(session, kind, 64, 2 * self.mode.timing.calibration)
        else:
            saturation = max(row.wall_rate for row in self.run.measurements
                             if row.scenario.startswith("issue/saml20-enc/digest/rsa/w1/"))
        rate = max(saturation / 2, 1.0)
        self.record(measure(session, kind, f"Issue SAML 2.0 signed+encrypted, digest, RSA, 1 worker, at half "
                                           f"saturation ({rate:.0f}/s open loop)",
                            f"latency/saml20-enc/digest/rsa/w1/rate{rate:.0f}", clients=64,
                            timing=self.mode.timing, rate=rate))

    def rsa_two_workers(self) -> None:
        with self.session("rsa, 2 workers", self.rsa, 2) as session:
            for clients in (1, 16, 64):
                self.issue(session, self.rsa, "saml20-enc", "digest", clients)

    def password_cache(self) -> None:
        if not self.run.password_cache:
            self.run.notes.append(f"PasswordText warm not measured: sts/config.py has no {CACHE_SETTING} yet")
            return
        with self.session("rsa, 1 worker, password cache", self.rsa, 1,
                          {"STS_PASSWORD_CACHE_SECONDS": "300"}) as session:
            self.issue(session, self.rsa, "saml20-enc", "text-warm", 4)

    def claims(self, shared: Served | None = None) -> None:
        """1, 10 and 100 claims on the user (and required by the relying party); in the full run a fresh server for
        each count, so that each peak RSS is that count's alone."""
        for count in CLAIM_COUNTS:
            if shared is not None:
                self.issue(shared, self.rsa, f"claims-{count}", "digest", 16)
                continue
            with self.session(f"rsa, 1 worker, {count} claims", self.rsa, 1) as session:
                self.issue(session, self.rsa, f"claims-{count}", "digest", 16)

    def soak(self, shared: Served | None = None) -> None:
        """The headline scenario for --soak-minutes in segments (each with its own fresh requests); RSS sampled."""
        if shared is not None:
            self._soak(shared)
            return
        with self.session("rsa, 1 worker, soak", self.rsa, 1) as session:
            self._soak(session)

    def _soak(self, session: Served) -> None:
        segment = replace(self.mode.timing, seconds=min(self.mode.soak_segment_seconds, self.soak_minutes * 60))
        kind = self.kind(session, self.rsa, "saml20-enc", "digest")
        parts: list[Measurement] = []
        started = time.monotonic()
        while not parts or time.monotonic() - started < self.soak_minutes * 60:
            parts.append(measure(session, kind, "soak segment", "soak/segment", clients=16, timing=segment,
                                 rss_every=self.mode.soak_rss_every,
                                 expected=parts[-1].wall_rate * 1.2 if parts and parts[-1].wall_rate else None))
            print(f"  soak segment {len(parts)}: {parts[-1].ok} ok, {parts[-1].errors} errors, worker RSS "
                  f"{', '.join(f'{rss:.1f}' for rss in parts[-1].worker_rss_mib)} MiB", flush=True)
        self.record(combine(f"soak: Issue SAML 2.0 signed+encrypted, digest, RSA, 1 worker, 16 clients, "
                            f"{(time.monotonic() - started) / 60:.1f} min", "soak/saml20-enc/digest/rsa/w1/c16",
                            parts))

    def ecdsa_one_worker(self) -> None:
        with self.session("ecdsa, 1 worker", self.ecdsa, 1) as session:
            party = self.ecdsa.parties["saml20-signed"]
            (sample,) = issue_tokens(session, issue_with_password(DEMO_USER, PASSWORD, party.endpoint,
                                                                  party.token_type), 1)
            if b"#ecdsa-sha256" not in sample.token:
                self.run.failures.append("the ECDSA home's token is not signed with ECDSA-SHA256")
            for clients in (1, 16, 64):
                self.issue(session, self.ecdsa, "saml20-enc", "digest", clients)
            self.issue(session, self.ecdsa, "saml20-signed", "digest", 16)

    def floor(self) -> None:
        """The yardstick (bench.floor): the bare pipeline on the same stack, driven as the headline rows are (SAML
        2.0 signed+encrypted for the demo party, digest UsernameToken, 16 clients), with RSA and with ECDSA."""
        for home in (self.rsa, self.ecdsa):
            with self.session(f"floor, {home.signing}", home, 1, server=floor_serving(home.path)) as session:
                kind = self.kind(session, home, "saml20-enc", "digest")
                self.record(measure(session, kind, f"floor: bare pipeline, {home.signing.upper()}",
                                    scenario_id("floor", "saml20-enc", "digest", home.signing, 1, 16), clients=16,
                                    timing=self.mode.timing))

    def farm(self) -> None:
        """Issue 15's farm: 1 and 2 nodes (`sts serve --workers 1` each) on one shared PostgreSQL, driven as the
        headline row (16 clients, spread evenly over the nodes); the CPU counted is the nodes' and PostgreSQL's."""
        try:
            with postgres() as database:
                home = make_home(self.directory / "farm", database_url=database.url)
                for nodes in (1, 2):
                    label = "2 nodes, shared PostgreSQL" if nodes > 1 else "1 node, PostgreSQL"
                    with self.session(label, home, nodes, server=farm_serving(home.path, database, nodes)) as farm:
                        kind = self.kind(farm, home, "saml20-enc", "digest")
                        self.record(measure(farm, kind, f"{label}: Issue SAML 2.0 signed+encrypted, digest "
                                                        f"UsernameToken, RSA, 1 worker each, 16 clients",
                                            f"farm/saml20-enc/digest/rsa/n{nodes}/c16", clients=16,
                                            timing=self.mode.timing))
        except RuntimeError as failed:  # PostgreSQL missing (the message says `make deps`), or a node did not start
            self.run.failures.append(f"farm (PostgreSQL): {failed}")

    def verifier(self) -> None:
        for token, name, key in (("saml20-signed", "SAML 2.0 signed only", None),
                                 ("saml20-enc", "SAML 2.0 signed+encrypted (AES-256-GCM, RSA-OAEP)",
                                  self.rsa.rp_key)):
            rate = measure_verifier(name, self.verifier_tokens[token], self.rsa.signing_cert,
                                    self.rsa.parties[token].endpoint, key, self.mode.verifier_seconds)
            self.run.verifier.append(rate)
            if rate.errors:
                self.run.failures.append(f"verifier {name}: {rate.errors} tokens rejected: {rate.error_samples}")

    def peers(self) -> None:
        try:
            self.run.peers += peers.node_saml(self.rsa, self.mode.peer_seconds)
        except peers.PeerUnavailable as missing:
            self.run.failures.append(str(missing))
        try:
            self.run.peers.append(peers.pysaml2_sign(self.rsa, self.mode.peer_seconds))
        except peers.PeerUnavailable as missing:
            self.run.failures.append(str(missing))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="every scenario for a moment (CI; ~1 minute)")
    parser.add_argument("--soak-minutes", type=float, default=None,
                        help="how long the soak runs (default 0.5 min; smoke: 2 s)")
    parser.add_argument("--farm", action=argparse.BooleanOptionalAction, default=None,
                        help="the 1- and 2-node PostgreSQL scenario (default: on, off with --smoke)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench", help="where the report goes")
    args = parser.parse_args(argv)
    # PasswordText must cost the real scrypt (2^15): a test environment's cheap setting must not leak in.
    os.environ.pop("STS_PASSWORD_HASH_N", None)
    mode = SMOKE if args.smoke else FULL
    soak_minutes = args.soak_minutes if args.soak_minutes is not None else (2 / 60 if args.smoke else 0.5)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sts-bench-") as directory:
        print(f"make bench ({mode.name}): homes in {directory}", flush=True)
        bench = Bench(mode, Path(directory), soak_minutes)
        steps = [bench.rsa_one_worker, bench.rsa_two_workers, bench.password_cache, bench.ecdsa_one_worker,
                 bench.floor, bench.verifier, bench.peers]
        if args.farm if args.farm is not None else not args.smoke:
            steps.insert(-2, bench.farm)
        if mode.own_sessions:
            steps[3:3] = [bench.claims, bench.soak]
        for step in steps:
            step_started = time.monotonic()
            print(f"{step.__name__.replace('_', ' ')}", flush=True)
            step()
            print(f"  ({time.monotonic() - step_started:.1f} s)", flush=True)
    bench.run.seconds = time.monotonic() - started
    computed = targets.compute(bench.run)
    print()
    print(report.text_table(bench.run, computed))
    paths = report.write(bench.run, computed, args.out)
    print(f"\nwritten: {', '.join(str(path) for path in paths.values())} ({bench.run.seconds:.0f} s)")
    return 1 if bench.run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
