"""The client's transport trusts the CA file it is given, whatever REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE say."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from live import init_home_with, make_tls_files, running
from sts.client.transport import make_transport


def test_an_explicit_ca_file_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = make_tls_files(tmp_path)
    home = init_home_with(tmp_path / "home")
    with running(home, ssl=(cert, key)) as live:
        # The environment names a bundle that does not hold the test certificate (the system's, as on CI machines).
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
        monkeypatch.setenv("CURL_CA_BUNDLE", requests.certs.where())
        session = make_transport(verify=cert).session
        assert session.get(f"{live.base_url}/healthz", timeout=10).status_code == 200
        # With the default, the environment's bundle applies (and does not know the test certificate).
        with pytest.raises(requests.exceptions.SSLError):
            make_transport().session.get(f"{live.base_url}/healthz", timeout=10)
