"""The attack suite's fixtures: ``target`` (see attack_target.py) and the valid request after every STS case."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509

from attack_target import PLAIN_RP, SECOND_USER, Target, prepare_home, remote_target
from live import LiveServer
from sts.config import load_settings


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    remote = remote_target()
    if remote is not None:
        return remote
    live: LiveServer = request.getfixturevalue("live_sts")
    demo: dict[str, str] = request.getfixturevalue("demo")
    prepare_home(live.home)
    cert = x509.load_pem_x509_certificate(load_settings(live.home).signing_cert_path.read_bytes())
    return Target(live.sts_url, demo["user"], demo["password"], PLAIN_RP, cert, live.home, SECOND_USER)


@pytest.fixture(autouse=True)
def _valid_request_still_works(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every STS case (those aimed at ``target`` or at our ``live_sts``): a valid request still gets a token."""
    aimed = "target" in request.fixturenames or "live_sts" in request.fixturenames
    target: Target | None = request.getfixturevalue("target") if aimed else None
    yield
    if target is not None:
        target.assert_still_issues()
