"""Everything one benchmark run measured, in the order it was measured (what the report and the targets read)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.limits import SignRate
from bench.peers import PeerRate
from bench.scenarios import Measurement
from bench.verifier import VerifierRate


@dataclass(frozen=True)
class LimitSample:
    """A raw signature rate, and when it was taken (before or after which server session)."""

    when: str
    rate: SignRate

    def as_dict(self) -> dict[str, object]:
        return {"when": self.when, **self.rate.as_dict()}


@dataclass
class RunResults:
    mode: str
    started: str
    limits: list[LimitSample] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    verifier: list[VerifierRate] = field(default_factory=list)
    peers: list[PeerRate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # what went wrong: errors, a peer that is not installed
    password_cache: bool = False  # whether the STS has password_cache_seconds (warm PasswordText measured)
    seconds: float = 0.0

    def find(self, scenario: str) -> Measurement | None:
        return next((m for m in self.measurements if m.scenario == scenario), None)

    def limit_mean(self, algorithm_prefix: str) -> float:
        rates = [s.rate.per_cpu_second for s in self.limits if s.rate.algorithm.startswith(algorithm_prefix)]
        return sum(rates) / len(rates) if rates else 0.0
