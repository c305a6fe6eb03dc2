"""The WSDL and MEX policies advertise the proofs of setting client_proof; msal still finds its endpoint."""

from __future__ import annotations

import pytest
from lxml import etree
from msal.mex import Mex

from sts import ns
from interop.xsd import validator
from sts.web.metadata.mex import render_mex_wsdl
from sts.web.metadata.wsdl import build_wsdl, render_wsdl

BASE = "https://sts.example.org"


def _alternatives(root: etree._Element) -> list[set[str]]:
    policy = root.find(f"{{{ns.WSP12}}}Policy")
    assert policy is not None
    return [{etree.QName(e).localname for e in alt.iter(f"{{{ns.SP12}}}*")}
            for alt in policy.iterfind(f"{{{ns.WSP12}}}ExactlyOne/{{{ns.WSP12}}}All")]


def test_default_is_todays_username_policy() -> None:
    assert render_wsdl(BASE) == render_wsdl(BASE, client_proof="username")
    (only,) = _alternatives(build_wsdl(BASE))
    assert "UsernameToken" in only and "X509Token" not in only


def test_signature_over_tls_is_an_endorsing_x509_token() -> None:
    (only,) = _alternatives(build_wsdl(BASE, "signature"))
    assert {"TransportBinding", "EndorsingSupportingTokens", "X509Token", "WssX509V3Token10", "SignedParts"} <= only
    assert "UsernameToken" not in only


def test_signature_over_http_is_an_asymmetric_binding() -> None:
    (only,) = _alternatives(build_wsdl("http://localhost:8080", "signature"))
    assert {"AsymmetricBinding", "InitiatorToken", "X509Token", "IncludeTimestamp"} <= only
    assert "TransportBinding" not in only


def test_either_offers_two_alternatives() -> None:
    username, signature = _alternatives(build_wsdl(BASE, "either"))
    assert "UsernameToken" in username and "X509Token" in signature


@pytest.mark.parametrize("proof", ["username", "signature", "either"])
@pytest.mark.parametrize("base", [BASE, "http://localhost:8080"])
def test_policies_are_schema_valid(proof: str, base: str) -> None:
    for root in (build_wsdl(base, proof), render_mex_wsdl(base, client_proof=proof)):
        for policy in root.iterfind(f"{{{ns.WSP12}}}Policy"):
            assert [str(e.reason) for e in validator().iter_errors(policy)] == []


def test_msal_finds_the_username_endpoint_when_either_is_accepted() -> None:
    mex = Mex(etree.tostring(render_mex_wsdl(BASE, client_proof="either")).decode())
    endpoint = mex.get_wstrust_username_password_endpoint()
    assert endpoint is not None and endpoint["address"].endswith("/adfs/services/trust/13/usernamemixed")


def test_msal_finds_no_username_endpoint_when_only_signatures_are_accepted() -> None:
    mex = Mex(etree.tostring(render_mex_wsdl(BASE, client_proof="signature")).decode())
    assert mex.get_wstrust_username_password_endpoint() is None
