"""Our MEX reader: every endpoint of real AD FS documents, of a GetResponse envelope, and of our own MEX."""

from __future__ import annotations


import httpx
import msal.mex
import pytest

from sts.client.mex import MexError, read_mex
from sts.uris import SoapVersion, TrustVersion
from paths import FIXTURES  # type: ignore[import-not-found]

RECORDED = FIXTURES / "recorded"


def test_adfs_mex_endpoints_with_versions_credentials_and_security() -> None:
    endpoints = read_mex((RECORDED / "adal-python" / "adfs-mex-arupela.xml").read_bytes())
    by_address = {e.address: e for e in endpoints}
    mixed = by_address["https://fs.arupela.com/adfs/services/trust/13/usernamemixed"]
    assert (mixed.version, mixed.soap, mixed.authentication, mixed.security) == (
        TrustVersion.WST13, SoapVersion.SOAP12, "username", "transport")
    assert by_address["https://fs.arupela.com/adfs/services/trust/2005/usernamemixed"].version is TrustVersion.WST2005
    assert by_address["https://fs.arupela.com:49443/adfs/services/trust/2005/certificatetransport"].authentication \
        == "certificate"
    assert by_address["https://fs.arupela.com/adfs/services/trust/13/kerberosmixed"].authentication == "windows"
    assert len(endpoints) == 12 and all(e.secure_transport for e in endpoints)


def test_a_message_security_endpoint_over_http() -> None:
    endpoints = read_mex((RECORDED / "adal-python" / "adfs-mex-usystech.xml").read_bytes())
    plain = [e for e in endpoints if e.address == "http://sts.usystech.net/adfs/services/trust/2005/username"]
    assert [(p.authentication, p.security, p.secure_transport) for p in plain] == [("username", "message", False)]


def test_a_ws_transfer_get_response_envelope() -> None:
    endpoints = read_mex((RECORDED / "apache-cxf" / "adfs2-mex-getresponse-soap12.xml").read_bytes())
    assert len(endpoints) == 14
    assert {e.version for e in endpoints} == {TrustVersion.WST13, TrustVersion.WST2005}


def test_our_own_mex_reads_the_same_way_msal_reads_it(live_sts) -> None:
    document = httpx.get(live_sts.base_url + "/adfs/services/trust/mex", timeout=10).content
    endpoints = read_mex(document)
    usernames = {(e.version, e.address.rsplit("/trust/", 1)[1]) for e in endpoints if e.authentication == "username"}
    assert (TrustVersion.WST13, "13/usernamemixed") in usernames
    assert (TrustVersion.WST2005, "2005/usernamemixed") in usernames
    # msal only takes https:// endpoints, so over this plain-HTTP test server it finds none; ours lists them all.
    assert msal.mex.Mex(document).get_wstrust_username_password_endpoint() is None


@pytest.mark.parametrize("document", [b"<notwsdl/>", b"<x:Envelope xmlns:x='urn:x'><x:Body/></x:Envelope>"])
def test_not_a_mex_document(document: bytes) -> None:
    with pytest.raises(MexError, match="no WSDL"):
        read_mex(document)
