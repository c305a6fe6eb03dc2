"""Where the project's files are, for tests at any depth of tests/ (the test tree mirrors the package)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT_ROOT / "fixtures"
