"""The claims rule: required + permitted requested claims, Optional, auth:Value, order, no duplicates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sts.service.claims import StoreClaimsSource, collect_claims
from sts.errors import RequestFailed
from sts.interfaces import ClaimsSource
from sts.model import Claim, ClaimRequest, Principal, RelyingParty, UserRecord
from sts.uris import AuthnMethod

EMAIL, ROLE, NAME, GROUP = "urn:c:email", "urn:c:role", "urn:c:name", "urn:c:group"
USER = UserRecord(
    "alice",
    (Claim(EMAIL, ("a@x",)), Claim(ROLE, ("admin", "user")), Claim(NAME, ("Alice",)), Claim(GROUP, ())),
)
OPEN_RP = RelyingParty("https://rp.example")


def rp(required: tuple[str, ...] = (), permitted: tuple[str, ...] = ("*",)) -> RelyingParty:
    return RelyingParty("https://rp.example", required_claims=required, permitted_claims=permitted)


def uris(claims: tuple[Claim, ...] | list[Claim]) -> list[str]:
    return [c.uri for c in claims]


def failed_on(user: UserRecord, requested: list[ClaimRequest], party: RelyingParty) -> str | None:
    with pytest.raises(RequestFailed) as info:
        collect_claims(user, requested, party)
    return info.value.detail


def test_nothing_required_nothing_requested() -> None:
    assert collect_claims(USER, [], OPEN_RP) == ()


def test_required_claims_are_always_carried_with_all_values() -> None:
    assert collect_claims(USER, [], rp(required=(ROLE,), permitted=())) == (Claim(ROLE, ("admin", "user")),)


def test_missing_required_claim_fails_naming_it() -> None:
    assert failed_on(USER, [], rp(required=(EMAIL, "urn:c:phone"))) == "urn:c:phone"


def test_a_claim_with_no_values_counts_as_missing() -> None:
    assert failed_on(USER, [], rp(required=(GROUP,))) == GROUP
    assert collect_claims(USER, [ClaimRequest(GROUP, optional=True)], OPEN_RP) == ()


def test_permitted_requested_claims_are_carried() -> None:
    got = collect_claims(USER, [ClaimRequest(NAME), ClaimRequest(EMAIL)], rp(permitted=(EMAIL, NAME)))
    assert got == (Claim(NAME, ("Alice",)), Claim(EMAIL, ("a@x",)))


def test_not_permitted_optional_is_omitted() -> None:
    got = collect_claims(USER, [ClaimRequest(ROLE, optional=True), ClaimRequest(EMAIL)], rp(permitted=(EMAIL,)))
    assert got == (Claim(EMAIL, ("a@x",)),)


def test_not_permitted_required_request_fails() -> None:
    assert failed_on(USER, [ClaimRequest(ROLE)], rp(permitted=(EMAIL,))) == ROLE


def test_missing_requested_claim() -> None:
    assert failed_on(USER, [ClaimRequest("urn:c:phone")], OPEN_RP) == "urn:c:phone"
    assert collect_claims(USER, [ClaimRequest("urn:c:phone", optional=True)], OPEN_RP) == ()


def test_requested_value_present_carries_only_that_value() -> None:
    assert collect_claims(USER, [ClaimRequest(ROLE, value="user")], OPEN_RP) == (Claim(ROLE, ("user",)),)


def test_requested_value_absent_is_missing() -> None:
    assert failed_on(USER, [ClaimRequest(ROLE, value="root")], OPEN_RP) == ROLE
    assert collect_claims(USER, [ClaimRequest(ROLE, optional=True, value="root")], OPEN_RP) == ()


def test_several_requested_values_merge_in_the_users_order() -> None:
    requested = [ClaimRequest(ROLE, value="user"), ClaimRequest(ROLE, value="admin")]
    assert collect_claims(USER, requested, OPEN_RP) == (Claim(ROLE, ("admin", "user")),)


def test_a_value_request_does_not_narrow_a_claim_already_carried_whole() -> None:
    got = collect_claims(USER, [ClaimRequest(ROLE), ClaimRequest(ROLE, value="user")], OPEN_RP)
    assert got == (Claim(ROLE, ("admin", "user")),)
    got = collect_claims(USER, [ClaimRequest(ROLE, value="user")], rp(required=(ROLE,)))
    assert got == (Claim(ROLE, ("admin", "user")),)


def test_required_first_then_requested_without_duplicates() -> None:
    requested = [ClaimRequest(NAME), ClaimRequest(EMAIL), ClaimRequest(ROLE), ClaimRequest(NAME)]
    got = collect_claims(USER, requested, rp(required=(ROLE, EMAIL)))
    assert uris(got) == [ROLE, EMAIL, NAME]


def test_required_claims_need_no_permission() -> None:
    assert uris(collect_claims(USER, [ClaimRequest(EMAIL)], rp(required=(ROLE,), permitted=(EMAIL,)))) == [ROLE, EMAIL]


class Directory:
    def __init__(self, *users: UserRecord) -> None:
        self.users = {u.name: u for u in users}

    def get(self, name: str) -> UserRecord | None:
        return self.users.get(name)


def principal(name: str) -> Principal:
    return Principal(name, AuthnMethod.PASSWORD, datetime(2030, 1, 1, tzinfo=UTC))


def test_store_claims_source() -> None:
    source: ClaimsSource = StoreClaimsSource(Directory(USER))
    assert source.claims_for(principal("alice"), [ClaimRequest(EMAIL)], OPEN_RP) == [Claim(EMAIL, ("a@x",))]


def test_store_claims_source_unknown_principal_has_no_claims() -> None:
    source = StoreClaimsSource(Directory())
    assert source.claims_for(principal("cert-only"), [ClaimRequest(EMAIL, optional=True)], OPEN_RP) == []
    with pytest.raises(RequestFailed) as info:
        source.claims_for(principal("cert-only"), [], rp(required=(EMAIL,)))
    assert info.value.detail == EMAIL


def test_store_claims_source_refuses_disabled_users() -> None:
    source = StoreClaimsSource(Directory(UserRecord("bob", USER.claims, disabled=True)))
    with pytest.raises(RequestFailed):
        source.claims_for(principal("bob"), [], OPEN_RP)


def test_public_reason_names_only_the_claim() -> None:
    with pytest.raises(RequestFailed) as info:
        collect_claims(USER, [], rp(required=("urn:c:phone",)))
    assert info.value.public_reason.endswith(": urn:c:phone")
    assert "alice" not in info.value.public_reason
