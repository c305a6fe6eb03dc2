"""Whatever the library imports, `make run` installs: every third-party module imported anywhere in sts/ (deferred
imports included) belongs to a distribution of the project's main dependencies, or to one they pull in."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "sts").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"sts", "__future__"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _main_closure() -> set[str]:
    """The main dependencies and, transitively, what they require (extras left out)."""
    pending = [re.split(r"[=<>!~\[; ]", spec, maxsplit=1)[0]
               for spec in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    seen: set[str] = set()
    while pending:
        name = _normal(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or ()
        except PackageNotFoundError:  # a requirement for another platform (its marker is false here)
            continue
        for requirement in requires:
            if "extra ==" not in requirement:
                pending.append(re.split(r"[=<>!~\[; (]", requirement, maxsplit=1)[0])
    return seen


def test_every_module_the_library_imports_comes_with_make_run() -> None:
    providers = packages_distributions()
    installed_by_make_run = _main_closure()
    missing = {module: providers.get(module) for module in _imported_top_level_modules()
               if not any(_normal(d) in installed_by_make_run for d in providers.get(module, []))}
    assert missing == {}, f"imported by sts/ but not installed by `make run` (add to [project] dependencies): {missing}"
