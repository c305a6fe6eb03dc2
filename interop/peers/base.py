"""What a peer driver provides: a name, why it cannot run here (if so), and one verdict per case."""

from __future__ import annotations

from typing import Protocol

from ..model import ClientCase, ClientOutcome, TokenCase, Verdict
from ..target import Target


class VerifierPeer(Protocol):
    """A relying-party-side peer: verifies (and decrypts) an issued token with the STS certificate only."""

    name: str          # column title in the report, e.g. "xmlsec1 1.2.37"
    about: str         # one line for the report's legend: what it is, where it comes from

    def unavailable(self) -> str | None:
        """Why this peer cannot run on this machine (not installed ...), or None when it can."""

    def check(self, case: TokenCase) -> Verdict:
        """Verify, decrypt if encrypted, read subject/audience/claims and compare with ``case.expected``.

        PASS only when the signature verified against ``case.sts_cert_pem`` and what the peer read matches.
        NA (with the reason) when the peer lacks the feature the case needs (SAML 1.1, ECDSA, CBC...).
        FAIL with the peer's own error text otherwise. Never raises.
        """


class ClientPeer(Protocol):
    """A requester-side peer: builds the RST itself, calls the target, parses the RSTR itself."""

    name: str
    about: str

    def unavailable(self) -> str | None:
        """Why this peer cannot run on this machine, or None when it can."""

    def issue(self, target: Target, case: ClientCase) -> ClientOutcome:
        """One Issue for ``target.rp(case.profile)`` with the peer's own request builder and response parser.

        PASS when the peer's parser accepted the answer and extracted a token; NA (with the reason) for what the
        peer cannot send (msal: SOAP 1.1, digest); FAIL with the peer's error text otherwise. Never raises.
        The runner then verifies the extracted token with our verifier and the case's expectations.
        """
