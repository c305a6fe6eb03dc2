"""``sts token get|validate|renew|cancel`` against the live STS (click's runner, real HTTP on loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from live import free_port
from signing import key_pem, make_client
from sts.cli.main import main
from sts.config import load_settings
from sts.runtime import open_stores


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["token", *args])
    return result.exit_code, result.stdout, result.stderr


def _login(live_sts, demo, url: str | None = None) -> list[str]:
    return ["--sts", url or live_sts.sts_url, "--user", demo["user"], "--password", demo["password"]]


@pytest.mark.parametrize("wst", ["13", "2005"])
def test_get_validate_renew_cancel(live_sts, demo, tmp_path: Path, wst) -> None:
    token_file, renewed_file = tmp_path / "token.xml", tmp_path / "renewed.xml"
    login = [*_login(live_sts, demo), "--wst", wst]
    code, _, err = _run("get", *login, "--applies-to", demo["rp"], "--claim",
                        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "--out", str(token_file))
    assert code == 0, err
    assert etree.QName(etree.fromstring(token_file.read_bytes())).localname == "EncryptedAssertion"
    assert _run("validate", *login, str(token_file))[:2] == (0, "valid: The token is valid\n")
    code, _, err = _run("renew", *login, str(token_file), "--out", str(renewed_file))
    assert code == 0, err
    code, out, _ = _run("validate", *login, str(token_file))
    assert code == 2 and out.startswith("invalid:")
    assert _run("cancel", *login, str(renewed_file))[:2] == (0, "cancelled\n")


def test_get_takes_claim_short_names_and_refuses_unknown_ones(live_sts, demo, tmp_path: Path) -> None:
    token_file = tmp_path / "token.xml"
    code, _, err = _run("get", *_login(live_sts, demo), "--applies-to", demo["rp"], "--claim", "givenname",
                        "--out", str(token_file))
    assert code == 0, err
    code, _, err = _run("get", *_login(live_sts, demo), "--applies-to", demo["rp"], "--claim", "givenam")
    assert code == 2 and "unknown claim name 'givenam'" in err and "givenname" in err


def test_get_prints_the_token_and_accepts_the_wsdl_or_base_url(live_sts, demo) -> None:
    for url in (live_sts.sts_url + "?wsdl", live_sts.base_url):
        code, out, err = _run("get", *_login(live_sts, demo, url), "--applies-to", demo["rp"], "--digest",
                              "--token-type", "saml11", "--soap", "11")
        assert code == 0, err
        assert out.startswith("<") and "EncryptedData" in out


def test_get_symmetric_writes_the_proof_key(live_sts, demo, tmp_path: Path) -> None:
    proof = tmp_path / "proof.b64"
    code, _, err = _run("get", *_login(live_sts, demo), "--applies-to", demo["rp"], "--key-type", "symmetric",
                        "--out", str(tmp_path / "t.xml"), "--proof-out", str(proof))
    assert code == 0, err
    assert len(proof.read_text().strip()) == 44


def test_get_at_the_adfs_endpoint_without_wsdl(live_sts, demo) -> None:
    url = live_sts.base_url + "/adfs/services/trust/13/usernamemixed"
    code, out, err = _run("get", *_login(live_sts, demo, url), "--applies-to", demo["rp"])
    assert code == 0, err
    assert out.startswith("<")


def test_x509_credentials(live_sts, demo, sts_home, tmp_path: Path) -> None:
    key, cert, pem = make_client("cli-token-test")
    stores = open_stores(load_settings(sts_home))
    if stores.clients.get("cli-token-test") is None:
        stores.clients.add("cli-token-test", pem, [])
    (tmp_path / "c.key").write_bytes(key_pem(key))
    (tmp_path / "c.crt").write_bytes(cert.public_bytes(Encoding.PEM))
    code, out, err = _run("get", "--sts", live_sts.sts_url, "--cert", str(tmp_path / "c.crt"), "--key",
                          str(tmp_path / "c.key"), "--applies-to", demo["rp"], "--key-type", "public")
    assert code == 0, err


def test_faults_and_network_errors_are_plain(live_sts, demo, tmp_path: Path) -> None:
    code, _, err = _run("get", "--sts", live_sts.sts_url, "--user", "alice", "--password", "nope",
                        "--applies-to", demo["rp"])
    assert code == 1 and err == "error: wst:FailedAuthentication: Authentication failed\n"
    code, _, err = _run("get", *_login(live_sts, demo), "--applies-to", "https://unknown.example/")
    assert code == 1 and err.startswith("error: wst:InvalidScope: ") and "https://unknown.example/" in err
    code, _, err = _run("get", *_login(live_sts, demo, f"http://127.0.0.1:{free_port()}/services/sts"),
                        "--applies-to", demo["rp"])
    assert code == 1 and err.startswith("error: network: ") and "connection refused" in err
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    code, _, err = _run("validate", *_login(live_sts, demo), str(empty))
    assert code == 1 and "is empty" in err


def test_the_password_need_not_be_on_the_command_line(live_sts, demo, monkeypatch: pytest.MonkeyPatch) -> None:
    login = ["--sts", live_sts.sts_url, "--user", demo["user"]]
    result = CliRunner().invoke(main, ["token", "get", *login, "--password-stdin", "--applies-to", demo["rp"]],
                                input=demo["password"] + "\n")
    assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("STS_PASSWORD", demo["password"])
    result = CliRunner().invoke(main, ["token", "get", *login, "--applies-to", demo["rp"]])
    assert result.exit_code == 0, result.stderr
