"""The attack suite's target (the fixtures are in conftest.py): our own live STS by default, any STS with ``STS_URL`` (``make attack STS_URL=...``).

Against another STS set STS_URL, STS_USER, STS_PASSWORD, STS_APPLIES_TO and optionally STS_CERT (the STS signing
certificate, PEM), STS_USER2/STS_PASSWORD2 (a second account, for the cross-user cases). Cases that need our own
keys or database skip there with the reason. Every case that uses ``target`` is followed by a valid Issue that
must still get a genuine token: an attack must never leave the service broken or wedged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from lxml import etree

from sts import ns
from sts.config import load_settings
from sts.model import RelyingParty
from sts.rp.verifier import TokenVerifier
from sts.runtime import open_stores
from sts.protocol.xmlsafe import parse
from sts.protocol.addressing import render_request_headers
from sts.protocol.soap import build_envelope
from sts.protocol.wstrust.render import render_rst
from sts.uris import RequestType, SoapVersion, TrustVersion
from trust_client import Reply, post, rst_envelope

#: A relying party without token encryption, so that the cases can read, wrap and re-present issued tokens.
PLAIN_RP = "https://attack-plain.example/"
SECOND_USER = ("attack-bob", "bob-the-builder-2")
HOSTILE = Path(__file__).resolve().parents[2] / "fixtures" / "hostile"


@dataclass(frozen=True)
class Target:
    """One STS under attack: where, whose credentials, for which relying party."""

    sts_url: str
    user: str
    password: str
    applies_to: str
    signing_cert: x509.Certificate | None
    home: Path | None  # None: someone else's STS (cases that need our keys or database skip)
    second_user: tuple[str, str] | None

    def envelope(self, soap: SoapVersion = SoapVersion.SOAP12, **options: object) -> bytes:
        options.setdefault("applies_to", self.applies_to)
        envelope: bytes = rst_envelope(user=str(options.pop("user", self.user)),
                                       password=str(options.pop("password", self.password)), soap=soap,
                                       **options)
        return envelope

    def envelope_with_security(self, security: etree._Element, soap: SoapVersion = SoapVersion.SOAP12) -> bytes:
        """An Issue for the target's relying party carrying exactly this wsse:Security header."""
        headers = render_request_headers(RequestType.ISSUE.request_action(TrustVersion.WST13))
        rst = render_rst(TrustVersion.WST13, applies_to=self.applies_to)
        return build_envelope(soap, rst, [*headers, security])

    def post(self, body: bytes, soap: SoapVersion = SoapVersion.SOAP12, **kwargs: object) -> Reply:
        reply: Reply = post(self.sts_url, body, soap, **kwargs)
        return reply

    def send(self, body: bytes, headers: dict[str, str]) -> Reply:
        """Post with exactly these HTTP headers (content type, SOAPAction) and read the reply as XML."""
        response = httpx.post(self.sts_url, content=body, headers=headers, timeout=30)
        return Reply(response.status_code, response.headers.get("content-type", ""), parse(response.content))

    def issue(self, **options: object) -> Reply:
        soap = options.get("soap", SoapVersion.SOAP12)
        return self.post(self.envelope(**options), soap)  # type: ignore[arg-type]

    def token(self, **options: object) -> etree._Element:
        """A genuine token, issued now (the request must succeed)."""
        reply = self.issue(**options)
        assert reply.status == 200, reply.fault_reason
        return reply.token()

    def require_home(self, why: str) -> Path:
        if self.home is None:
            pytest.skip(f"needs this STS's own keys or database ({why}): not available with STS_URL")
        return self.home

    def assert_still_issues(self) -> None:
        """A valid Issue right now gets a token (and, when the signing certificate is known, a genuine one)."""
        reply = self.issue()
        assert reply.status == 200 and reply.fault_code is None, f"valid Issue after the attack: {reply.fault_reason}"
        token = reply.token()
        if self.signing_cert is not None and etree.QName(token).localname == "Assertion":
            verified = TokenVerifier([self.signing_cert], audience=self.applies_to).verify(etree.tostring(token))
            assert verified.subject == self.user


def remote_target() -> Target | None:
    url = os.environ.get("STS_URL")
    if not url:
        return None
    cert_path = os.environ.get("STS_CERT")
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes()) if cert_path else None
    second = (os.environ["STS_USER2"], os.environ.get("STS_PASSWORD2", "")) if os.environ.get("STS_USER2") else None
    return Target(url, os.environ.get("STS_USER", "alice"), os.environ.get("STS_PASSWORD", ""),
                  os.environ.get("STS_APPLIES_TO", "https://service-a.example/"), cert, None, second)


def prepare_home(home: Path) -> None:
    """The plain relying party and a second user, once per home."""
    stores = open_stores(load_settings(home))
    try:
        if stores.relying_parties.lookup(PLAIN_RP) is None:
            stores.relying_parties.add(RelyingParty(endpoint=PLAIN_RP, encrypt=False,
                                                    max_lifetime=timedelta(hours=8)))
        if stores.users.get(SECOND_USER[0]) is None:
            stores.users.add(*SECOND_USER, [(f"{ns.IDENTITY}/claims/givenname", "Bob")])
    finally:
        stores.close()




#: For modules aimed at our own live STS and its database (policies of our own): they skip when STS_URL is set.
#: The in-process modules (our verifier, `sts token verify`, our request authenticator) run in both modes.
local_only = pytest.mark.skipif(bool(os.environ.get("STS_URL")),
                                reason="needs this STS's own database (relying-party policies): not with STS_URL")
