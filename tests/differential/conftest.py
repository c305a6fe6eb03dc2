"""The differential test's shared state: the verifiers (module-wide, keys made once) and the run's tally.

``DIFFERENTIAL=full`` (``make differential``) runs the full product of the dimensions and prints a summary at
the end; without it the pairwise cover runs (``make test``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tally import FULL, TALLY
from verdicts import Verifiers

@pytest.fixture(scope="session")
def verifiers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verifiers]:
    workdir: Path = tmp_path_factory.mktemp("differential")
    verifiers = Verifiers.create(workdir)
    yield verifiers
    verifiers.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.combinations:
        for line in TALLY.summary(full=FULL):
            terminalreporter.write_line(line)
