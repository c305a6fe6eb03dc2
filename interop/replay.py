"""Replay the recorded fixtures against a target and judge each one (what "pass" means per kind).

- a recorded **request** is freshened, validated against the XSDs, sent over HTTP, and its answer must meet
  the sidecar's ``[expect]`` (and validate against the XSDs);
- a recorded **response** is parsed by our client (``sts.protocol.wstrust.response``) and by ``sts token show``, and the
  target's answer to the ``[compare] equivalent`` request must have the same shape (see ``interop.shape``);
- a recorded **MEX / WSDL / token** is read by what its ``[read] by`` names.

Each check is one ``Verdict`` in a ``FixtureResult``; a fixture the sidecar marks unsupported is not sent and
shows its reason instead.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Final

import httpx

from sts import ns

from sts.protocol.wstrust.response import TrustClientError, TrustFault, parse_response

from .answer import Answer, AnswerError, describe, read_answer
from .documents import read_document
from .expect import problems
from .freshen import FreshRequest, TokenSource, freshen
from .model import Verdict
from .shape import shape_problems
from .sidecar import Fixture
from .target import Target
from .xmlread import XmlError, read_xml
from .xsd import xsd_problems

__all__ = ["FixtureResult", "Replayer"]


@dataclass
class FixtureResult:
    fixture: Fixture
    checks: dict[str, Verdict] = field(default_factory=dict)
    exchange: tuple[bytes, bytes] | None = None      # (request sent, answer) of a replayed request

    @property
    def failed(self) -> bool:
        return any(v.status.value == "fail" for v in self.checks.values())


class Replayer:
    """Replays fixtures against one target; answers to requests are kept for the responses' shape checks."""

    def __init__(self, target: Target, tokens: TokenSource, fixtures: dict[str, Fixture],
                 http: httpx.Client | None = None) -> None:
        self.target = target
        self.tokens = tokens
        self.fixtures = fixtures
        self.http = http or httpx.Client(timeout=30, verify=target.verify_tls)
        self._answers: dict[tuple[str, str], FixtureResult] = {}

    def run(self, fixture: Fixture) -> FixtureResult:
        """One fixture's checks; whatever an odd answer makes go wrong is that fixture's failure, not the run's."""
        try:
            return self._run(fixture)
        except Exception as err:  # noqa: BLE001 - e.g. another STS's answer our readers did not foresee
            return FixtureResult(fixture, {"replay": Verdict.failed(
                f"{fixture.name}: the suite could not judge it: {type(err).__name__}: {err}")})

    def _run(self, fixture: Fixture) -> FixtureResult:
        if fixture.unsupported is not None:
            return FixtureResult(fixture, {"replay": Verdict.not_applicable(fixture.unsupported)})
        role = fixture.message.role
        if role == "request":
            return self.request(fixture)
        if role == "response":
            return self._response(fixture)
        return FixtureResult(fixture, {reader: read_document(reader, fixture)
                                       for reader in fixture.read.by})

    # --- requests -------------------------------------------------------------------------------------------

    def request(self, fixture: Fixture, variant: str = "as-recorded") -> FixtureResult:
        if (fixture.name, variant) in self._answers:
            return self._answers[fixture.name, variant]
        result = FixtureResult(fixture)
        self._answers[fixture.name, variant] = result
        if fixture.expect.ours_only and not self.target.ours:
            result.checks["replay"] = Verdict.not_applicable("a feature of this project's STS only")
            return result
        if fixture.message.auth == "x509" and self.target.client_key_pem is None:
            result.checks["replay"] = Verdict.not_applicable("a signed request, and no X.509 client key was given")
            return result
        rp = self.target.rp(fixture.replay.relying_party)
        if rp is None:
            result.checks["replay"] = Verdict.not_applicable(
                f"the target has no relying party of profile {fixture.replay.relying_party}")
            return result
        try:
            fresh = freshen(fixture, self.target, self.tokens, variant)
        except (ValueError, XmlError) as err:
            result.checks["replay"] = Verdict.failed(f"{fixture.name}: cannot rewrite the request: {err}")
            return result
        result.checks["xsd (request)"] = _verdict(xsd_problems(fresh.body))
        answer, raw = self._send(fresh, result)
        if answer is None:
            return result
        result.exchange = (fresh.body, raw)
        if variant == "as-recorded":
            found = _version_problems(fixture, answer) + problems(answer, fixture.expect, self.target, rp)
            result.checks["replay"] = _verdict(found, describe(answer))
        result.checks["xsd (answer)"] = _verdict(xsd_problems(raw))
        return result

    def _send(self, fresh: FreshRequest, result: FixtureResult) -> tuple[Answer | None, bytes]:
        try:
            response = self.http.post(fresh.url, content=fresh.body, headers=fresh.headers)
        except httpx.HTTPError as err:
            result.checks["replay"] = Verdict.failed(f"no answer from {fresh.url}: {err}")
            return None, b""
        try:
            return read_answer(response.content), response.content
        except AnswerError as err:
            result.checks["replay"] = Verdict.failed(f"HTTP {response.status_code}, {err}")
            return None, response.content

    # --- responses ------------------------------------------------------------------------------------------

    def _response(self, fixture: Fixture) -> FixtureResult:
        result = FixtureResult(fixture)
        equivalent = self.fixtures.get(fixture.compare.equivalent or "")
        result.checks["our client"] = _client_reads(fixture, _entropy(equivalent) if equivalent else None)
        result.checks["sts token show"] = read_document("token-show", fixture)
        for reader in fixture.read.by:
            if reader not in result.checks:
                result.checks[reader] = read_document(reader, fixture)
        if equivalent is not None:
            result.checks["shape"] = self._shape(fixture, equivalent, fixture.compare.variant)
        return result

    def _shape(self, fixture: Fixture, request: Fixture, variant: str) -> Verdict:
        ours = self.request(request, variant)
        if ours.exchange is None:
            replay = ours.checks.get("replay", Verdict.failed("not replayed"))
            return Verdict(replay.status, f"the equivalent request {request.name} got no answer: {replay.detail}")
        found = shape_problems(fixture.data(), ours.exchange[1], fixture.compare.ignore)
        told = "" if variant == "as-recorded" else f" ({variant})"
        return _verdict(found, f"same shape as our answer to {request.name}{told}")


_SOAP_NS: Final = {"1.1": ns.SOAP11, "1.2": ns.SOAP12, "none": ns.SOAP12}  # a bare body goes out in SOAP 1.2
_TRUST_NS: Final = {"2005": ns.WST2005, "1.3": ns.WST13, "1.4": ns.WST13}  # 1.4 messages are 1.3 + 200802 parts


def _version_problems(fixture: Fixture, answer: Answer) -> list[str]:
    """The answer speaks the request's SOAP and WS-Trust versions."""
    found = []
    if answer.soap_ns != _SOAP_NS[fixture.message.soap]:
        found.append(f"answered in SOAP namespace {answer.soap_ns}, asked in SOAP {fixture.message.soap}")
    trust = {r.trust_ns for r in answer.rstrs}
    if fixture.message.wstrust in _TRUST_NS and trust - {_TRUST_NS[fixture.message.wstrust]}:
        found.append(f"RSTR in namespace {', '.join(sorted(trust))}, asked in WS-Trust {fixture.message.wstrust}")
    return found


def _entropy(request: Fixture) -> bytes | None:
    """The requester's entropy in a recorded request: our client needs it to compute a ComputedKey proof."""
    root = read_xml(request.data())
    secret = root.find(".//{*}Entropy/{*}BinarySecret")
    return base64.b64decode(secret.text or "") if secret is not None else None


def _client_reads(fixture: Fixture, client_entropy: bytes | None = None) -> Verdict:
    """Our own client's RSTR reader must take the recording (a fault must come back as the fault it is); the
    requester's entropy comes from the equivalent request, when there is one."""
    wants_token = fixture.message.operation in {"issue", "renew"} and b"RequestedSecurityToken" in fixture.data()
    try:
        result = parse_response(fixture.data(), require_token=wants_token, client_entropy=client_entropy)
    except TrustFault as fault:
        return Verdict.passed(f"read as fault {fault.fault_code[1]}: {fault.fault_reason}")
    except TrustClientError as err:
        return Verdict.failed(f"our client cannot read it: {err}")
    created, expires = result.lifetime.created, result.lifetime.expires
    lifetime = f"{(expires - created).total_seconds():.0f} s" if created and expires else "not given"
    return Verdict.passed(f"token type {result.token_type or 'not given'}, lifetime {lifetime}")


def _verdict(found: list[str], ok: str = "") -> Verdict:
    return Verdict.failed("; ".join(found)) if found else Verdict.passed(ok)

