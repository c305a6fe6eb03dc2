"""The console back-end's commands: `sts keys`, `sts rp update`/`list` output, `sts rp add --metadata` errors."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sts.cli.main import main
from sts.tokens.crypto.keys import generate_key_and_cert
from sts.home import DEMO_RP_ENDPOINT, init_home


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    return result.exit_code, result.output


def test_keys_list_and_import(tmp_path: Path) -> None:
    init_home(tmp_path, demo=False)
    code, out = _run(tmp_path, "keys", "list")
    assert code == 0 and out.startswith("sts-signing  active")
    key_pem, cert_pem = generate_key_and_cert("imported signing")
    (tmp_path / "k.pem").write_bytes(key_pem)
    (tmp_path / "c.pem").write_bytes(cert_pem)
    code, out = _run(tmp_path, "keys", "rollover", "--at", "2099-01-01T00:00:00", "--import-key",
                     str(tmp_path / "k.pem"), "--import-cert", str(tmp_path / "c.pem"))
    assert code == 0 and "2099-01-01T00:00:00+00:00" in out
    code, out = _run(tmp_path, "keys", "list")
    assert "CN=imported signing" in out and "next" in out
    other_key, _ = generate_key_and_cert("other")
    (tmp_path / "other.pem").write_bytes(other_key)
    code, out = _run(tmp_path, "keys", "rollover", "--import-key", str(tmp_path / "other.pem"), "--import-cert",
                     str(tmp_path / "c.pem"))
    assert code != 0 and "does not belong" in out
    code, out = _run(tmp_path, "keys", "rollover", "--at", "yesterday")
    assert code != 0 and "ISO 8601" in out


def test_rp_update_shows_in_rp_list(tmp_path: Path) -> None:
    init_home(tmp_path)
    code, _ = _run(tmp_path, "rp", "update", DEMO_RP_ENDPOINT, "--allow-token-type", "saml20", "--allow-key-type",
                   "bearer", "--allow-key-type", "public", "--audience", "urn:aud:x", "--max-lifetime", "600")
    assert code == 0
    code, out = _run(tmp_path, "rp", "list")
    assert "allowed token types: saml20" in out and "additional audiences: urn:aud:x" in out
    assert "/Bearer" in out and "/PublicKey" in out and "(max 600s)" in out
    code, _ = _run(tmp_path, "rp", "update", DEMO_RP_ENDPOINT, "--clear-audiences", "--allow-key-type", "any")
    code, out = _run(tmp_path, "rp", "list")
    assert "additional audiences" not in out and "allowed key types" not in out


def test_rp_add_metadata_errors(tmp_path: Path) -> None:
    init_home(tmp_path, demo=False)
    (tmp_path / "bad.xml").write_bytes(b"<x/>")
    code, out = _run(tmp_path, "rp", "add", "--metadata", str(tmp_path / "bad.xml"))
    assert code != 0 and "EntityDescriptor" in out
    code, out = _run(tmp_path, "rp", "add", "--metadata", str(tmp_path / "missing.xml"))
    assert code != 0
