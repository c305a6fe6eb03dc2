"""Fuzz target 1: the request parser (xmlsafe.parse -> soap.parse_envelope -> addressing -> the RST parser).

Property: mutated requests and hostile files yield a parsed request or an ``StsError`` (a clean fault), nothing
else, within the deadline.
"""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from fuzzing import FreshSeeds, fuzz_settings, hostile_files, request_envelopes, tally
from mutations import mutate
from sts.errors import StsError
from sts.protocol.addressing import parse_addressing
from sts.protocol.soap import parse_envelope
from sts.protocol.wsse.header import parse_security_header
from sts.protocol.wstrust.parse import is_collection, parse_rst, parse_rst_collection
from sts.protocol.xmlsafe import parse

#: Valid envelopes three times over: the hostile files are seeds too, but most of their mutants stop at the DTD.
SEEDS = FreshSeeds(lambda: request_envelopes("alice", "wonderland") * 3 + hostile_files())


def read_request(blob: bytes) -> None:
    """What the endpoint does before authentication and the service, minus the network."""
    root = parse(blob)
    envelope = parse_envelope(root)
    parse_addressing(envelope.headers)
    parse_security_header(envelope)
    if envelope.body is None:
        return
    if is_collection(envelope.body):
        parse_rst_collection(envelope.body)
    else:
        parse_rst(envelope.body)


def _clean(blob: bytes, target: str = "request parser (mutated)") -> None:
    started = time.monotonic()
    try:
        read_request(blob)
    except StsError as err:
        tally(target, type(err).__name__, started)
    else:
        tally(target, "parsed", started)


def test_the_seeds_parse() -> None:
    for seed in request_envelopes("alice", "wonderland"):
        read_request(seed)


@fuzz_settings
@given(st.data())
def test_request_parser(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS()), label="seed")
    _clean(mutate(data, seed))


@fuzz_settings
@given(st.binary(max_size=512))
def test_request_parser_random_bytes(blob: bytes) -> None:
    _clean(blob, "request parser (random bytes)")
