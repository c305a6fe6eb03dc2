"""bench/stages.py times the stages it names, on requests that really issue tokens, and leaves the pipeline as it
found it."""

from __future__ import annotations

import pytest

from bench.stages import STAGES, measure, timed
from sts.web.pipeline import TrustEndpoint


def test_every_stage_is_timed_once_per_request_and_the_parts_fit_in_the_whole() -> None:
    ledger = measure("ecdsa", requests=20, warmup=5)
    labels = {label for _, _, label in STAGES}
    assert set(ledger.stages) == labels  # a stage never reached would be a wrapper on a dead path
    whole, calls = ledger.stages["0 the whole request"]
    assert calls == 1
    top_level = [micros for label, (micros, _) in ledger.stages.items() if label[0] in "1234567" and label[1] == " "]
    assert 0 < sum(top_level) <= whole
    assert ledger.floor_us > 0 and ledger.cpu_us > 0
    assert "the floor" in ledger.render()


def test_the_originals_are_put_back() -> None:
    original = TrustEndpoint.__dict__["handle"]
    with timed(STAGES):
        assert TrustEndpoint.__dict__["handle"] is not original
    assert TrustEndpoint.__dict__["handle"] is original


def test_a_static_method_is_refused_rather_than_timed_wrongly() -> None:
    with pytest.raises(ValueError, match="static"):
        with timed((("sts.service.providers", "SamlTokenProvider._key_info", "x"),)):
            pass


def test_a_refusal_half_way_puts_back_what_was_already_wrapped() -> None:
    original = TrustEndpoint.__dict__["handle"]
    with pytest.raises(ValueError):
        with timed((STAGES[0], ("sts.service.providers", "SamlTokenProvider._key_info", "x"))):
            pass
    assert TrustEndpoint.__dict__["handle"] is original
