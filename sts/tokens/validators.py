"""Find the recorded token that a Validate, Renew, Cancel, ActAs or OnBehalfOf target names.

A target is a reference (the token id) or the token element itself, as parsed with the request. An inline token
goes through the one verification path the relying party's verifier uses (``sts.tokens.verification``): it must
be the only token in its RST (a batch holds one per RST) with Ids unique across the whole request, and the target
element must itself be the token. A SAML assertion is trusted only when its own signature verifies with one of
this STS's published certificates, with an allowed algorithm, and covers that very element
(``verify_assertion`` returns only what the signature covers; the id is read from that, never from the request).
An EncryptedAssertion or xenc:EncryptedData, which the STS cannot decrypt (it is for the relying party), is
recognised by the hash recorded when it was issued.

The algorithm policy: the resolver's allow-list (default ``AlgorithmAllowList()``: RSA-SHA256/ECDSA-SHA256 and
SHA-256) plus, for a token this STS recorded, the signature algorithm it was issued with (a relying party's
configured legacy choice, e.g. RSA-SHA1 with SHA-1 digests). So an RSA-SHA1 token issued for a legacy relying
party still validates, and a SHA-1 signature on any other token is refused before it is checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from cryptography import x509
from lxml import etree

from sts import ns
from sts.errors import InvalidRequest, InvalidSecurityToken, UnknownSecurityToken
from sts.interfaces import TokenRecords
from sts.model import Resolution, TokenRecord, TokenTarget
from sts.tokens.verification import (
    ASSERTION_ID,
    ENCRYPTED_ASSERTION,
    ENCRYPTED_DATA,
    AlgorithmAllowList,
    TokenRejected,
    check_one_token,
    verify_assertion,
)

__all__ = ["Resolution", "TokenResolver", "refusal", "token_hash"]  # Resolution now lives in sts.model; still importable here

#: The problems of a target that is sound but was never recorded here; any other problem is an altered or
#: unacceptable token. (Validate shows the problem as its Status Reason; Renew, Cancel, ActAs and OnBehalfOf
#: fault with the fixed reason ``refusal`` picks.)
UNKNOWN_TOKEN = "the token is unknown to this STS"
UNKNOWN_ENCRYPTED = "the encrypted token is not one this STS issued"
NOT_SIGNED = "the token is not signed by this STS or was altered"
_UNKNOWN = frozenset({UNKNOWN_TOKEN, UNKNOWN_ENCRYPTED})

_ENCRYPTED = frozenset({ENCRYPTED_ASSERTION, ENCRYPTED_DATA})


def refusal(problem: str | None) -> InvalidSecurityToken:
    """The fault for a target that resolved to no record: unknown here, or invalid/altered."""
    if problem in _UNKNOWN:
        return UnknownSecurityToken(problem or "")
    return InvalidSecurityToken(problem or "unresolved token")


_RST = frozenset({ns.qn(ns.WST13, "RequestSecurityToken"), ns.qn(ns.WST2005, "RequestSecurityToken")})


def token_hash(element: etree._Element) -> str:
    """SHA-256 of the token's exclusive canonical form: the same wherever a client puts it."""
    return hashlib.sha256(etree.tostring(element, method="c14n", exclusive=True)).hexdigest()


class TokenResolver:
    """Built once per process with the STS certificates whose signatures it trusts."""

    def __init__(self, records: TokenRecords,
                 certificates: Sequence[x509.Certificate] | Callable[[], Sequence[x509.Certificate]],
                 *, algorithms: AlgorithmAllowList | None = None) -> None:
        """``certificates``: a fixed list, or a callable asked per verification (a keyring's published ones)."""
        self._records = records
        self._source = certificates if callable(certificates) else None
        self._fixed = () if callable(certificates) else tuple(certificates)
        self.algorithms = algorithms if algorithms is not None else AlgorithmAllowList()

    @property
    def _certificates(self) -> tuple[x509.Certificate, ...]:
        return self._fixed if self._source is None else tuple(self._source())

    def resolve(self, target: TokenTarget) -> Resolution:
        if target.reference is not None:
            record = self._records.get(target.reference)
            if record is None:
                raise InvalidRequest("unknown token reference", detail=target.reference)
            return Resolution(record)
        element = target.unverified_token
        if element is None:
            raise InvalidRequest("empty token target")
        if element.tag not in _ENCRYPTED and element.tag not in ASSERTION_ID:
            return Resolution(None, "not a SAML token")
        try:
            check_one_token(_scope(element), element)
        except TokenRejected as rejected:
            return Resolution(None, f"the token is refused: {rejected.reason}")
        if element.tag in _ENCRYPTED:
            record = self._records.get_by_hash(token_hash(element))
            return Resolution(record, None if record else UNKNOWN_ENCRYPTED)
        return self._resolve_signed(element)

    def _resolve_signed(self, element: etree._Element) -> Resolution:
        # The record named by the unverified id only chooses the algorithm policy (the one it was signed with);
        # nothing is decided on it until the signature over this very element verified and names the same id.
        unverified_id = element.get(ASSERTION_ID[element.tag]) or ""
        candidate = self._records.get(unverified_id) if unverified_id else None
        try:
            signed = verify_assertion(element, self._certificates, self._policy_for(candidate))
        except TokenRejected as rejected:
            if rejected.code == "algorithm":
                return Resolution(None, f"the token is refused: {rejected.reason}")
            return Resolution(None, NOT_SIGNED)
        token_id = signed.get(ASSERTION_ID[signed.tag])
        record = candidate if candidate is not None and candidate.token_id == token_id else None
        return Resolution(record, None if record else UNKNOWN_TOKEN)

    def _policy_for(self, record: TokenRecord | None) -> AlgorithmAllowList:
        issued_with = record.details.signature_algorithm if record is not None else None
        if not issued_with:
            return self.algorithms
        try:
            return self.algorithms.allowing(issued_with)
        except ValueError:
            return self.algorithms


def _scope(element: etree._Element) -> etree._Element:
    """The RST holding a target (a batch has one token per RST), or the whole document when there is none."""
    for ancestor in element.iterancestors():
        if ancestor.tag in _RST:
            return ancestor
    return element.getroottree().getroot()
