"""Shared by the verifier's tests (tests/tokens/test_verification.py, tests/security/test_verifier_attacks.py): one
fixed instant, audience and issuer, a verifier pinned to one key, and the rejection a token gets."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from lxml import etree

from sts.rp.verifier import TokenRejected, TokenVerifier
from sts.tokens.crypto.keys import SigningKey

NOW = datetime(2030, 1, 2, 12, 0, tzinfo=timezone.utc)
AUDIENCE = "https://rp.example/"
ISSUER = "https://sts.example/"


def verifier(key: SigningKey, **options: Any) -> TokenVerifier:
    """A verifier trusting ``key`` alone, for AUDIENCE and ISSUER, at NOW."""
    return TokenVerifier([key.certificate], audience=AUDIENCE, issuer=ISSUER, clock=lambda: NOW, **options)


def rejected(v: TokenVerifier, token: bytes | etree._Element) -> TokenRejected:
    """The TokenRejected ``v`` raises for ``token`` (the test fails when it is accepted)."""
    with pytest.raises(TokenRejected) as info:
        v.verify(token)
    return info.value
