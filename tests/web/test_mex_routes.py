"""One MEX answer behind every route: GET and WS-Transfer Get on both MEX paths, and a WS-Transfer Get posted to
any SOAP endpoint, all list the same endpoints (with the certificatetransport ones when the server asks TLS
clients for a certificate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from sts import ns
from sts.web.asgi import CERTIFICATE_TRANSPORT_PATHS, MEX_PATHS, SOAP_PATHS
from sts.web.metadata.mex import TRANSFER_GET
from tests.live import LiveServer, make_tls_files, running

_GET_BODY = (f"<s:Envelope xmlns:s='{ns.SOAP12}' xmlns:a='{ns.WSA}'><s:Header>"
             f"<a:Action s:mustUnderstand='1'>{TRANSFER_GET}</a:Action><a:MessageID>urn:uuid:7</a:MessageID>"
             "</s:Header><s:Body/></s:Envelope>").encode()
_SOAP12 = {"content-type": "application/soap+xml; charset=utf-8"}


def _ports(document: bytes) -> set[str]:
    """The endpoint addresses a MEX document (bare WSDL or a GetResponse envelope) lists."""
    root = etree.fromstring(document)
    addresses = root.iter(f"{{{ns.WSDL_SOAP12}}}address")
    return {str(a.get("location")).split("/adfs/services/trust", 1)[1] for a in addresses}


def _answers(client: httpx.Client, base: str) -> dict[str, set[str]]:
    """Every MEX route's endpoints, keyed by how they were asked."""
    answers = {}
    for path in MEX_PATHS:
        answers[f"GET {path}"] = _ports(client.get(base + path).raise_for_status().content)
    for path in (*MEX_PATHS, *SOAP_PATHS, *CERTIFICATE_TRANSPORT_PATHS):
        reply = client.post(base + path, content=_GET_BODY, headers=_SOAP12)
        assert reply.status_code == 200, (path, reply.text)
        envelope = etree.fromstring(reply.content)
        assert envelope.findtext(f"*/{{{ns.WSA}}}RelatesTo") == "urn:uuid:7", path
        answers[f"Get {path}"] = _ports(reply.content)
    return answers


def test_every_mex_route_lists_the_usernamemixed_endpoints(live_sts: LiveServer) -> None:
    with httpx.Client(timeout=10) as client:
        answers = _answers(client, live_sts.base_url)
    assert set(map(frozenset, answers.values())) == {frozenset({"/13/usernamemixed", "/2005/usernamemixed"})}, answers


@pytest.fixture(scope="module")
def client_cert_sts(sts_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The STS over TLS asking clients for a certificate (``sts serve --ssl-client-ca``)."""
    cert, key = make_tls_files(tmp_path_factory.mktemp("mex-tls"))
    # Any PEM serves as the client CA bundle: no client presents a certificate here.
    with running(sts_home, ssl=(cert, key), client_ca=cert) as live:
        yield live


def test_with_client_certificates_every_route_adds_certificatetransport(client_cert_sts: LiveServer) -> None:
    with httpx.Client(timeout=10, verify=False) as client:  # noqa: S501 - a throw-away loopback certificate
        answers = _answers(client, client_cert_sts.base_url)
    expected = frozenset({"/13/usernamemixed", "/2005/usernamemixed",
                          "/13/certificatetransport", "/2005/certificatetransport"})
    assert set(map(frozenset, answers.values())) == {expected}, answers


def test_other_actions_on_a_mex_route_are_refused(live_sts: LiveServer) -> None:
    body = _GET_BODY.replace(TRANSFER_GET.encode(), b"urn:not-a-get")
    reply = httpx.post(live_sts.base_url + MEX_PATHS[0], content=body, headers=_SOAP12, timeout=10)
    fault = etree.fromstring(reply.content).find(f".//{{{ns.SOAP12}}}Fault")
    assert reply.status_code == 400 and fault is not None
    assert (fault.findtext(f".//{{{ns.SOAP12}}}Text") or "").endswith(": urn:not-a-get")
