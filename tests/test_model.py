"""The typed token record: TokenDetails round-trips through the store's JSON form, and reads old rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sts.model import Claim, Delegate, TokenDetails, TokenRecord
from sts.uris import AuthnMethod, TokenType

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_details_round_trip_through_json() -> None:
    details = TokenDetails(
        claims=(Claim("urn:c:mail", ("a@example.org",)),), name_id_format="urn:f", authn_method=AuthnMethod.X509,
        authn_instant=T0, holder_of_key=True, renew_allow=False, renew_ok=True, encrypted=True,
        signature_algorithm="urn:sig", data_encryption="urn:enc", key_transport="urn:kt", identity="alice",
        delegation="ActAs", delegates=(Delegate("portal", T0),),
    )
    stored = details.to_json()
    assert stored["key_type"] == "holder-of-key" and stored["delegates"] == [{"name": "portal",
                                                                              "instant": T0.isoformat()}]
    read = TokenDetails.from_json(stored)
    assert (read.claims, read.authn_method, read.authn_instant, read.delegates, read.renew_allow) == (
        details.claims, AuthnMethod.X509, T0, details.delegates, False)
    assert dict(read) == stored  # the mapping view is the stored JSON


def test_a_record_given_the_json_form_reads_it_and_keeps_unknown_keys() -> None:
    record = TokenRecord("_1", TokenType.SAML20, "alice", "https://rp/", T0, T0,
                         details={"claims": ["not-a-claim"], "n": 1})  # type: ignore[arg-type]
    assert isinstance(record.details, TokenDetails)
    assert record.details.claims == () and record.details.renew_allow  # defaults for what the row lacks
    assert record.details == {"claims": ["not-a-claim"], "n": 1}


def test_replace_never_carries_a_stale_json_form() -> None:
    details = TokenDetails(identity="alice")
    assert details["identity"] == "alice"
    assert replace(details, identity="bob")["identity"] == "bob"
