"""A newcomer's first minute: what ``make run`` prints, the command it names, and the README's "Try it" snippet.

``make run`` is ``sts --home ./var init`` then ``sts --home ./var serve``; here the same two commands run as real
processes on a free loopback port, from the project root as a newcomer would.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from live import wait_healthy

from sts.config import load_settings
from sts.runtime import build_runtime
from sts.web.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]
STS = Path(sys.executable).parent / "sts"
BANNER_LINES = 5  # the endpoints, the two demo lines, the console, the admin command
ADMIN_PASSWORD = "a long enough passphrase"


@dataclass
class Served:
    home: Path
    port: int
    banner: list[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``sts init`` + ``sts serve`` as ``make run`` runs them, started from the project root."""
    home = tmp_path_factory.mktemp("newcomer") / "var"
    port = free_port()
    subprocess.run([str(STS), "--home", str(home), "init"], cwd=ROOT, check=True, capture_output=True, timeout=60)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([str(STS), "--home", str(home), "serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline().rstrip("\n") for _ in range(BANNER_LINES)]
        wait_healthy(f"http://127.0.0.1:{port}", process)
        yield Served(home, port, banner)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_banner_names_the_sts_and_the_console(served: Served) -> None:
    base = f"http://127.0.0.1:{served.port}"
    assert served.banner[0].startswith(f"sts serving {base}/services/sts ")
    assert f"console {base}/console/" in served.banner
    with urllib.request.urlopen(f"{base}/console/") as reply:  # follows the redirect to the sign-in page
        assert reply.status == 200
        assert "/console/login" in reply.url


def test_the_printed_admin_command_creates_the_first_admin(served: Served) -> None:
    line = next(line for line in served.banner if line.startswith("no administrator yet"))
    command = line.split("create the first one with", 1)[1].strip()
    program = STS.relative_to(ROOT) if STS.is_relative_to(ROOT) else STS  # `.venv/bin/sts` after `make run`
    assert command == f"{program} --home {served.home} admin add root"
    # As printed, from the project root; the prompt asks for the password twice.
    done = subprocess.run(shlex.split(command), cwd=ROOT, input=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    runtime = build_runtime(load_settings(served.home))
    try:
        record = runtime.stores.users.get("root")
        assert record is not None and record.admin
        assert runtime.stores.users.check_password("root", ADMIN_PASSWORD)
    finally:
        runtime.stores.close()


def _try_it_snippet() -> str:
    """The shell block after "Try it" in the README, exactly as a reader would paste it."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"^Try it.*?\n```sh\n(.*?)\n```", readme, re.DOTALL | re.MULTILINE)
    assert found, "the README has no 'Try it' shell block"
    return found.group(1)


def _test_only_modules() -> set[str]:
    """Top-level modules of the packages only the test and notebook extras install (pytest, msal, ...)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[=<>!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-")
             for group in extras.values() for spec in group}
    return {module for module, dists in packages_distributions().items()
            if any(d.lower().replace("_", "-") in names for d in dists) and module.isidentifier()}


def test_readme_try_it_runs_with_what_make_run_installs(served: Served, tmp_path: Path) -> None:
    # Shadow every module of the test extras, so that the snippet fails as it would after `make run` alone.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    for module in _test_only_modules():
        (shadow / f"{module}.py").write_text(f"raise ImportError('{module} is not installed by make run')\n")
    snippet = _try_it_snippet().replace("127.0.0.1:8080", f"127.0.0.1:{served.port}")
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    done = subprocess.run(["bash", "-c", snippet], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "RequestSecurityTokenResponse" in done.stdout
    assert "EncryptedAssertion" in done.stdout or "EncryptedData" in done.stdout
