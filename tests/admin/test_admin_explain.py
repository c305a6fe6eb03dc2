"""Explain for administrators, without HTTP: input read once, optional means `?`, refusals in admin words."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from sts.admin.base import InvalidInput
from sts.admin.explain import ExplainQuery, RequestedClaim, explain, parse_requested_claims
from sts.config import load_settings
from sts.home import CLAIMS, DEMO_RP_ENDPOINT, init_home
from sts.runtime import Runtime, build_runtime

GIVEN, SURNAME, UPN = f"{CLAIMS}/givenname", f"{CLAIMS}/surname", f"{CLAIMS}/upn"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    home = tmp_path_factory.mktemp("explain-home")
    init_home(home)
    rt = build_runtime(load_settings(home))
    rt.stores.users.add("bob", "pw", [(GIVEN, "Bob")])
    rt.stores.users.add("dora", "pw", [(SURNAME, "Explorer")])
    rt.stores.users.set_disabled("dora", True)
    yield rt
    rt.stores.close()


def query(user: str = "alice", rp: str = DEMO_RP_ENDPOINT, claims: tuple[str, ...] = (), **kw: str) -> ExplainQuery:
    return ExplainQuery.from_text(user=user, rp=rp, claims=claims, **kw)


def test_short_names_expand_and_a_question_mark_means_optional() -> None:
    requested, warnings = parse_requested_claims(["givenname", "surname?", "", "urn:example:shoe-size?"])
    assert requested == (RequestedClaim(GIVEN, False), RequestedClaim(SURNAME, True),
                         RequestedClaim("urn:example:shoe-size", True))
    assert len(warnings) == 1 and "urn:example:shoe-size" in warnings[0]
    with pytest.raises(InvalidInput, match="unknown claim name 'bogusclaimname'") as caught:
        parse_requested_claims(["bogusclaimname?"])
    assert caught.value.field == "claims" and "givenname" in caught.value.message


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"user": " "}, "user", "choose a user"),
    ({"rp": ""}, "rp", "relying party"),
    ({"lifetime": "0"}, "lifetime", "at least 1"),
    ({"lifetime": "soon"}, "lifetime", "whole number"),
    ({"token_type": "jwt"}, "token_type", "saml11, saml20"),
])
def test_bad_input_names_its_field(fields: dict[str, str], field: str, message: str) -> None:
    values = {"user": "alice", "rp": DEMO_RP_ENDPOINT, **fields}
    with pytest.raises(InvalidInput, match=message) as caught:
        ExplainQuery.from_text(**values)
    assert caught.value.field == field


def test_optional_claim_the_user_lacks_is_omitted_and_required_one_refused(runtime: Runtime) -> None:
    optional = explain(runtime, query("bob", claims=("givenname", "upn?")))
    assert optional.ok and optional.problem is None
    assert [c["uri"] for c in optional.explanation.claims] == [GIVEN]
    assert [o["uri"] for o in optional.explanation.omitted] == [UPN]
    required = explain(runtime, query("bob", claims=("givenname", "upn")))
    assert not required.ok and required.problem == "bob lacks the requested claim upn"
    assert required.explanation.fault is not None and required.explanation.fault["code"] == "wst:RequestFailed"


def test_refusals_speak_admin_language_with_the_wire_fault_beside(runtime: Runtime) -> None:
    ghost = explain(runtime, query("ghost"))
    assert ghost.problem == "no user named ghost"
    assert ghost.to_dict()["fault"]["code"] == "wst:FailedAuthentication"
    assert explain(runtime, query("dora")).problem == "dora is disabled"
    nowhere = explain(runtime, query(rp="https://nowhere.example/"))
    assert nowhere.problem == "no relying party is registered for https://nowhere.example/"


def test_missing_required_claim_names_the_claim_and_the_relying_party(runtime: Runtime) -> None:
    rps = runtime.stores.relying_parties
    party = rps.get(DEMO_RP_ENDPOINT)
    assert party is not None
    rps.update(replace(party, required_claims=(SURNAME,), permitted_claims=(GIVEN, SURNAME)))
    try:
        answer = explain(runtime, query("bob"))
        assert answer.problem == f"bob lacks the claim surname that {DEMO_RP_ENDPOINT} requires"
        refused = explain(runtime, query("alice", claims=("upn",)))
        assert refused.problem is not None and refused.problem.startswith(f"{DEMO_RP_ENDPOINT} does not permit")
        assert explain(runtime, query("alice", claims=("upn?",))).ok
    finally:
        rps.update(party)


def test_to_dict_carries_problem_and_warnings(runtime: Runtime) -> None:
    data = explain(runtime, query(claims=("urn:example:unknown?",))).to_dict()
    assert data["ok"] is True and data["problem"] is None and len(data["warnings"]) == 1
