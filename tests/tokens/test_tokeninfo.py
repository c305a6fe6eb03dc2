"""``sts.tokens.tokeninfo``: tokens and responses of any STS decoded without verifying, every line marked UNVERIFIED."""

from __future__ import annotations


import pytest

from sts.tokens.tokeninfo import MARK, describe, render_text
from paths import FIXTURES  # type: ignore[import-not-found]


RECORDED = FIXTURES / "recorded"


@pytest.mark.parametrize("path", sorted(
    [*RECORDED.glob("adal-python/*rstrc*.xml"), *RECORDED.glob("adal-node/*rstr*.xml"),
     RECORDED / "apache-cxf" / "sts-issued-saml11-assertion-token.xml", *RECORDED.glob("apache-cxf/tfim-*.xml"),
     *RECORDED.glob("picketlink/wst-response-*.xml")]), ids=lambda p: p.name)
def test_recorded_responses_decode(path) -> None:
    info = describe(path.read_bytes())
    assert info["verified"] is False
    text = render_text(info)
    assert all(line.startswith(MARK) for line in text.splitlines())


def test_adfs_saml11_rstrc_details() -> None:
    info = describe((RECORDED / "adal-python" / "adfs-wstrust13-soap12-rstrc-issue-saml11-bearer.xml").read_bytes())
    response = info["responses"][0]
    token = response["token"]
    assert response["token_type"] == "urn:oasis:names:tc:SAML:1.0:assertion"
    assert token["format"] == "SAML 1.1 assertion"
    assert token["issuer"] == "http://fs.richard-randall.com/adfs/services/trust"
    assert token["claims"]["http://schemas.xmlsoap.org/claims/UPN"] == ["frizzo@richard-randall.com"]
    assert token["signature"]["references"][0]["uri"] == "#" + token["id"]


def test_our_encrypted_token_says_what_it_is(live_sts, demo) -> None:
    from trust_client import post, rst_envelope

    reply = post(live_sts.sts_url, rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"]))
    from lxml import etree

    info = describe(etree.tostring(reply.root))
    token = info["responses"][0]["token"]
    assert token["encrypted"] is True
    assert token["data_encryption"] == "http://www.w3.org/2009/xmlenc11#aes256-gcm"
    assert token["key_transport"] == "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
    assert "service-a.example" in token["recipient"]
    assert "encrypted" in render_text(info)


def test_hostile_input_refused() -> None:
    from sts.errors import StsError

    with pytest.raises(StsError):
        describe((FIXTURES / "hostile" / "billion-laughs.xml").read_bytes())
