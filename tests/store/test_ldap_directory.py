"""The LDAP user store against a real slapd (tests/servers/slapd.py): binds, claims, groups, escaping, TLS, outages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from servers.slapd import Slapd, write_certificates
from sts.config import Settings
from sts.model import Claim
from sts.store.ldap_directory import ROLE_CLAIM, DirectoryUnavailable, LdapConfig, LdapUserStore
from timing import did_not_wait

GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
MAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
EMPLOYEE_TYPE = "http://schemas.example.test/claims/employeetype"
ONEIL = "o'neil, (ops)*\\"


def make_store(slapd: Slapd, **overrides: Any) -> LdapUserStore:
    settings = replace(Settings(home=Path(".")), **slapd.settings(**overrides))
    return LdapUserStore.from_settings(settings)


@pytest.fixture
def store(slapd: Slapd) -> Iterator[LdapUserStore]:
    directory = make_store(slapd, ldap_start_tls=True)
    yield directory
    directory.close()


def test_a_directory_user_binds_with_the_right_password_only(store: LdapUserStore) -> None:
    assert store.check_password("carol", "carol-pass-1")
    assert not store.check_password("carol", "carol-pass-2")
    assert not store.check_password("nobody", "carol-pass-1")


def test_claims_come_from_the_mapped_attributes_and_groups_give_roles(store: LdapUserStore) -> None:
    carol = store.get("carol")
    assert carol is not None and carol.name == "carol" and not carol.admin
    assert set(carol.claims) == {
        Claim(GIVEN, ("Carol",)), Claim(MAIL, ("carol@example.test",)), Claim(EMPLOYEE_TYPE, ("staff",)),
        Claim(ROLE_CLAIM, ("sts-admins", "sts-users")),
    }
    erin = store.get("erin")  # no mail, no group: those claims are left out, not empty
    assert erin is not None and {claim.uri for claim in erin.claims} == {GIVEN}
    assert store.get("nobody") is None


def test_only_the_login_name_as_the_directory_spells_it_signs_in(store: LdapUserStore, slapd: Slapd) -> None:
    # The directory's matching ignores case; taking "CAROL" as carol would give every spelling its own throttle
    # count and its own principal name.
    assert not store.check_password("CAROL", "carol-pass-1")
    assert store.get("Carol") is None
    direct = make_store(slapd, ldap_bind_dn="")
    try:
        assert not direct.check_password("CAROL", "carol-pass-1")
    finally:
        direct.close()


def test_an_empty_password_is_refused_before_any_bind(store: LdapUserStore, slapd: Slapd) -> None:
    # An LDAP simple bind with a DN and no password is an anonymous bind, and succeeds (RFC 4513 §5.1.2).
    with slapd.paused():  # a bind would hang until the timeout: the refusal must come without one
        started = time.monotonic()
        assert not store.check_password("carol", "")
        assert did_not_wait(time.monotonic() - started, store.config.timeout)  # a bind would wait this long


@pytest.mark.parametrize("name", ["*)(uid=*", "*", "carol)(|(uid=*", "c*", "carol\x00", "*)(objectClass=*"])
def test_filter_injection_finds_nothing(store: LdapUserStore, name: str) -> None:
    assert store.get(name) is None
    assert not store.check_password(name, "carol-pass-1")


def test_a_name_made_of_ldap_special_characters_works_escaped(store: LdapUserStore, slapd: Slapd) -> None:
    assert store.check_password(ONEIL, "oneil-pass-1")
    record = store.get(ONEIL)
    assert record is not None and Claim(ROLE_CLAIM, ("sts-users",)) in record.claims
    direct = make_store(slapd, ldap_bind_dn="")  # the DN built from the name: escaped as an RDN value
    try:
        assert direct.check_password(ONEIL, "oneil-pass-1")
        assert not direct.check_password(ONEIL, "wrong")
    finally:
        direct.close()


def test_direct_bind_without_a_service_account(slapd: Slapd) -> None:
    direct = make_store(slapd, ldap_bind_dn="")
    try:
        assert direct.check_password("dave", "dave-pass-1")
        dave = direct.get("dave")  # read as dave himself at the bind
        assert dave is not None and Claim(MAIL, ("dave@example.test",)) in dave.claims
        assert not direct.check_password("dave", "wrong")
        assert not direct.check_password("*", "dave-pass-1")
    finally:
        direct.close()


def test_ldaps_with_the_ca_file(slapd: Slapd) -> None:
    secure = make_store(slapd, user_store=slapd.ldaps_url)
    try:
        assert secure.check_password("carol", "carol-pass-1")
    finally:
        secure.close()


@pytest.mark.parametrize("ldaps", [True, False])
def test_a_certificate_from_another_ca_is_refused(slapd: Slapd, tmp_path: Path, ldaps: bool) -> None:
    write_certificates(tmp_path)  # a CA of its own, unrelated to the directory's
    url = slapd.ldaps_url if ldaps else slapd.url
    untrusting = make_store(slapd, user_store=url, ldap_start_tls=not ldaps, ldap_ca_file=str(tmp_path / "ca.crt"))
    with pytest.raises(DirectoryUnavailable):
        untrusting.check_password("carol", "carol-pass-1")


def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    with Slapd.started(tmp_path, names=("ldap.example.test",)) as elsewhere:  # right CA, wrong name
        for overrides in ({"user_store": elsewhere.ldaps_url}, {"ldap_start_tls": True}):
            misnamed = make_store(elsewhere, **overrides)
            with pytest.raises(DirectoryUnavailable, match="hostname|host name|doesn't match"):
                misnamed.check_password("carol", "carol-pass-1")


def test_search_lists_matching_users_read_only_and_never_the_whole_directory(store: LdapUserStore) -> None:
    found = store.search("ar")
    assert [user.name for user in found.users] == ["carol"] and not found.truncated
    assert Claim(EMPLOYEE_TYPE, ("staff",)) in found.users[0].claims
    assert store.search("*)(").users == ()  # escaped: a literal, matching nobody
    with pytest.raises(ValueError, match="at least 2"):
        store.search("*")
    both = store.search("fran")
    assert [user.name for user in both.users] == ["frances", "frank"] and not both.truncated
    one = store.search("fran", limit=1)
    assert [user.name for user in one.users] == ["frances"] and one.truncated


def test_the_pool_reuses_connections_across_threads(store: LdapUserStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def sign_in(index: int) -> bool:
        return store.check_password(["carol", "dave"][index % 2], ["carol-pass-1", "dave-pass-1"][index % 2])

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(sign_in, range(30)))
    # 30 sign-ins from 6 threads: each pool opened at most ldap_pool_size (2) connections and reused them.
    assert 2 <= store.connections_opened <= 4


def test_a_directory_that_is_down_fails_fast_as_unavailable(slapd: Slapd) -> None:
    down = make_store(slapd, user_store=f"ldap://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable):
        down.check_password("carol", "carol-pass-1")
    assert did_not_wait(time.monotonic() - started, down.config.timeout)  # refused, not the connect timeout


def test_a_directory_that_does_not_answer_times_out(slapd: Slapd) -> None:
    slow = make_store(slapd, ldap_timeout_seconds=1)
    try:
        assert slow.check_password("carol", "carol-pass-1")  # a pooled connection is open
        with slapd.paused():
            started = time.monotonic()
            with pytest.raises(DirectoryUnavailable):
                slow.check_password("dave", "dave-pass-1")
            elapsed = time.monotonic() - started
        assert elapsed < 3.5  # the timeout per step, not a hang
        assert slow.check_password("dave", "dave-pass-1")  # and it recovers when the directory does
    finally:
        slow.close()


def test_a_wrong_service_password_is_an_outage_not_a_bad_user_password(slapd: Slapd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STS_WRONG_BIND", "not-the-password")
    wrong = make_store(slapd, ldap_bind_password_env="STS_WRONG_BIND")
    with pytest.raises(DirectoryUnavailable, match="service account"):
        wrong.check_password("carol", "carol-pass-1")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"user_store": "http://example.test"}, "ldap://host"),
    ({"ldap_user_filter": "(uid=alice)"}, "{username}"),
    ({"ldap_user_base": ""}, "ldap_user_base"),
    ({"ldap_bind_password_env": "STS_NO_SUCH_VARIABLE"}, "STS_NO_SUCH_VARIABLE"),
    ({"ldap_claims": ("mail",)}, "CLAIM=ATTRIBUTE"),
    ({"ldap_claims": ("nosuchclaim=mail",)}, "unknown claim name"),
    ({"ldap_start_tls": True, "user_store": "ldaps://127.0.0.1"}, "ldap_start_tls"),
])
def test_settings_are_checked_with_what_to_fix(slapd: Slapd, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        LdapConfig.from_settings(replace(Settings(home=Path(".")), **slapd.settings(**overrides)))


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



def test_ping_answers_while_the_directory_does(store: LdapUserStore, slapd: Slapd) -> None:
    store.ping()
    down = make_store(slapd, user_store=f"ldap://127.0.0.1:{_closed_port()}")
    with pytest.raises(DirectoryUnavailable):
        down.ping()
