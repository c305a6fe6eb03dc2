"""Print what each fuzz target saw (inputs, rate, outcomes) at the end of the run: ``make fuzz``'s figures."""

from __future__ import annotations

import pytest

from fuzzing import EXAMPLES, figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = figures()
    if lines:
        terminalreporter.section(f"fuzz figures (FUZZ_EXAMPLES={EXAMPLES} per target)")
        for line in lines:
            terminalreporter.write_line(line)
