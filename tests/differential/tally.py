"""What the differential run saw, for the summary ``make differential`` prints."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: DIFFERENTIAL=full (make differential): the full product of the dimensions, else the pairwise cover.
FULL = os.environ.get("DIFFERENTIAL") == "full"


@dataclass
class Tally:
    combinations: int = 0
    accepted_by_both: int = 0
    refused_by_both: int = 0
    tampered_refused: int = 0
    #: (tamper, the STS's error class) -> how often: which check caught each tamper.
    refusals: dict[tuple[str, str], int] = field(default_factory=dict)
    disagreements: list[str] = field(default_factory=list)

    def record(self, label: str, xmlsec1_ok: bool, sts_verdict: str) -> None:
        self.combinations += 1
        sts_ok = sts_verdict.startswith("accepted:")
        if xmlsec1_ok and sts_ok:
            self.accepted_by_both += 1
        elif not xmlsec1_ok and not sts_ok:
            self.refused_by_both += 1
        else:
            self.disagreements.append(f"{label}: xmlsec1={'OK' if xmlsec1_ok else 'FAIL'} sts={sts_verdict}")

    def refused(self, how: str, verdict: str) -> None:
        self.tampered_refused += 1
        key = (how, verdict.split(":", 1)[0])
        self.refusals[key] = self.refusals.get(key, 0) + 1

    def summary(self, *, full: bool) -> list[str]:
        lines = [f"differential ({'full product' if full else 'pairwise cover'}): {self.combinations} combinations,"
                 f" {self.accepted_by_both} accepted by both, {self.refused_by_both} refused by both,"
                 f" {len(self.disagreements)} disagreements; {self.tampered_refused} tampered variants refused"]
        lines += [f"  tampered {how}: {error} x{count}" for (how, error), count in sorted(self.refusals.items())]
        lines += [f"  DISAGREE {line}" for line in self.disagreements]
        return lines


TALLY = Tally()
