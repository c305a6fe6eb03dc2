"""Fuzz target 3: the whole pipeline in process (``TrustEndpoint.handle``) on a temporary home.

Properties: every answer is a well-formed SOAP message, HTTP status 200, 400, 415 or 500; a fault carries a known
code; and nothing reaches the catch-all that answers an unhandled exception as "unexpected error" (it logs one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from fuzzing import FreshSeeds, fuzz_settings, hostile_files, request_envelopes, tally
from mutations import mutate
from signing import make_client, rst_root
from sts import ns
from sts.config import load_settings
from sts.errors import SECURITY_FAULTS, TRUST_FAULTS
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.model import RelyingParty
from sts.protocol.wsse.build import sign_envelope
from sts.protocol.xmlsafe import parse_trusted
from sts.runtime import Runtime, build_runtime
from sts.uris import SoapVersion
from sts.web.pipeline import SoapResponse

PLAIN_RP = "https://fuzz-plain.example/"
KNOWN_CODES = frozenset(TRUST_FAULTS) | frozenset(SECURITY_FAULTS) | {
    "VersionMismatch", "MustUnderstand", "Sender", "Receiver", "Client", "Server", "DataEncodingUnknown",
    "ActionNotSupported", "InvalidAddressingHeader", "MessageAddressingHeaderRequired",
}


class _Unexpected(logging.Handler):
    """Collects what the pipeline logs at ERROR: its catch-all logs every unhandled exception there."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    home: Path = tmp_path_factory.mktemp("fuzz-home")
    init_home(home)
    # No throttle delay: the fuzzer fails passwords thousands of times (the throttle has tests of its own).
    settings = replace(load_settings(home), auth_throttle_base_delay_ms=0, auth_throttle_max_delay_ms=0)
    rt = build_runtime(settings.with_bind("127.0.0.1", 8080, tls=False))
    rt.stores.relying_parties.add(RelyingParty(endpoint=PLAIN_RP, encrypt=False))
    rt.stores.clients.add("svc", CLIENT[1].public_bytes(Encoding.PEM))
    yield rt
    rt.stores.close()


@pytest.fixture(scope="module")
def unexpected() -> Iterator[_Unexpected]:
    handler = _Unexpected()
    logger = logging.getLogger("sts.web.pipeline")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


CLIENT = make_client("svc")


def _signed() -> bytes:
    root = rst_root(applies_to=PLAIN_RP)
    sign_envelope(root, CLIENT[0], CLIENT[1])
    serialised: bytes = etree.tostring(root)
    return serialised


#: Valid requests three times over: the hostile files are seeds too, but most of their mutants stop at the DTD.
SEEDS = FreshSeeds(lambda: (request_envelopes(DEMO_USER, DEMO_PASSWORD, PLAIN_RP)
                            + request_envelopes(DEMO_USER, DEMO_PASSWORD, DEMO_RP_ENDPOINT)[:1] + [_signed()]) * 3
                   + hostile_files())


def handle(runtime: Runtime, blob: bytes, soap: SoapVersion = SoapVersion.SOAP12) -> SoapResponse:
    from sts.model import RequestContext

    ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=datetime.now(UTC),
                         soap_version=soap)
    return runtime.endpoint.handle(blob, ctx)


def check_answer(response: SoapResponse, unexpected: _Unexpected) -> str:
    """The outcome (``200`` or the fault code), once the answer is known to be clean."""
    assert not unexpected.records, f"unhandled exception: {unexpected.records[0].getMessage()}"
    assert response.status in (200, 400, 415, 500), response.status
    root = parse_trusted(response.body)
    fault = root.find(f".//{{{ns.SOAP12}}}Fault")
    if fault is None:
        fault = root.find(f".//{{{ns.SOAP11}}}Fault")
    if fault is None:
        assert response.status == 200
        return "200"
    codes = [v.text or "" for v in fault.iter(f"{{{ns.SOAP12}}}Value")] or [fault.findtext("faultcode") or ""]
    code = codes[-1].rpartition(":")[2]
    assert code in KNOWN_CODES, f"unknown fault code {codes[-1]!r}"
    return code


def test_the_seeds_get_tokens(runtime: Runtime, unexpected: _Unexpected) -> None:
    for seed in request_envelopes(DEMO_USER, DEMO_PASSWORD, PLAIN_RP)[:1]:
        response = handle(runtime, seed)
        check_answer(response, unexpected)
        assert response.status == 200, response.body[:500]


def test_the_catch_all_is_detected(runtime: Runtime, unexpected: _Unexpected,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The property's own check: an unhandled exception inside the service is seen as one."""
    unexpected.records.clear()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("planted")

    monkeypatch.setattr(runtime.service, "issue", broken)
    response = handle(runtime, request_envelopes(DEMO_USER, DEMO_PASSWORD, PLAIN_RP)[0])
    with pytest.raises(AssertionError, match="unhandled exception"):
        check_answer(response, unexpected)
    unexpected.records.clear()


@fuzz_settings
@given(st.data())
def test_pipeline(runtime: Runtime, unexpected: _Unexpected, data: st.DataObject) -> None:
    unexpected.records.clear()
    seed = data.draw(st.sampled_from(SEEDS()), label="seed")
    soap = SoapVersion.SOAP11 if b"schemas.xmlsoap.org/soap/envelope" in seed[:200] else SoapVersion.SOAP12
    blob = mutate(data, seed)
    started = time.monotonic()
    response = handle(runtime, blob, soap)
    tally("pipeline", check_answer(response, unexpected), started)
