"""`sts client add/list/remove` as a user types them: a real process, a temporary home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from signing import key_pem, make_client
from test_cli import sts


@pytest.fixture
def home(tmp_path: Path) -> Path:
    sts(tmp_path / "home", "init")
    return tmp_path / "home"


def test_client_lifecycle(home: Path, tmp_path: Path) -> None:
    _, cert, pem = make_client("svc")
    (tmp_path / "svc.crt").write_bytes(pem)
    added = sts(home, "client", "add", "svc", "--cert", str(tmp_path / "svc.crt"), "--claim", "role=robot",
                "--allow-sha1")
    assert "added client svc" in added.stdout and cert.fingerprint(hashes.SHA256()).hex(":").upper() in added.stdout
    assert added.stderr.startswith("warning: legacy algorithm rsa-sha1 for client svc: ")
    listing = sts(home, "client", "list").stdout
    assert "svc (sha1 allowed)" in listing and "CN=svc" in listing
    assert "http://schemas.microsoft.com/ws/2008/06/identity/claims/role = robot" in listing  # the short name expanded
    duplicate = sts(home, "client", "add", "svc", "--cert", str(tmp_path / "svc.crt"), check=False)
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    same_cert = sts(home, "client", "add", "svc2", "--cert", str(tmp_path / "svc.crt"), check=False)
    assert same_cert.returncode != 0 and "already registered for client svc" in same_cert.stderr
    sts(home, "client", "remove", "svc")
    assert "svc" not in sts(home, "client", "list").stdout
    missing = sts(home, "client", "remove", "svc", check=False)
    assert missing.returncode != 0 and "no client" in missing.stderr


def test_client_add_refuses_keys_expired_certs_and_user_names(home: Path, tmp_path: Path) -> None:
    key, _, pem = make_client("svc")
    (tmp_path / "svc.key").write_bytes(key_pem(key))
    (tmp_path / "both.pem").write_bytes(pem + key_pem(key))
    for name in ("svc.key", "both.pem"):
        result = sts(home, "client", "add", "svc", "--cert", str(tmp_path / name), check=False)
        assert result.returncode != 0 and "private key" in result.stderr
    _, _, old = make_client("old", not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    (tmp_path / "old.crt").write_bytes(old)
    result = sts(home, "client", "add", "old", "--cert", str(tmp_path / "old.crt"), check=False)
    assert result.returncode != 0 and "expired" in result.stderr
    (tmp_path / "svc.crt").write_bytes(pem)
    result = sts(home, "client", "add", "alice", "--cert", str(tmp_path / "svc.crt"), check=False)
    assert result.returncode != 0 and "user named alice" in result.stderr
    result = sts(home, "client", "add", "x", "--cert", str(tmp_path / "svc.crt"), "--claim", "novalue", check=False)
    assert result.returncode != 0 and "URI=VALUE" in result.stderr
    result = sts(home, "client", "add", "x", "--cert", str(tmp_path / "svc.crt"), "--claim", "mail=x", check=False)
    assert result.returncode == 1 and result.stderr.startswith("Error: --claim: unknown claim name 'mail'")
