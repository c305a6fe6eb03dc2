"""The peers of the suite, loaded so that one that cannot be imported is reported as skipped, not lost."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Final

from ..model import ClientCase, ClientOutcome, TokenCase, Verdict
from ..target import Target
from .base import ClientPeer, VerifierPeer

__all__ = ["client_peers", "verifier_peers"]

#: (fallback name, module): the verifier peers, in report column order.
VERIFIERS: Final = (
    ("xmlsec1", "interop.peers.xmlsec1"),
    ("signxml", "interop.peers.signxml_peer"),
    ("python3-saml", "interop.peers.onelogin"),
    ("pysaml2", "interop.peers.pysaml2_peer"),
    ("Node.js", "interop.peers.node"),
)
CLIENTS: Final = (
    ("msal", "interop.peers.msal_client"),
    ("zeep", "interop.peers.zeep_client"),
    ("node-soap", "interop.peers.node_soap_client"),
)


@dataclass
class Missing:
    """Stands in for a peer whose driver could not be imported; every cell says why."""

    name: str
    reason: str
    about: str = "could not be loaded"

    def unavailable(self) -> str | None:
        return self.reason

    def check(self, case: TokenCase) -> Verdict:
        return Verdict.skipped(self.reason)

    def issue(self, target: Target, case: ClientCase) -> ClientOutcome:
        return ClientOutcome(Verdict.skipped(self.reason))


def _load(name: str, module: str) -> object:
    try:
        return importlib.import_module(module).PEER
    except (ImportError, AttributeError) as err:
        return Missing(name, f"{module} cannot be imported: {err}")


def verifier_peers() -> list[VerifierPeer]:
    return [_load(name, module) for name, module in VERIFIERS]  # type: ignore[misc]


def client_peers() -> list[ClientPeer]:
    return [_load(name, module) for name, module in CLIENTS]  # type: ignore[misc]
