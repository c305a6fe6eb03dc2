"""``python -m interop``: run the suite against our STS (default) or another one, print and write the report.

Exit codes: 0 every cell passed or was not applicable/skipped with a reason; 1 some cell failed; 2 the suite
could not run (a broken fixture or sidecar, a target that does not answer, bad options).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from lxml import etree


from .freshen import TokenSource
from .matrix import (ECDSA_PROFILES, TOKEN_PROFILES, ClientRow, TokenRow, client_cases, ecdsa_case_names,
                     issue_token, issue_token_cases, run_client_cases, run_token_cases)
from .model import Verdict
from .peers.registry import client_peers, verifier_peers
from .replay import Replayer
from .report import Report, now, write_reports
from .sidecar import Fixture, FixtureError, discover
from .target import Target, add_target_options, local_sts, target_from_options

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        fixtures = {f.name: f for f in discover(args.fixtures)}
    except FixtureError as err:
        print(f"interop: broken fixture: {err}", file=sys.stderr)
        return 2
    started, clock = now(), time.monotonic()
    try:
        with ExitStack() as stack:
            target = stack.enter_context(target_from_options(args))
            ecdsa = (stack.enter_context(local_sts(ecdsa=True))
                     if target.ours and not (args.no_ecdsa or args.skip_peers) else None)
            report = _run(args, target, ecdsa, fixtures, started, clock)
    except (RuntimeError, OSError) as err:
        print(f"interop: cannot run: {err}", file=sys.stderr)
        return 2
    markdown, page = write_reports(report, args.out)
    print(f"\n{'FAILED' if report.failed else 'passed'}: {report.summary()}")
    print(f"report: {markdown} and {page}")
    if args.strict and report.skipped:
        print(f"--strict: {len(report.skipped)} skipped cells: " + "; ".join(sorted(set(report.skipped)))[:2000])
        return 1
    return 1 if report.failed else 0


def _run(args: argparse.Namespace, target: Target, ecdsa: Target | None, fixtures: dict[str, Fixture],
         started: datetime, clock: float) -> Report:
    progress = _progress(args.quiet)
    verifiers, clients = verifier_peers(), client_peers()
    results = []
    if not args.skip_fixtures:
        replayer = Replayer(target, _token_source(target), fixtures)
        for index, fixture in enumerate(fixtures.values(), 1):
            result = replayer.run(fixture)
            results.append(result)
            marks = ", ".join(f"{k} {v.status.value}" for k, v in result.checks.items())
            progress(f"[{index}/{len(fixtures)}] {fixture.name}: {marks}")
    token_rows: list[TokenRow] = []
    client_rows: list[ClientRow] = []
    if not args.skip_peers:
        cases = issue_token_cases(target, TOKEN_PROFILES)
        if ecdsa is not None:
            cases += issue_token_cases(ecdsa, ECDSA_PROFILES)
        elif not args.no_ecdsa:
            cases += [TokenRow(name, name, issue=Verdict.not_applicable(
                "ours only: the ECDSA cases come from a second STS of this project with an EC signing key"))
                for name in ecdsa_case_names()]
        token_rows = run_token_cases(cases, verifiers, progress)
        client_rows = run_client_cases(target, client_cases(target), clients, progress)
    peers = [(p.name, p.about, p.unavailable()) for p in verifiers] + [
        (p.name, p.about, p.unavailable()) for p in clients]
    return Report(target.base_url, target.ours, peers, token_rows, client_rows, results,
                  started, time.monotonic() - clock)


def _progress(quiet: bool) -> Callable[[str], None]:
    def say(line: str) -> None:
        if not quiet or re.search(r"\bfail\b", line):
            print(line, flush=True)
    return say


def _token_source(target: Target) -> TokenSource:
    """Fresh tokens of a profile from the target, for Validate/Renew/Cancel replays."""
    def issue(profile: str) -> etree._Element:
        rp = target.rp(profile)
        if rp is None:
            raise ValueError(f"the target has no {profile} relying party to issue a target token for")
        return issue_token(target, rp).token_element()
    return issue


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m interop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_options(parser)
    parser.add_argument("--fixtures", type=Path, default=ROOT / "fixtures" / "recorded")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "interop")
    parser.add_argument("--skip-fixtures", action="store_true", help="only the peer matrices")
    parser.add_argument("--skip-peers", action="store_true", help="only the recorded fixtures")
    parser.add_argument("--no-ecdsa", action="store_true", help="no ECDSA-signed token cases")
    parser.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    parser.add_argument("--strict", action="store_true",
                        help="a skipped peer fails the run (CI: every peer must have been installed)")
    return parser
