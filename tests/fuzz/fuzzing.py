"""Fuzzing with hypothesis (settings and seeds shared by the targets): the number of examples per target comes from FUZZ_EXAMPLES (``make fuzz`` sets 20000;
``make test`` leaves it unset for a short run), every example must finish within a deadline (no hang)."""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from lxml import etree

from sts import ns
from sts.uris import SoapVersion, TrustVersion
from sts.xmltime import format_datetime, utcnow
from trust_client import rst_envelope

#: Short by default so that the whole directory runs in well under a minute in ``make test``.
DEFAULT_EXAMPLES = 40
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or DEFAULT_EXAMPLES)

settings.register_profile(
    "fuzz",
    max_examples=EXAMPLES,
    # Generous on a busy two-core machine; a hang (entity expansion, quadratic parsing) blows far past it.
    deadline=timedelta(seconds=5),
    database=None,  # nothing written to the work tree; failures are printed with their reproducer
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
    print_blob=True,
)
fuzz_settings = settings(settings.get_profile("fuzz"))


# --- seeds: valid messages to mutate ---------------------------------------------------------------------------------

HOSTILE = Path(__file__).resolve().parents[2] / "fixtures" / "hostile"
RP = "https://rp.example/"
#: Seeds carry a fresh Timestamp: rebuilt when older than this (a long ``make fuzz`` outlives a five-minute one).
_SEED_AGE = 60.0


class FreshSeeds:
    """Valid request envelopes (built now) plus the hostile fixture files."""

    def __init__(self, build: Callable[[], list[bytes]]) -> None:
        self._build = build
        self._built_at = -_SEED_AGE
        self._seeds: list[bytes] = []

    def __call__(self) -> list[bytes]:
        if time.monotonic() - self._built_at > _SEED_AGE:
            self._seeds = self._build()
            self._built_at = time.monotonic()
        return self._seeds


def hostile_files() -> list[bytes]:
    return [path.read_bytes() for path in sorted(HOSTILE.glob("*.xml"))]


def request_envelopes(user: str, password: str, applies_to: str = RP) -> list[bytes]:
    """Issue (SOAP 1.2/1.1, WS-Trust 1.3/2005, text and digest passwords, claims, lifetime) and a Validate."""
    now = utcnow()
    seeds = [
        rst_envelope(user=user, password=password, applies_to=applies_to),
        rst_envelope(user=user, password=password, applies_to=applies_to, version=TrustVersion.WST2005,
                     soap=SoapVersion.SOAP11, digest=True),
        rst_envelope(user=user, password=password, applies_to=applies_to,
                     claims=((f"{ns.IDENTITY}/claims/givenname", False),),
                     lifetime=(format_datetime(now), format_datetime(now + timedelta(hours=1)))),
        rst_envelope(user=user, password=password, applies_to=None, request_type="Validate",
                     token_type_uri=TrustVersion.WST13.uri("RSTR/Status"),
                     targets={"ValidateTarget": etree.fromstring(SAMPLE_ASSERTION)}),
    ]
    return seeds


#: A small SAML 2.0 assertion shape (unsigned) to stand as a Validate target in request seeds.
SAMPLE_ASSERTION = (
    b'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" '
    b'IssueInstant="2030-01-01T00:00:00Z"><saml:Issuer>https://sts.example/</saml:Issuer><saml:Subject>'
    b'<saml:NameID>alice</saml:NameID></saml:Subject></saml:Assertion>'
)


# --- figures: what each target saw (printed at the end of the run by conftest.py) -------------------------------------

TALLY: dict[str, Counter[str]] = defaultdict(Counter)
STARTED: dict[str, float] = {}
ELAPSED: dict[str, float] = defaultdict(float)


def tally(target: str, outcome: str, started: float) -> None:
    """Count one example of ``target`` by outcome (``ok`` or the refusal's class/code) and its time."""
    TALLY[target][outcome] += 1
    ELAPSED[target] += time.monotonic() - started


def figures() -> list[str]:
    lines = []
    for target, outcomes in sorted(TALLY.items()):
        total = sum(outcomes.values())
        seconds = ELAPSED[target]
        top = ", ".join(f"{name} {count}" for name, count in outcomes.most_common(6))
        lines.append(f"{target}: {total} inputs in {seconds:.1f} s ({total / max(seconds, 1e-9):.0f}/s); {top}")
    return lines
