"""``sts token verify`` and ``sts token show`` on tokens from the live STS and recorded ones."""

from __future__ import annotations


import json

from click.testing import CliRunner
from lxml import etree

from sts.cli.main import main
from sts.config import load_settings
from sts.tokens.crypto.keys import generate_key_and_cert
from trust_client import post, rst_envelope
from paths import FIXTURES  # type: ignore[import-not-found]


DOB = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/dateofbirth"


def _rstr_file(live, demo, tmp_path) -> str:
    reply = post(live.sts_url, rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"],
                                            claims=((DOB, False),)))
    path = tmp_path / "rstr.xml"
    path.write_bytes(etree.tostring(reply.root))
    return str(path)


def _args(live, demo, *extra: str) -> list[str]:
    return ["--sts-cert", str(load_settings(live.home).signing_cert_path),
            "--rp-key", str(live.home / "demo" / "rp.key"), "--audience", demo["rp"], *extra]


def test_verify_valid_token_table_and_json(live_sts, demo, tmp_path) -> None:
    path = _rstr_file(live_sts, demo, tmp_path)
    result = CliRunner().invoke(main, ["token", "verify", path, *_args(live_sts, demo, "--require-claim", DOB)])
    assert result.exit_code == 0, result.output
    assert "alice" in result.output and "1990-05-04" in result.output
    result = CliRunner().invoke(main, ["token", "verify", path, *_args(live_sts, demo), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["subject"] == "alice" and data["claims"][DOB] == ["1990-05-04"]


def test_verify_rejection_exit_1_reason_on_stderr(live_sts, demo, tmp_path) -> None:
    path = _rstr_file(live_sts, demo, tmp_path)
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
    result = runner.invoke(main, ["token", "verify", path, "--sts-cert", str(load_settings(live_sts.home).signing_cert_path),
                                  "--rp-key", str(live_sts.home / "demo" / "rp.key"),
                                  "--audience", "https://elsewhere.example/"])
    assert result.exit_code == 1
    assert "token rejected:" in result.stderr and "audience" in result.stderr
    result = runner.invoke(main, ["token", "verify", str(FIXTURES / "hostile" / "xxe-file.xml"), *_args(live_sts, demo)])
    assert result.exit_code == 1 and "token rejected:" in result.stderr


def test_show_text_and_json(live_sts, demo, tmp_path) -> None:
    path = _rstr_file(live_sts, demo, tmp_path)
    result = CliRunner().invoke(main, ["token", "show", path])
    assert result.exit_code == 0 and all(line.startswith("UNVERIFIED") for line in result.output.splitlines())
    recorded = FIXTURES / "recorded" / "adal-python" / "adfs-wstrust13-soap12-rstrc-issue-saml11-bearer.xml"
    result = CliRunner().invoke(main, ["token", "show", str(recorded), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["verified"] is False and data["responses"][0]["token"]["format"] == "SAML 1.1 assertion"
    result = CliRunner().invoke(main, ["token", "show", str(FIXTURES / "hostile" / "billion-laughs.xml")])
    assert result.exit_code != 0 and "cannot decode" in result.output


def test_show_and_verify_a_missing_file_is_one_line(tmp_path) -> None:
    missing = tmp_path / "missing.xml"
    (tmp_path / "sts.crt").write_bytes(generate_key_and_cert("sts")[1])
    for args in (["show", str(missing)], ["verify", str(missing), "--sts-cert", str(tmp_path / "sts.crt"),
                                          "--audience", "https://rp.example/"]):
        result = CliRunner().invoke(main, ["token", *args])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert result.output == f"Error: cannot read the token: {missing}: No such file or directory\n"
