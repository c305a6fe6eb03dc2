"""Readers of recorded documents (MEX, WSDL, tokens, responses): one verdict per reader a sidecar names.

- ``client-mex``: our ``sts.client.mex.read_mex`` lists the endpoints; ``[read] endpoints`` is how many;
- ``msal-mex``: msal's own MEX parser must find its username/password endpoint (an independent reading);
- ``client-wsdl``: our zeep-based ``TrustClient`` loads the WSDL (relative imports from the fixture's folder,
  never the network) and picks a port of the sidecar's WS-Trust version;
- ``client-policy``: ``sts.client.policy`` finds the ``sp:IssuedToken`` policies of a service WSDL;
- ``token-show``: ``sts token show`` describes it; ``xsd``: it validates against the official schemas.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any, Final


from sts.client.trust import TrustClient
from sts.client.mex import MexError, read_mex
from sts.client.policy import PolicyError, find_issued_token_policies
from sts.uris import TrustVersion
from sts.protocol.xmlsafe import parse
from sts.protocol.wstrust.response import TrustClientError

from .model import Verdict
from .sidecar import Fixture
from .xsd import xsd_problems

__all__ = ["read_document"]

_VERSIONS: Final = {"2005": TrustVersion.WST2005, "1.3": TrustVersion.WST13, "1.4": TrustVersion.WST13}


def read_document(reader: str, fixture: Fixture) -> Verdict:
    try:
        return _READERS[reader](fixture)
    except Exception as err:  # noqa: BLE001 - a reader's crash is that reader's failure, shown in the report
        return Verdict.failed(f"{reader} crashed on {fixture.name}: {type(err).__name__}: {err}")


def _client_mex(fixture: Fixture) -> Verdict:
    try:
        endpoints = read_mex(fixture.data())
    except (MexError, ValueError) as err:
        return Verdict.failed(f"our MEX reader: {err}")
    usernames = [e for e in endpoints if e.authentication == "username"]
    summary = f"{len(endpoints)} endpoints, {len(usernames)} for user names"
    if fixture.read.endpoints is not None and len(endpoints) != fixture.read.endpoints:
        return Verdict.failed(f"expected {fixture.read.endpoints} endpoints, read {summary}")
    return Verdict.passed(summary)


def _msal_mex(fixture: Fixture) -> Verdict:
    try:
        from msal.mex import Mex  # noqa: PLC0415 - a peer, imported on use
    except ImportError:
        return Verdict.skipped("msal is not installed")
    endpoint = Mex(fixture.data()).get_wstrust_username_password_endpoint()
    if not endpoint:
        return Verdict.failed("msal's MEX parser found no username/password endpoint")
    return Verdict.passed(f"msal picks {endpoint['address']}")


def _client_wsdl(fixture: Fixture) -> Verdict:
    version = _VERSIONS.get(fixture.message.wstrust)
    if version is None:
        return Verdict.failed("[message] wstrust is needed to pick a port")
    try:
        client = TrustClient(str(fixture.path), version=version, transport=_offline_transport())
    except TrustClientError as err:
        return Verdict.failed(f"our client: {err}")
    return Verdict.passed(f"port {client.port_name}, SOAP {client.soap.name[-2:]}, {client.endpoint}")


def _client_policy(fixture: Fixture) -> Verdict:
    try:
        policies = find_issued_token_policies(parse(fixture.data()))
    except PolicyError as err:
        return Verdict.failed(f"our policy reader: {err}")
    if not policies:
        return Verdict.failed("no sp:IssuedToken policy found")
    return Verdict.passed(f"{len(policies)} IssuedToken policies")


def _token_show(fixture: Fixture) -> Verdict:
    command = [sys.executable, "-m", "sts.cli.main", "token", "show", str(fixture.path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 or "Traceback" in done.stderr:
        return Verdict.failed(f"`sts token show` exited {done.returncode}: {done.stderr.strip()[-300:]}")
    first = next((line for line in done.stdout.splitlines() if line.strip()), "")
    return Verdict.passed(first.strip()[:120])


def _xsd(fixture: Fixture) -> Verdict:
    found = xsd_problems(fixture.data())
    return Verdict.failed("; ".join(found)) if found else Verdict.passed("schema-valid")


def _offline_transport() -> Any:
    """A zeep transport that reads local files only: a WSDL's remote import must not reach the network."""
    from zeep.transports import Transport  # noqa: PLC0415 - zeep is imported on use, as in sts.client.trust

    class Offline(Transport):
        def load(self, url: str) -> bytes:
            if "://" in url and not url.startswith("file://"):
                raise ValueError(f"would fetch {url} (the interop suite never goes to the network)")
            return bytes(super().load(url))  # type: ignore[no-untyped-call]

    return Offline()  # type: ignore[no-untyped-call]


_READERS: Final[dict[str, Callable[[Fixture], Verdict]]] = {
    "client-mex": _client_mex, "msal-mex": _msal_mex, "client-wsdl": _client_wsdl,
    "client-policy": _client_policy, "token-show": _token_show, "xsd": _xsd,
}
