"""msal's own WS-Trust client: the RST msal builds and the regex parser it reads the RSTR with.

msal (Microsoft's authentication library for Python) talks WS-Trust to AD FS during its username/password flow
for federated accounts. That flow needs Azure AD around it, so this driver calls the two modules it uses directly:
``msal.wstrust_request.send_request`` (builds a SOAP 1.2 RST with a PasswordText UsernameToken, posts it, and
hands the answer to) ``msal.wstrust_response.parse_response`` (cuts TokenType and RequestedSecurityToken out by
regex). What msal then checks (``application.py``: the token type must be one of four SAML URIs) is checked here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any, Final

import requests

from ..model import ClientCase, ClientOutcome, Exchange, Verdict
from ..target import Target
from .recording import RecordingSession

__all__ = ["PEER", "MsalClient"]

#: The RSTR TokenType values msal turns into an OAuth grant (msal/application.py); anything else it refuses.
ACCEPTED_TOKEN_TYPES: Final = frozenset({
    "urn:oasis:names:tc:SAML:1.0:assertion",
    "urn:oasis:names:tc:SAML:2.0:assertion",
    "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1",
    "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0",
})

#: msal picks the WS-Trust version from these path fragments when no MEX told it the SOAP action.
ENDPOINTS: Final = {
    "1.3": "/adfs/services/trust/13/usernamemixed",
    "2005": "/adfs/services/trust/2005/usernamemixed",
}


def _version() -> str | None:
    try:
        return importlib.metadata.version("msal")
    except importlib.metadata.PackageNotFoundError:
        return None


class MsalClient:
    """The ``ClientPeer`` for msal's WS-Trust modules."""

    def __init__(self) -> None:
        self.name = f"msal {_version() or '(not installed)'}"
        self.about = ("Microsoft's msal for Python (PyPI): the AD FS WS-Trust client of its username/password flow, "
                      "wstrust_request.send_request + wstrust_response.parse_response")

    def unavailable(self) -> str | None:
        try:
            importlib.import_module("msal.wstrust_request")
        except ImportError as err:
            return f"msal is not installed ({err}); pip install msal"
        return None

    def issue(self, target: Target, case: ClientCase) -> ClientOutcome:
        reason = _not_applicable(target, case)
        if reason is not None:
            return ClientOutcome(Verdict.not_applicable(reason))
        rp = target.rp(case.profile)
        assert rp is not None  # _not_applicable checked it
        with RecordingSession() as session:
            session.verify = target.verify_tls
            try:
                result = _send(target, case, rp.address, session)
            except Exception as err:  # msal raises RuntimeError on a fault, ValueError on bad input, requests' own
                return ClientOutcome(Verdict.failed(f"msal: {type(err).__name__}: {err}"),
                                     exchanges=tuple(session.exchanges))
            return _outcome(result, tuple(session.exchanges))


def _not_applicable(target: Target, case: ClientCase) -> str | None:
    if case.soap != "1.2":
        return "msal sends SOAP 1.2 only"
    if case.act_as:
        return "msal sends no ActAs"
    if case.key_type != "bearer":
        return "msal asks for bearer tokens only"
    if case.auth == "x509":
        return "msal authenticates with a UsernameToken only (no X.509-signed requests)"
    if case.auth != "username-text":
        return "msal sends a PasswordText UsernameToken only (no digest)"
    if case.wstrust not in ENDPOINTS:
        return f"msal speaks WS-Trust 1.3 and 2005 only, not {case.wstrust}"
    if target.rp(case.profile) is None:
        return f"the target has no relying party of profile {case.profile}"
    return None


def _send(target: Target, case: ClientCase, applies_to: str, session: requests.Session) -> dict[str, Any]:
    wstrust_request: Any = importlib.import_module("msal.wstrust_request")
    # soap_action None: msal derives it (and the WS-Trust version) from the usernamemixed path, as without MEX.
    result: dict[str, Any] = wstrust_request.send_request(
        target.username, target.password, applies_to, target.url(ENDPOINTS[case.wstrust]), None, session)
    return result


def _outcome(result: dict[str, Any], exchanges: tuple[Exchange, ...]) -> ClientOutcome:
    token, token_type = result.get("token"), result.get("type")
    if not token or not token_type:
        return ClientOutcome(Verdict.failed(f"msal: unsuccessful RSTR: {result!r}"), exchanges=exchanges)
    if token_type not in ACCEPTED_TOKEN_TYPES:
        # msal's own words (application.py) for a type it cannot turn into a grant.
        return ClientOutcome(Verdict.failed(f"msal: RSTR returned unknown token type: {token_type}"),
                             token_type=token_type, exchanges=exchanges)
    # msal keeps RequestedSecurityToken's content as is; whitespace around the element is not part of the token.
    token_bytes = bytes(token).strip()
    return ClientOutcome(Verdict.passed(f"msal read a {token_type} token"), token=token_bytes,
                         token_type=token_type, exchanges=exchanges)


PEER: Final = MsalClient()
