"""Explain for administrators: the issuance dry run (``sts.service.explain``) in an administrator's words.

The input is read once here for every front-end: a requested claim is a short name or a URI, and a trailing
``?`` makes it optional (``surname?``), as in a wst:Claims with ``Optional="true"``; a plain one is required.
A refusal is said as an administrator thinks of it ("no user named alice", "bob lacks the claim surname that
https://service-a.example/ requires"); the wire fault a client would get stays beside it as secondary detail.
Explain changes nothing, so it leaves no audit record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sts.admin.base import InvalidInput
from sts.errors import RequestFailed
from sts.model import RelyingParty, UserRecord
from sts.claim_dictionary import UnknownClaimName, resolve_claim, short_name
from sts.service.explain import Explanation, explain_issuance

if TYPE_CHECKING:
    from sts.runtime import Runtime

TOKEN_TYPES = ("saml11", "saml20")


@dataclass(frozen=True)
class RequestedClaim:
    uri: str
    optional: bool


@dataclass(frozen=True)
class ExplainQuery:
    """What to dry-run: whose token, for which relying party, with which claims, type and lifetime."""

    user: str
    rp: str
    claims: tuple[RequestedClaim, ...] = ()
    token_type: str | None = None
    lifetime_seconds: int | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_text(cls, *, user: str, rp: str, claims: Iterable[str] = (), token_type: str | None = None,
                  lifetime: str | int | None = None) -> ExplainQuery:
        """From what an administrator typed; the first problem is InvalidInput naming its field."""
        user, rp = user.strip(), rp.strip()
        if not user:
            raise InvalidInput("choose a user", field="user")
        if not rp:
            raise InvalidInput("give the relying party (AppliesTo)", field="rp")
        requested, warnings = parse_requested_claims(claims)
        return cls(user, rp, requested, _token_type(token_type), _lifetime(lifetime), warnings)


@dataclass(frozen=True)
class AdminExplanation:
    """The dry run's answer, its refusal in an administrator's words, and the warnings about the input."""

    explanation: Explanation
    problem: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.explanation.ok

    def to_dict(self) -> dict[str, Any]:
        """The explanation (``ok``, ``fault``, claims...) plus ``problem`` and ``warnings``; JSON-ready."""
        return {**self.explanation.to_dict(), "problem": self.problem, "warnings": list(self.warnings)}


def parse_requested_claims(lines: Iterable[str]) -> tuple[tuple[RequestedClaim, ...], tuple[str, ...]]:
    """``NAME`` or ``URI``, ``?`` at the end for optional; names expanded, unknown names refused."""
    requested, warnings = [], []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        optional = text.endswith("?")
        try:
            claim = resolve_claim(text[:-1] if optional else text)
        except (UnknownClaimName, ValueError) as exc:
            raise InvalidInput(str(exc), field="claims") from None
        if claim.warning and claim.warning not in warnings:
            warnings.append(claim.warning)
        requested.append(RequestedClaim(claim.uri, optional))
    return tuple(requested), tuple(warnings)


def explain(runtime: Runtime, query: ExplainQuery) -> AdminExplanation:
    """What Issue would answer ``query.user`` asking for a token for ``query.rp``, and why."""
    answer = explain_issuance(runtime, user=query.user, rp=query.rp,
                              claims=[(c.uri, c.optional) for c in query.claims], token_type=query.token_type,
                              lifetime_seconds=query.lifetime_seconds)
    problem = None if answer.ok else refusal(runtime, query, answer)
    return AdminExplanation(answer, problem, query.warnings)


def refusal(runtime: Runtime, query: ExplainQuery, answer: Explanation) -> str:
    """Why the STS would refuse, from the fault's code and the stored user and relying party."""
    fault = answer.fault or {}
    code = fault.get("code", "")
    reason = fault.get("reason", "")
    if code.endswith("InvalidScope"):
        return f"no relying party is registered for {query.rp}"
    try:
        user = find_user(runtime, query.user)
    except RequestFailed as exc:  # sts.store.ldap_directory.DirectoryUnavailable
        return f"the directory did not answer ({exc}); the STS would refuse with wst:RequestFailed"
    if code.endswith("FailedAuthentication") or user is None or user.disabled:
        if user is not None:
            return f"{query.user} is disabled"
        return f"no user named {query.user}" + (" (locally or in the directory)" if runtime.directory else "")
    party = runtime.stores.relying_parties.lookup(query.rp)
    if code.endswith("RequestFailed") and party is not None:
        why = _claim_problem(user, party, query.claims)
        if why:
            return why
    if code.endswith("InvalidTimeRange"):
        return f"the requested lifetime does not fit {query.rp}: {reason}"
    if code.endswith("BadRequest"):
        return f"{query.rp} does not accept this request: {reason}"
    return f"the STS would refuse: {reason or code}"


def find_user(runtime: Runtime, name: str) -> UserRecord | None:
    """The user an Issue would find: the local one first, then the directory's (``sts.service.directory``)."""
    user = runtime.stores.users.get(name)
    if user is None and runtime.directory is not None:
        user = runtime.directory.get(name)
    return user


def _claim_problem(user: UserRecord, party: RelyingParty, requested: Sequence[RequestedClaim]) -> str | None:
    """The first claim rule the user fails, in the order Issue checks them (``sts.service.claims``)."""
    have = {claim.uri for claim in user.claims if claim.values}
    for uri in party.required_claims:
        if uri not in have:
            return f"{user.name} lacks the claim {short_name(uri)} that {party.endpoint} requires"
    for claim in requested:
        if claim.optional:
            continue
        if not party.permits(claim.uri):
            return f"{party.endpoint} does not permit the claim {short_name(claim.uri)} (ask for it with ? to " \
                   f"make it optional)"
        if claim.uri not in have:
            return f"{user.name} lacks the requested claim {short_name(claim.uri)}"
    return None


def _token_type(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if text.lower() in TOKEN_TYPES or ":" in text:
        return text
    raise InvalidInput(f"token type must be saml11, saml20 or a token type URI, not {text!r}", field="token_type")


def _lifetime(value: str | int | None) -> int | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput("the lifetime is a whole number of seconds, at least 1", field="lifetime")
    return int(text)


__all__ = ["AdminExplanation", "ExplainQuery", "RequestedClaim", "explain", "find_user", "parse_requested_claims",
           "refusal"]
