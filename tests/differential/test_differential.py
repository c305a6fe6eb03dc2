"""Differential test of request signatures: the STS accepts exactly what ``xmlsec1 --verify`` verifies (issue 13).

Each layout (one combination of the dimensions in ``dsig_layouts.DIMENSIONS``) is generated, signed by the
client a stack would use, and checked by both verifiers: both must accept it. Then every tampered variant must be
refused by the STS: a byte of the Body, of the Timestamp or of SignedInfo changed, a reference re-pointed (to the
Timestamp, or to the Body under a new Id; xmlsec1 must refuse these five too), the signed Body moved into a
header, or copied there while the envelope's Body with the same Id is changed (XSW: xmlsec1 has no notion of
where the Body belongs, these are the STS's own rules).
``make test`` runs the pairwise cover; ``make differential`` (DIFFERENTIAL=full) runs every combination and prints
the summary.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from dsig_layouts import DIMENSIONS, TAMPERS, Layout, build, full_product, layouts, pairwise, tamper
from sts.protocol.wsse.signature import AlgorithmPolicy
from tally import FULL, TALLY
from verdicts import Verifiers

LAYOUTS = list(layouts(FULL))
#: Tampers xmlsec1 must refuse as well: it checks digests and the signature value, not the envelope's shape.
XMLSEC1_REFUSES = ("body-byte", "timestamp-byte", "signedinfo-byte", "reference-repointed", "reference-renamed")


@pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.label() for layout in LAYOUTS])
def test_sts_agrees_with_xmlsec1(verifiers: Verifiers, layout: Layout) -> None:
    prepared = verifiers.prepared(LAYOUTS, layout)
    verdict = verifiers.sts(prepared.message)
    TALLY.record(layout.label(), prepared.xmlsec1_ok, verdict)
    assert prepared.xmlsec1_ok, "the generator wrote a signature xmlsec1 does not verify"
    assert verdict == f"accepted:{verifiers.signer_for(layout).name}"


@pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.label() for layout in LAYOUTS])
def test_tampered_variants_are_refused(verifiers: Verifiers, layout: Layout) -> None:
    signer = verifiers.signer_for(layout)
    built = build(layout, signer)  # no xmlsec1 verdict needed: it is asked about the tampered copies only
    for how in TAMPERS:
        message = tamper(built, how)
        verdict = verifiers.sts(message)
        assert not verdict.startswith("accepted"), f"{how} accepted"
        assert not verdict.startswith(("MessageExpired", "ReplayedMessage")), f"{how}: refused for its time only"
        if how in XMLSEC1_REFUSES and not FULL:  # in the full product: the STS side only (time)
            assert not verifiers.xmlsec1(message, signer, f"{how}.xml"), f"xmlsec1 verified {how}"
        TALLY.refused(how, verdict)


def test_pairwise_cover_meets_every_pair() -> None:
    rows = pairwise()
    for a, b in itertools.combinations(DIMENSIONS, 2):
        met = {(getattr(row, a), getattr(row, b)) for row in rows}
        assert met == set(itertools.product(DIMENSIONS[a], DIMENSIONS[b])), (a, b)
    assert len(rows) < len(full_product()) // 100


def test_sha1_needs_a_client_registered_with_allow_sha1(verifiers: Verifiers) -> None:
    """xmlsec1 verifies an RSA-SHA1 signature by any client; our policy accepts it only from an --allow-sha1 one."""
    layout = dataclasses.replace(LAYOUTS[0], algorithm="rsa-sha1")
    strict = verifiers.signers["rsa"]
    message = build(layout, strict).serialize()
    assert verifiers.xmlsec1(message, strict)
    assert verifiers.sts(message).startswith("UnsupportedAlgorithm")
    assert verifiers.sts(message, policy=AlgorithmPolicy.strict().with_sha1()) == "accepted:rsa"
