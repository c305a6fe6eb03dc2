"""The peer matrix: every token case checked by every verifier peer, every client case run by every client peer.

Token cases are issued by our own client (``sts.client.trust``) for each relying-party profile of the target, in
WS-Trust 1.3 and 2005/02: SAML 1.1 and 2.0, encrypted (AES-GCM, and AES-CBC for legacy relying parties) and
not, RSA-SHA256, plus ECDSA-SHA256 from a second target whose signing key is an EC key (the opt-in). Client
cases are Issue requests the client peers build themselves; the token each extracts is then checked by our
verifier against the same expectations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final


from sts.client.trust import TrustClient, UsernameCredentials
from sts.uris import SoapVersion, TokenType, TrustVersion
from sts.rp.verified_token import TokenRejected
from sts.protocol.wstrust.response import IssuedTokenResult, TrustClientError

from .expect import verifier_for
from .model import ClientCase, ClientOutcome, Expected, TokenCase, Verdict
from .peers.base import ClientPeer, VerifierPeer
from .target import PROFILES, RelyingParty, Target
from .xsd import xsd_problems

__all__ = ["ClientRow", "TokenRow", "case_name", "client_cases", "parse_case", "issue_token_cases", "run_client_cases", "run_token_cases"]

_AUTH_SUFFIX: Final = {"username-text": "", "username-digest": "-digest", "x509": "-x509"}
_CASE: Final = re.compile(r"^(?P<profile>[a-z0-9-]+?)-wst(?P<wst>1\.3|2005)-soap(?P<soap>1\.[12])(?P<auth>-digest|-x509)?"
                    r"(?P<actas>-actas)?(?P<key>-symmetric|-publickey)?$")
_KEY_SUFFIX: Final = {"bearer": "", "symmetric": "-symmetric", "public": "-publickey"}
_VERSIONS: Final = {"1.3": TrustVersion.WST13, "2005": TrustVersion.WST2005}
_SOAP: Final = {"1.1": SoapVersion.SOAP11, "1.2": SoapVersion.SOAP12}
#: (profile, WS-Trust versions) issued for the verifier peers.
TOKEN_PROFILES: Final = (
    ("saml11-plain", ("1.3", "2005")), ("saml11", ("1.3", "2005")), ("saml20-plain", ("1.3", "2005")),
    ("saml20", ("1.3", "2005")), ("saml11-cbc", ("1.3",)), ("saml20-cbc", ("1.3",)),
)
ECDSA_PROFILES: Final = (("saml11-plain", ("1.3",)), ("saml20-plain", ("1.3",)), ("saml20", ("1.3",)))


@dataclass
class TokenRow:
    case: str
    description: str
    cells: dict[str, Verdict] = field(default_factory=dict)   # peer name -> verdict
    issue: Verdict | None = None                              # set when the token could not be issued


@dataclass
class ClientRow:
    case: str
    description: str
    cells: dict[str, Verdict] = field(default_factory=dict)


Progress = Callable[[str], None]


def expected_for(target: Target, address: str) -> Expected:
    return Expected(subject=target.username, audience=address, claims=dict(target.user_claims))


def token_case_name(profile: str, wstrust: str, ecdsa: bool = False) -> str:
    return f"{profile}-{'ecdsa-' if ecdsa else ''}wst{wstrust}"


def ecdsa_case_names() -> list[str]:
    return [token_case_name(profile, wst, ecdsa=True) for profile, versions in ECDSA_PROFILES for wst in versions]


def issue_token_cases(target: Target, profiles: Iterable[tuple[str, Sequence[str]]]) -> list[TokenCase | TokenRow]:
    """One token per (profile, version) from the target; a row with the reason when one cannot be issued."""
    cases: list[TokenCase | TokenRow] = []
    for profile_name, versions in profiles:
        for wst in versions:
            name = token_case_name(profile_name, wst, ecdsa=target.signature.startswith("ecdsa"))
            rp = target.rp(profile_name)
            if rp is None:
                cases.append(TokenRow(name, name, issue=Verdict.not_applicable(f"no {profile_name} relying party")))
                continue
            try:
                cases.append(_issue(target, name, rp, wst))
            except (TrustClientError, ValueError) as err:
                cases.append(TokenRow(name, name, issue=Verdict.failed(f"our client could not get the token: {err}")))
    return cases


def issue_token(target: Target, rp: RelyingParty, wst: str = "1.3") -> IssuedTokenResult:
    """A bearer token for ``rp`` from the target, asked for by our own client as the target's user."""
    client = TrustClient.for_endpoint(target.sts_url, version=_VERSIONS[wst], verify=target.verify_tls,
                                      credentials=UsernameCredentials(target.username, target.password))
    return client.issue(rp.address, token_type=TokenType.from_short(rp.profile.token_type))


def _issue(target: Target, name: str, rp: RelyingParty, wst: str) -> TokenCase:
    result = issue_token(target, rp, wst)
    schema = xsd_problems(result.raw)
    if schema:
        raise ValueError(f"the answer is not schema-valid: {'; '.join(schema)}")
    profile = rp.profile
    return TokenCase(name=name, saml=profile.saml, encrypted=profile.encrypted, signature=target.signature,
                     data_encryption=profile.data_encryption, key_transport=profile.key_transport,
                     token=result.token, rstr=result.raw, sts_cert_pem=target.sts_cert_pem, rp_key_pem=rp.key_pem,
                     expected=expected_for(target, rp.address))


def describe(case: TokenCase) -> str:
    wst = case.name.rsplit("wst", 1)[-1]
    protection = f"encrypted {case.data_encryption} + {case.key_transport}" if case.encrypted else "not encrypted"
    signature = f"{case.signature} (opt-in, ours only)" if case.signature.startswith("ecdsa") else case.signature
    return f"SAML {case.saml}, {protection}, {signature}, WS-Trust {'2005/02' if wst == '2005' else wst}"


def run_token_cases(cases: list[TokenCase | TokenRow], peers: Sequence[VerifierPeer],
                    progress: Progress) -> list[TokenRow]:
    rows = []
    unavailable = {p.name: p.unavailable() for p in peers}
    for case in cases:
        if isinstance(case, TokenRow):
            rows.append(case)
            progress(f"token {case.case}: {case.issue.status.value if case.issue else '?'}")
            continue
        row = TokenRow(case.name, describe(case))
        for peer in peers:
            reason = unavailable[peer.name]
            row.cells[peer.name] = Verdict.skipped(reason) if reason else _safe_check(peer, case)
            progress(f"token {case.name} × {peer.name}: {row.cells[peer.name].status.value}")
        rows.append(row)
    return rows


def _safe_check(peer: VerifierPeer, case: TokenCase) -> Verdict:
    try:
        return peer.check(case)
    except Exception as err:  # noqa: BLE001 - a driver's crash is that cell's failure, not the run's
        return Verdict.failed(f"the {peer.name} driver crashed: {type(err).__name__}: {err}")


def case_name(profile: str, wstrust: str, soap: str, auth: str = "username-text", act_as: bool = False,
              key_type: str = "bearer") -> str:
    """``saml20-wst1.3-soap1.2``, with ``-digest`` for a PasswordDigest, ``-x509`` for a signed request,
    ``-actas`` for a WS-Trust 1.4 ActAs request and ``-symmetric`` / ``-publickey`` for holder-of-key."""
    return (f"{profile}-wst{wstrust}-soap{soap}{_AUTH_SUFFIX[auth]}{'-actas' if act_as else ''}"
            f"{_KEY_SUFFIX[key_type]}")


def parse_case(name: str) -> ClientCase:
    match = _CASE.match(name)
    if match is None or match["profile"] not in PROFILES:
        raise ValueError(f"{name!r}: expected <profile>-wst<1.3|2005>-soap<1.1|1.2>[-digest|-x509][-actas]"
                         "[-symmetric|-publickey], "
                         f"profile one of {', '.join(sorted(PROFILES))}")
    auth = next(a for a, suffix in _AUTH_SUFFIX.items() if suffix == (match["auth"] or ""))
    key_type = next(k for k, suffix in _KEY_SUFFIX.items() if suffix == (match["key"] or ""))
    return ClientCase(name, match["profile"], match["wst"], match["soap"], auth, bool(match["actas"]), key_type)


def client_cases(target: Target) -> list[ClientCase]:
    """Both SAML versions × both WS-Trust versions × SOAP 1.2/1.1 with password text and X.509, and digest."""
    cases = []
    for profile in ("saml11-plain", "saml20"):
        for wst in ("1.3", "2005"):
            names = [case_name(profile, wst, soap) for soap in ("1.2", "1.1")]
            names += [case_name(profile, wst, "1.2", auth) for auth in ("username-digest", "x509")]
            names.append(case_name(profile, wst, "1.1", "x509"))  # signed requests on both SOAP versions
            cases += [parse_case(name) for name in names]
    return cases


def run_client_cases(target: Target, cases: Sequence[ClientCase], peers: Sequence[ClientPeer],
                     progress: Progress) -> list[ClientRow]:
    rows = []
    unavailable = {p.name: p.unavailable() for p in peers}
    for case in cases:
        auth = {"username-text": "password text", "username-digest": "password digest",
                "x509": "X.509 signature"}[case.auth]
        row = ClientRow(case.name, f"{case.profile}, WS-Trust {case.wstrust}, SOAP {case.soap}, {auth}")
        for peer in peers:
            reason = unavailable[peer.name]
            row.cells[peer.name] = Verdict.skipped(reason) if reason else _client_cell(peer, target, case)
            progress(f"client {case.name} × {peer.name}: {row.cells[peer.name].status.value}")
        rows.append(row)
    return rows


def _client_cell(peer: ClientPeer, target: Target, case: ClientCase) -> Verdict:
    rp = target.rp(case.profile)
    if rp is None:
        return Verdict.not_applicable(f"the target has no {case.profile} relying party")
    try:
        outcome = peer.issue(target, case)
    except Exception as err:  # noqa: BLE001 - see _safe_check
        return Verdict.failed(f"the {peer.name} driver crashed: {type(err).__name__}: {err}")
    if outcome.verdict.status.value != "pass":
        return outcome.verdict
    for exchange in outcome.exchanges:
        schema = xsd_problems(exchange.response) if target.ours else []
        if schema:
            return Verdict.failed(f"our answer to {peer.name} is not schema-valid: {'; '.join(schema)}")
    subject = target.client_name if case.auth == "x509" else target.username
    return _token_verdict(outcome, target, rp, subject)


def _token_verdict(outcome: ClientOutcome, target: Target, rp: RelyingParty, subject: str | None) -> Verdict:
    if outcome.token is None:
        return Verdict.failed("the peer reported success but extracted no token")
    if rp.profile.encrypted and rp.key_pem is None:
        return replace(outcome.verdict, detail=outcome.verdict.detail + " (token not checked: no RP key)")
    try:
        verified = verifier_for(target, rp).verify(outcome.token)  # it parses with sts.protocol.xmlsafe
    except TokenRejected as err:  # the verifier's one exception, malformed XML included
        return Verdict.failed(f"the token the peer extracted does not verify: {err}")
    missing = [uri for uri in target.user_claims if uri not in verified.claims]
    if missing:
        return Verdict.failed(f"the token lacks {', '.join(missing)}")
    if subject is not None and verified.subject != subject:
        return Verdict.failed(f"the token is about {verified.subject!r}, not {subject!r}")
    return Verdict.passed(f"{outcome.verdict.detail}; token verified ({verified.version}, {outcome.token_type})")
