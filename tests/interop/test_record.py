"""``make record``: each client peer's exchanges become request/response fixtures that interop.sidecar reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from interop.model import ClientCase, ClientOutcome, Exchange, Status, Verdict
from interop.matrix import parse_case
from interop.record import DEFAULT_CASES, OurClient, pretty, record, record_all, slug
from interop.sidecar import discover, load
from interop.target import Target, local_sts


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with local_sts() as started:
        yield started


@pytest.fixture(scope="module")
def recorded(target: Target, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    from interop.peers.msal_client import PEER as MSAL
    from interop.peers.zeep_client import PEER as ZEEP

    root = tmp_path_factory.mktemp("fixtures") / "recorded"
    return root, record(target, root / "live", [MSAL, ZEEP, OurClient()], list(DEFAULT_CASES))


def test_every_pair_is_written_and_loads(recorded: tuple[Path, list[Path]]) -> None:
    root, written = recorded
    requests = [p for p in written if p.name.endswith(".rst.xml")]
    # msal: SOAP 1.2 password-text bearer cases; zeep: all bearer cases without ActAs; ours: all
    plain = [c for c in DEFAULT_CASES if not c.act_as and c.key_type == "bearer"]
    msal_cases = [c for c in plain if c.soap == "1.2" and c.auth == "username-text"]
    assert len(requests) == len(msal_cases) + len(plain) + len(DEFAULT_CASES)
    assert {p.parent.name for p in requests} == {"msal", "zeep", "sts-client"}
    for request in requests:
        response = request.with_name(request.name.replace(".rst.xml", ".rstr.xml"))
        assert response in written
        fixture = load(request, root)
        assert fixture.source.kind == "recorded" and fixture.message.role == "request"
        assert fixture.replay.relying_party == parse_case(request.name.removesuffix(".rst.xml")).profile
        assert fixture.expect.outcome == "success" and fixture.expect.key_type in ("bearer", "symmetric", "public")
        assert fixture.expect.collection is (fixture.message.wstrust in ("1.3", "1.4"))  # 1.4 = 1.3 + ActAs
        answer = load(response, root)
        assert answer.compare.equivalent == request.relative_to(root).as_posix()
        assert answer.message.role == "response"
    assert len(list(discover(root))) == len(written)
    for folder in ("msal", "zeep", "sts-client"):
        provenance = (root / "live" / folder / "PROVENANCE.md").read_text()
        assert "password" in provenance and "make record" in provenance
    assert "SOAP 1.2 only" in (root / "live" / "msal" / "PROVENANCE.md").read_text()


def test_msal_replay_path_and_binding(recorded: tuple[Path, list[Path]]) -> None:
    root, _ = recorded
    fixture = load(root / "live" / "msal" / "saml20-wst2005-soap1.2.rst.xml", root)
    assert fixture.replay.path == "/adfs/services/trust/2005/usernamemixed"
    assert fixture.message.binding == "usernamemixed" and fixture.message.saml == "2.0"
    zeep = load(root / "live" / "zeep" / "saml11-plain-wst2005-soap1.2-digest.rst.xml", root)
    assert zeep.message.auth == "username-digest" and zeep.replay.path == "/services/sts"


def test_responses_are_kept_byte_for_byte_and_requests_only_reindented(
        recorded: tuple[Path, list[Path]]) -> None:
    root, written = recorded
    for path in written:
        etree.fromstring(path.read_bytes())  # well-formed
    request = root / "live" / "zeep" / "saml20-wst1.3-soap1.1.rst.xml"
    assert b"\n  <soap-env:Header" in request.read_bytes()
    # a signed document is never re-indented
    signed = b'<a><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><b/></ds:Signature></a>'
    assert pretty(signed) == signed


class _Failing:
    name = "failing 1.0"
    about = "a peer that always fails"

    def unavailable(self) -> str | None:
        return None

    def issue(self, target: Target, case: ClientCase) -> ClientOutcome:
        exchange = Exchange("http://127.0.0.1:9/services/sts", b"<rst/>", b"<fault/>", 500)
        return ClientOutcome(Verdict.failed("no"), exchanges=(exchange,))


def test_failures_are_not_recorded_but_listed(target: Target, tmp_path: Path) -> None:
    results = record_all(target, tmp_path / "recorded" / "live", [_Failing()], [DEFAULT_CASES[0]])
    assert [r.outcome.verdict.status for r in results] == [Status.FAIL] and results[0].files == ()
    provenance = (tmp_path / "recorded" / "live" / "failing" / "PROVENANCE.md").read_text()
    assert "not recorded, fail: no" in provenance


def test_case_names_and_slugs() -> None:
    case = parse_case("saml11-plain-wst2005-soap1.1-digest")
    assert (case.profile, case.wstrust, case.soap, case.auth) == ("saml11-plain", "2005", "1.1", "username-digest")
    with pytest.raises(ValueError):
        parse_case("saml99-wst1.3-soap1.2")
    assert slug("msal 1.39.0") == "msal" and slug("sts.client") == "sts-client"
