"""Relying-party policy on the wire: allowed token/key types, additional audiences, certificate rollover."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from live import LiveServer, init_home_with, running
from sts import ns
from sts.cli.main import main
from sts.config import load_settings
from sts.tokens.crypto.keys import generate_key_and_cert, load_certificate, load_private_key
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT
from sts.model import RelyingParty
from sts.store.schema import MIGRATIONS, current_version, migrate, schema_version
from sts.store.transactions import writing
from sts.uris import KeyType, TokenType
from sts.rp.verifier import TokenRejected, TokenVerifier
from sts.runtime import open_stores
from sts.xmltime import utcnow
from trust_client import post, rst_envelope

PLAIN = "https://plain.example/app"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return init_home_with(tmp_path, RelyingParty(endpoint=PLAIN, encrypt=False))


@pytest.fixture
def live(home: Path) -> Iterator[LiveServer]:
    with running(home) as server_live:
        yield server_live


def _cli(home: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _issue(live: LiveServer, applies_to: str, **options: object) -> object:
    return post(live.sts_url, rst_envelope(user="alice", password=DEMO_PASSWORD, applies_to=applies_to, **options))


@pytest.mark.parametrize("token_type", [TokenType.SAML11, TokenType.SAML20])
def test_additional_audiences_are_in_the_token(home: Path, live: LiveServer, token_type: TokenType) -> None:
    _cli(home, "rp", "update", PLAIN, "--audience", "urn:extra:one", "--audience", "https://two.example/")
    reply = _issue(live, PLAIN, token_type_uri=token_type.value)
    assert reply.status == 200  # type: ignore[attr-defined]
    token = reply.token()  # type: ignore[attr-defined]
    audiences = [a.text for a in token.iter(f"{{{ns.SAML1}}}Audience", f"{{{ns.SAML2}}}Audience")]
    assert audiences == [PLAIN, "urn:extra:one", "https://two.example/"]
    verifier = TokenVerifier([load_certificate(load_settings(home).signing_cert_path.read_bytes())],
                             audience="urn:extra:one")
    assert "urn:extra:one" in verifier.verify(token).audiences


def test_refused_token_and_key_types_fault_naming_them(home: Path, live: LiveServer) -> None:
    _cli(home, "rp", "update", PLAIN, "--allow-token-type", "saml20", "--allow-key-type", "bearer")
    refused = _issue(live, PLAIN, token_type_uri=TokenType.SAML11.value)
    assert refused.fault_code == (ns.WST13, "BadRequest")  # type: ignore[attr-defined]
    assert refused.fault_reason.endswith("TokenType")  # type: ignore[attr-defined]
    symmetric = _issue(live, PLAIN, key_type_uri=KeyType.SYMMETRIC.value)
    assert symmetric.fault_code == (ns.WST13, "BadRequest")  # type: ignore[attr-defined]
    assert symmetric.fault_reason.endswith("KeyType")  # type: ignore[attr-defined]
    assert _issue(live, PLAIN, token_type_uri=TokenType.SAML20.value).status == 200  # type: ignore[attr-defined]
    _cli(home, "rp", "update", PLAIN, "--allow-token-type", "any")
    assert _issue(live, PLAIN, token_type_uri=TokenType.SAML11.value).status == 200  # type: ignore[attr-defined]


def test_certificate_rollover_encrypts_for_the_next_certificate(home: Path, live: LiveServer) -> None:
    sts_cert = load_certificate(load_settings(home).signing_cert_path.read_bytes())
    old_key = load_private_key((home / "demo" / "rp.key").read_bytes())
    new_key_pem, new_cert_pem = generate_key_and_cert("service-a next")
    (home / "next.crt").write_bytes(new_cert_pem)
    later = (utcnow() + timedelta(hours=1)).isoformat()
    _cli(home, "rp", "update", DEMO_RP_ENDPOINT, "--next-cert", str(home / "next.crt"), "--next-cert-from", later)
    before = _issue(live, DEMO_RP_ENDPOINT).token()  # type: ignore[attr-defined]
    TokenVerifier([sts_cert], rp_private_key=old_key, audience=DEMO_RP_ENDPOINT).verify(before)
    past = (utcnow() - timedelta(seconds=1)).isoformat()
    _cli(home, "rp", "update", DEMO_RP_ENDPOINT, "--next-cert", str(home / "next.crt"), "--next-cert-from", past)
    after = _issue(live, DEMO_RP_ENDPOINT).token()  # type: ignore[attr-defined]
    new_key = load_private_key(new_key_pem)
    assert TokenVerifier([sts_cert], rp_private_key=new_key, audience=DEMO_RP_ENDPOINT).verify(after).subject == "alice"
    with pytest.raises(TokenRejected) as refused:  # the old key can no longer read it
        TokenVerifier([sts_cert], rp_private_key=old_key, audience=DEMO_RP_ENDPOINT).verify(after)
    assert refused.value.code == "decryption"
    assert "next certificate from" in _cli(home, "rp", "list")


def test_store_round_trip_and_migration_from_version_2(home: Path) -> None:
    settings = load_settings(home)
    stores = open_stores(settings)
    party = stores.relying_parties.get(PLAIN)
    assert party is not None and party.allowed_token_types == () and party.next_cert_pem is None
    with writing(stores.engine) as conn:  # back to a version 2 database: no policy columns
        conn.exec_driver_sql("DROP INDEX ix_audit_log_actor")
        for table, column in [("relying_parties", c) for c in ("allowed_token_types", "allowed_key_types",
                                                               "additional_audiences", "next_cert_pem",
                                                               "next_cert_from")] + [("audit_log", "actor"),
                                                                                     ("audit_log", "outcome")]:
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute(schema_version.update().values(version=2))
    assert migrate(stores.engine) == MIGRATIONS[-1].version
    with stores.engine.connect() as conn:
        assert current_version(conn) == MIGRATIONS[-1].version
        assert "next_cert_from" in {c["name"] for c in inspect(conn).get_columns("relying_parties")}
    moment = utcnow().replace(microsecond=0)
    changed = replace(party, allowed_token_types=(TokenType.SAML11,), allowed_key_types=(KeyType.PUBLIC_KEY,),
                      additional_audiences=("urn:a:b",), next_cert_pem=b"PEM", next_cert_from=moment)
    assert stores.relying_parties.update(changed)
    assert stores.relying_parties.get(PLAIN) == changed
    assert stores.relying_parties.lookup(PLAIN) == changed  # config_version bumped: the cache sees it
    stores.close()


def test_rp_update_rejects_bad_input(home: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["--home", str(home), "rp", "update", "https://nope.example/"])
    assert missing.exit_code != 0 and "no relying party" in missing.output
    half = runner.invoke(main, ["--home", str(home), "rp", "update", PLAIN, "--next-cert-from", "2030-01-01T00:00"])
    assert half.exit_code != 0 and "go together" in half.output
    bad = runner.invoke(main, ["--home", str(home), "rp", "update", PLAIN, "--audience", "not a uri"])
    assert bad.exit_code != 0 and "Error: --audience: audience 'not a uri' is not an absolute URL" in bad.output
