"""One builder of the ``AssertionContent`` the SAML, crypto and provider tests sign: fixed clock, keyword overrides."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sts.model import AssertionContent, Claim
from sts.uris import NAMEID_UNSPECIFIED, AuthnMethod

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)
NAME = Claim("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", ("alice",))
ROLES = Claim("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", ("admins", "users"))


def make_content(
    *, now: datetime = NOW, lifetime: timedelta = timedelta(hours=1), authn_age: timedelta = timedelta(0),
    **fields: object,
) -> AssertionContent:
    """Alice's bearer assertion content issued at ``now`` for ``lifetime`` (authenticated ``authn_age`` earlier).

    Any other ``AssertionContent`` field is a keyword override (``assertion_id``, ``issuer``, ``claims`` ...).
    """
    values: dict[str, object] = dict(
        assertion_id="_" + "0123456789abcdef" * 2,
        issuer="https://sts.test/adfs/services/trust",
        subject_name="alice",
        name_id_format=NAMEID_UNSPECIFIED,
        audience="https://rp.test/app/",
        issue_instant=now,
        not_before=now,
        not_on_or_after=now + lifetime,
        authn_method=AuthnMethod.PASSWORD,
        authn_instant=now - authn_age,
        claims=(NAME, ROLES),
    )
    values.update(fields)
    return AssertionContent(**values)  # type: ignore[arg-type]
