"""The `sts` command as a user types it: a real process, a temporary home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from live import free_port, wait_healthy
from sts.cli.main import main
from sts.tokens.crypto.keys import generate_key_and_cert
from trust_client import post, rst_envelope


def sts(home: Path, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STS_PASSWORD_HASH_N": "16"}
    result = subprocess.run([sys.executable, "-m", "sts", "--home", str(home), *args], input=input,
                            capture_output=True, text=True, timeout=60, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"sts {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    sts(tmp_path / "home", "init")
    return tmp_path / "home"


def test_init_is_idempotent_and_never_overwrites_keys(home: Path) -> None:
    key = (home / "keys" / "sts-signing.key").read_bytes()
    assert "already initialised" in sts(home, "init").stdout
    assert (home / "keys" / "sts-signing.key").read_bytes() == key
    assert oct((home / "keys" / "sts-signing.key").stat().st_mode & 0o777) == "0o600"


def test_cert_prints_pem(home: Path) -> None:
    out = sts(home, "cert").stdout
    assert out.startswith("-----BEGIN CERTIFICATE-----") and out.rstrip().endswith("-----END CERTIFICATE-----")


def test_user_lifecycle(home: Path) -> None:
    sts(home, "user", "add", "bob", "--password", "pw1", "--claim", "urn:c:age=42", "--claim", "urn:c:role=a")
    sts(home, "user", "add", "carol", "--password-stdin", input="pw2\n")
    listing = sts(home, "user", "list").stdout
    assert "bob" in listing and "urn:c:age = 42" in listing and "carol" in listing and "alice" in listing
    assert "pw1" not in listing
    duplicate = sts(home, "user", "add", "bob", "--password", "x", check=False)
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    sts(home, "user", "remove", "bob")
    assert "bob" not in sts(home, "user", "list").stdout
    missing = sts(home, "user", "remove", "bob", check=False)
    assert missing.returncode != 0 and "no user" in missing.stderr


def test_user_add_prompts_for_password(home: Path) -> None:
    sts(home, "user", "add", "dave", input="s3cret\ns3cret\n")
    assert "dave" in sts(home, "user", "list").stdout


def test_bad_claim_syntax(home: Path) -> None:
    result = sts(home, "user", "add", "eve", "--password", "x", "--claim", "nonsense", check=False)
    assert result.returncode != 0 and "URI=VALUE" in result.stderr


def test_rp_lifecycle(home: Path, tmp_path: Path) -> None:
    _, cert = generate_key_and_cert("rp.example")
    cert_file = tmp_path / "rp.crt"
    cert_file.write_bytes(cert)
    sts(home, "rp", "add", "--endpoint", "https://rp.example/app", "--cert", str(cert_file), "--token-type", "saml11",
        "--require-claim", "urn:c:age", "--permit-claim", "urn:c:role")
    listing = sts(home, "rp", "list").stdout
    assert "https://rp.example/app" in listing and "saml11" in listing and "CN=rp.example" in listing
    assert "urn:c:age" in listing
    sts(home, "rp", "add", "--endpoint", "https://plain.example/", "--no-encrypt")
    assert "not encrypted" in sts(home, "rp", "list").stdout
    sts(home, "rp", "remove", "https://rp.example/app")
    assert "rp.example/app" not in sts(home, "rp", "list").stdout


@pytest.mark.parametrize("content,message", [
    (b"not a certificate", "certificate"),
    (None, "private key"),
])
def test_rp_add_refuses_bad_certificates(home: Path, tmp_path: Path, content: bytes | None, message: str) -> None:
    key, _ = generate_key_and_cert("oops")
    path = tmp_path / "bad.pem"
    path.write_bytes(content if content is not None else key)
    result = sts(home, "rp", "add", "--endpoint", "https://x.example/", "--cert", str(path), check=False)
    assert result.returncode != 0 and message in result.stderr
    assert "x.example" not in sts(home, "rp", "list").stdout


def test_rp_add_requires_cert_or_no_encrypt(home: Path) -> None:
    result = sts(home, "rp", "add", "--endpoint", "https://x.example/", check=False)
    assert result.returncode != 0 and "--cert" in result.stderr


def test_rp_add_refuses_relative_endpoint(home: Path) -> None:
    result = sts(home, "rp", "add", "--endpoint", "not/a/url", "--no-encrypt", check=False)
    assert result.returncode != 0 and "absolute" in result.stderr


def test_rp_add_expands_claim_names_refuses_unknown_ones_and_is_audited(home: Path, tmp_path: Path) -> None:
    import getpass

    from sts.config import load_settings
    from sts.runtime import open_stores
    from sts.store.audit import AuditTrail

    email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    added = sts(home, "rp", "add", "--endpoint", "https://claims.example/", "--no-encrypt", "--require-claim",
                "emailaddress", "--permit-claim", "urn:c:age", "--key-transport", "rsa-1_5")
    assert added.stdout == "added relying party https://claims.example/\n"
    warnings = added.stderr.splitlines()
    assert any(w.startswith("warning: legacy algorithm rsa-1_5 for https://claims.example/: ") for w in warnings)
    assert "warning: claim URI urn:c:age is not in the claim dictionary" in added.stderr
    bogus = sts(home, "rp", "add", "--endpoint", "https://bogus.example/", "--no-encrypt", "--require-claim",
                "bogusclaimname", check=False)
    assert bogus.returncode == 1 and len(bogus.stderr.splitlines()) == 1
    assert bogus.stderr.startswith("Error: --require-claim: unknown claim name 'bogusclaimname'")
    assert "emailaddress" in bogus.stderr and "givenname" in bogus.stderr
    stores = open_stores(load_settings(home))
    try:
        party = stores.relying_parties.get("https://claims.example/")
        assert party is not None and party.required_claims == (email,)
        assert stores.relying_parties.get("https://bogus.example/") is None
        record = AuditTrail(stores.engine).search(event="rp.add", outcome="ok")[0]
    finally:
        stores.close()
    assert record.actor == f"cli:{getpass.getuser()}" and record.subject == "https://claims.example/"
    assert record.detail["before"] is None and record.detail["after"]["required_claims"] == [email]
    assert record.detail["after"]["key_transport"] == "rsa-1_5" and len(record.detail["warnings"]) == 2


def test_uninitialised_home_says_what_to_do(tmp_path: Path) -> None:
    result = sts(tmp_path / "nothing", "user", "list", check=False)
    assert result.returncode != 0 and "sts --home" in result.stderr and "init" in result.stderr


def test_bad_config_says_which_setting(home: Path) -> None:
    (home / "sts.toml").write_text((home / "sts.toml").read_text() + "\nno_such_knob = 1\n")
    result = sts(home, "user", "list", check=False)
    assert result.returncode != 0 and "no_such_knob" in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_issues_tokens(home: Path, workers: int) -> None:
    port = free_port()
    env = {**os.environ, "STS_PASSWORD_HASH_N": "16"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, process)
        for _ in range(4):
            body = rst_envelope(user="alice", password="wonderland", applies_to="https://service-a.example/",
                                digest=True)
            assert post(base + "/services/sts", body).status == 200
        # A replayed UsernameToken fails whichever worker process gets it: the nonce lives in the database.
        replays = [post(base + "/services/sts", body) for _ in range(6)]
        assert [r.fault_code[1] for r in replays] == ["MessageExpired"] * 6
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "demo user: alice" in output and f"{base}/services/sts" in output


def test_init_where_the_home_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    result = sts(tmp_path / "afile" / "home", "init", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    home = tmp_path / "afile" / "home"
    assert result.stderr == f"Error: cannot initialise {home}: {home}: Not a directory\n"


def test_init_with_a_broken_config_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "sts.toml").write_text("bogus = [\n")
    result = sts(tmp_path / "home", "init", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Error: {tmp_path / 'home' / 'sts.toml'}: ")


@pytest.mark.parametrize("url,message", [
    ("nonsense", "setting database_url: Could not parse"),
    ("nosuchdialect://u:secret@127.0.0.1:1/db", "setting database_url: Can't load plugin"),
    ("sqlite:////nonexistent-dir/sts.db", "cannot open the database sqlite:////nonexistent-dir/sts.db: "),
])
def test_bad_database_url_is_one_line(home: Path, url: str, message: str) -> None:
    for args in (("user", "list"), ("explain", "--user", "alice", "--rp", "https://service-a.example/")):
        result = CliRunner().invoke(main, ["--home", str(home), *args], env={"STS_DATABASE_URL": url})
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert result.output.startswith(f"Error: {message}") and len(result.output.splitlines()) == 1
        assert "secret" not in result.output


def test_serve_refuses_bad_tls_files_before_starting(home: Path, tmp_path: Path) -> None:
    key, cert = generate_key_and_cert("tls.example")
    other_key, _ = generate_key_and_cert("other.example")
    for name, data in (("key.pem", key), ("cert.pem", cert), ("other.pem", other_key), ("junk", b"junk")):
        (tmp_path / name).write_bytes(data)
    cases = [
        ("junk", "key.pem", None, f"--ssl-certfile {tmp_path / 'junk'}: not a PEM or DER X.509 certificate"),
        ("cert.pem", "junk", None, f"--ssl-keyfile {tmp_path / 'junk'}: not a PEM or DER private key"),
        ("cert.pem", "other.pem", None, f"--ssl-keyfile {tmp_path / 'other.pem'} is not the private key of "
                                        f"--ssl-certfile {tmp_path / 'cert.pem'}"),
        ("cert.pem", "key.pem", "junk", f"--ssl-client-ca {tmp_path / 'junk'}: not a PEM certificate bundle"),
    ]
    for certfile, keyfile, client_ca, message in cases:
        args = ["serve", "--port", str(free_port()), "--workers", "2", "--ssl-certfile", str(tmp_path / certfile),
                "--ssl-keyfile", str(tmp_path / keyfile)]
        if client_ca:
            args += ["--ssl-client-ca", str(tmp_path / client_ca)]
        result = sts(home, *args, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"Error: {message}") and len(result.stderr.splitlines()) == 1
        assert "sts serving" not in result.stdout
