"""``sts check-config``'s core: each class of unsafe setting is found on a real home, and a fresh home is clean."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sts.admin import users as user_core
from sts.admin.base import Actor, AdminContext
from sts.admin.config_check import Bind, Finding, check_configuration, key_permission_findings
from sts.config import load_settings
from sts.home import init_home, open_stores
from sts.model import RelyingParty
from sts.tokens.crypto.keys import generate_key_and_cert
from sts.uris import DataEncryption, KeyTransport, SignatureAlgorithm

STRONG = "correct horse battery staple"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    init_home(path)
    (path / "sts.toml").write_text((path / "sts.toml").read_text().replace("password_hash_n = 32768",
                                                                           "password_hash_n = 16"))
    return path


def context(home: Path, **settings: Any) -> AdminContext:
    base = load_settings(home)
    return AdminContext.for_stores(open_stores(base), replace(base, **settings))


def areas(findings: list[Finding]) -> list[str]:
    return [finding.area for finding in findings]


def test_a_fresh_home_has_no_unsafe_setting(home: Path) -> None:
    assert check_configuration(context(home)) == []


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_private_key_readable_by_others_is_unsafe(home: Path, mode: int) -> None:
    key = home / "keys" / "sts-signing.key"
    key.chmod(mode)
    (finding,) = check_configuration(context(home))
    assert finding.area == "keys" and str(key) in finding.problem and f"{mode:04o}" in finding.problem
    assert finding.fix == f"chmod 600 {key}"


def test_the_database_is_private_from_init_and_flagged_when_it_is_not(home: Path) -> None:
    database = home / "sts.db"
    assert database.stat().st_mode & 0o077 == 0
    database.chmod(0o644)
    assert areas(check_configuration(context(home))) == ["keys"]
    # What `sts serve` refuses to start with is the keys alone: an older home's database does not stop it.
    assert key_permission_findings(load_settings(home), keys_only=True) == []


def test_a_key_given_on_the_command_line_is_checked_too(home: Path, tmp_path: Path) -> None:
    tls_key = tmp_path / "tls.key"
    tls_key.write_bytes(b"not really a key")
    tls_key.chmod(0o644)
    (finding,) = check_configuration(context(home), extra_keys=[tls_key])
    assert str(tls_key) in finding.problem


def test_a_database_password_in_sts_toml_makes_the_file_private(home: Path) -> None:
    config = home / "sts.toml"
    config.chmod(0o644)
    url = "postgresql+psycopg://sts:s3cret@db.example/sts"
    # The password given in the environment (STS_DATABASE_URL), as a farm's nodes get it: sts.toml holds no secret.
    ctx = AdminContext.for_stores(context(home).stores, context(home, database_url=url).settings)
    assert [f for f in check_configuration(ctx) if f.area == "keys"] == []
    # Written into sts.toml itself: the file must be private.
    config.write_text(config.read_text().replace('database_url = ""', f'database_url = "{url}"'))
    findings = [f for f in check_configuration(ctx) if f.area == "keys"]
    assert [str(config) in f.problem for f in findings] == [True]
    assert "s3cret" not in findings[0].problem


def test_plain_http_off_loopback(home: Path) -> None:
    assert areas(check_configuration(context(home, public_base_url="http://sts.example.org"))) == ["transport"]
    assert check_configuration(context(home, public_base_url="https://sts.example.org")) == []
    assert check_configuration(context(home, public_base_url="http://127.0.0.1:8080")) == []
    ctx = context(home)
    assert areas(check_configuration(ctx, bind=Bind("0.0.0.0", tls=False))) == ["transport"]
    assert check_configuration(ctx, bind=Bind("0.0.0.0", tls=True)) == []
    assert check_configuration(ctx, bind=Bind("::1", tls=False)) == []
    (finding,) = check_configuration(context(home, allow_password_text_over_http=True))
    assert "allow_password_text_over_http" in finding.problem
    (finding,) = check_configuration(context(home, auth_throttle_max_delay_ms=0))
    assert finding.problem.startswith("the brute-force throttle is off")


def test_metrics_readable_by_anyone_or_behind_a_short_token(home: Path) -> None:
    (finding,) = check_configuration(context(home, metrics_public=True))
    assert finding.area == "transport" and "metrics_public" in finding.problem and "metrics_token" in finding.fix
    (finding,) = check_configuration(context(home, metrics_token="short"))
    assert "5 characters" in finding.problem
    assert check_configuration(context(home, metrics_token="x" * 24)) == []
    assert check_configuration(context(home, metrics_public=True, metrics_enabled=False)) == []


def test_legacy_algorithms_anywhere(home: Path) -> None:
    ctx = context(home)
    cert = generate_key_and_cert("legacy.example")[1]
    ctx.stores.relying_parties.add(RelyingParty(
        endpoint="https://legacy.example/", cert_pem=cert, signature_algorithm=SignatureAlgorithm.RSA_SHA1,
        data_encryption=DataEncryption.AES256_CBC, key_transport=KeyTransport.RSA_1_5))
    ctx.stores.clients.add("old-daemon", generate_key_and_cert("old-daemon")[1], allow_sha1=True)
    problems = [f.problem for f in check_configuration(context(home, allow_sha1_signatures=True))]
    assert len(problems) == 5
    assert problems[0].startswith("allow_sha1_signatures = true")
    for name in ("rsa-sha1", "aes256-cbc", "rsa-1_5"):
        assert any(f"https://legacy.example/ uses {name}" in p for p in problems)
    assert any("client old-daemon may sign requests with SHA-1" in p for p in problems)


def test_an_unencrypted_party_is_not_flagged_for_its_unused_encryption_choice(home: Path) -> None:
    ctx = context(home)
    ctx.stores.relying_parties.add(RelyingParty(endpoint="https://plain.example/", encrypt=False,
                                                data_encryption=DataEncryption.AES128_CBC))
    assert check_configuration(ctx) == []


def test_certificates_near_expiry_or_expired(home: Path) -> None:
    ctx = context(home)
    soon = generate_key_and_cert("soon.example", days=10)[1]
    ctx.stores.relying_parties.add(RelyingParty(endpoint="https://soon.example/", cert_pem=soon))
    ctx.stores.clients.add("shortlived", generate_key_and_cert("shortlived", days=2)[1])
    problems = [f.problem for f in check_configuration(ctx)]
    assert any(p.startswith("relying party https://soon.example/ (certificate): certificate expires") for p in problems)
    assert any(p.startswith("client shortlived: certificate expires") for p in problems)
    later = replace(ctx, clock=lambda: ctx.clock() + timedelta(days=20))
    assert any("https://soon.example/ (certificate): certificate expired" in f.problem
               for f in check_configuration(later))
    # The STS's own certificates (ten years) are not near expiry; within the warning window they are.
    assert not any(p.startswith("STS") for p in problems)
    assert any(f.problem.startswith("STS signing certificate")
               for f in check_configuration(context(home, certificate_warning_days=3700)))


def test_administrators_passwords(home: Path) -> None:
    ctx = context(home)
    user_core.add_admin(ctx, Actor.cli(), "root", STRONG)
    assert check_configuration(ctx) == []
    # Set outside the admin core (as before the policy was recorded): unknown, so flagged.
    ctx.stores.users.add("legacy-admin", "a password nobody checked", admin=True)
    ctx.stores.users.add("lazy", "lazy", admin=True)
    problems = [f.problem for f in check_configuration(ctx)]
    assert any("legacy-admin's password was set before the password policy" in p for p in problems)
    assert any("lazy's password is guessable" in p for p in problems)
    assert not any("root" in p for p in problems)
    # A stricter policy than the one root's password was set under.
    stricter = AdminContext.for_stores(ctx.stores, replace(ctx.settings, admin_password_min_length=40))
    assert any("root's password was set when 12 characters were enough; the policy now asks 40" in f.problem
               for f in check_configuration(stricter, verify_passwords=False))
    user_core.set_password(ctx, Actor.cli(), "legacy-admin", STRONG)
    assert not any("legacy-admin" in f.problem for f in check_configuration(ctx))


@pytest.mark.parametrize("name", ["keys/sts-encryption.crt", "keys/sts-signing.crt", "keys/sts-signing.key"])
def test_an_unreadable_certificate_or_key_is_a_finding_not_a_traceback(home: Path, name: str) -> None:
    path = home / name
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    path.chmod(0o600)
    findings = check_configuration(context(home))
    assert [f.area for f in findings] == ["certificates"]
    assert "cannot be read" in findings[0].problem


def test_farm_settings_that_believe_anyone_or_send_passwords_in_clear(home: Path) -> None:
    findings = check_configuration(context(home, trusted_proxies=("10.0.0.0/24", "0.0.0.0/0")))
    assert areas(findings) == ["transport"] and "0.0.0.0/0" in findings[0].problem
    (unread,) = check_configuration(context(home, client_cert_header="X-SSL-Client-Cert"))
    assert "never read" in unread.problem and "trusted_proxies" in unread.fix
    assert check_configuration(context(home, client_cert_header="X-SSL-Client-Cert",
                                       trusted_proxies=("10.0.0.0/24",))) == []
    (clear,) = check_configuration(context(home, user_store="ldap://ldap.example"))
    assert "in clear" in clear.problem and "ldaps://" in clear.fix
    assert check_configuration(context(home, user_store="ldap://ldap.example", ldap_start_tls=True)) == []
    assert check_configuration(context(home, user_store="ldaps://ldap.example")) == []
