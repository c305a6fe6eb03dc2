"""The pairwise layouts end to end: over HTTP to the live STS, each gets a token (SOAP 1.1 and 1.2).

The in-process differential (test_differential.py) proves the verdicts; this proves the same messages go
through the whole pipeline (content type, dispatch, the RST read from the signed Body, issuance), with the
three clients registered in the live server's own store, as ``sts client add`` would.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from dsig_layouts import Layout, build, pairwise
from live import LiveServer
from sts.config import load_settings
from sts.runtime import open_stores
from sts.uris import SoapVersion
from trust_client import post
from verdicts import Verifiers

LAYOUTS = pairwise()
PREFIX = "differential-"


@pytest.fixture(scope="module")
def registered(live_sts: LiveServer, verifiers: Verifiers) -> LiveServer:
    stores = open_stores(load_settings(live_sts.home))
    try:
        for name, signer in verifiers.signers.items():
            if stores.clients.get(PREFIX + name) is None:
                stores.clients.add(PREFIX + name, signer.cert.public_bytes(Encoding.PEM), allow_sha1=name == "legacy")
    finally:
        stores.close()
    return live_sts


@pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.label() for layout in LAYOUTS])
def test_a_signed_layout_gets_a_token(registered: LiveServer, verifiers: Verifiers, demo: dict[str, str],
                                      layout: Layout) -> None:
    message = build(layout, verifiers.signer_for(layout), applies_to=demo["rp"]).serialize()
    reply = post(registered.sts_url, message, SoapVersion.SOAP11 if layout.soap == "1.1" else SoapVersion.SOAP12)
    assert reply.status == 200, reply.fault_reason
    assert etree.QName(reply.token()).localname.endswith("Assertion")
