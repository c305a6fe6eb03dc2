"""Service A end to end over real HTTP on loopback: a token from the live STS, a SOAP Hello to Service A; and the
ASGI middleware on its JSON endpoint."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import date

import anyio
import httpx
import pytest
from lxml import etree

from live import free_port, serving
from sts import ns
from sts.config import load_settings
from sts.tokens.crypto.keys import load_certificate, load_private_key
from sts.rp.demo_service import DATEOFBIRTH, GIVENNAME, SERVICE_NS, SURNAME, create_service_app
from sts.model import RelyingParty
from sts.rp.verifier import TokenVerifier
from sts.rp.asgi import encode_header_value
from sts.runtime import open_stores
from sts.protocol.xmlsafe import parse
from trust_client import post, rst_envelope

OTHER_RP = "https://verifier-tests.example/other-service/"
CLAIMS = ((GIVENNAME, True), (SURNAME, True), (DOB := DATEOFBIRTH, True))


@pytest.fixture(scope="module")
def users(live_sts) -> dict[str, str]:
    """bob has no dateofbirth; carol is ten years old. Both with password 'pw'."""
    stores = open_stores(load_settings(live_sts.home))
    ten = date.today().replace(year=date.today().year - 10).isoformat()
    for name, claims in (("bob", [(GIVENNAME, "Bob"), (SURNAME, "Builder")]),
                         ("carol", [(GIVENNAME, "Carol"), (SURNAME, "Young"), (DOB, ten)])):
        if stores.users.get(name) is None:
            stores.users.add(name, "pw", claims)
    if stores.relying_parties.lookup(OTHER_RP) is None:
        stores.relying_parties.add(RelyingParty(endpoint=OTHER_RP, encrypt=False))
    stores.close()
    return {"bob": "pw", "carol": "pw"}


def _verifier(live) -> TokenVerifier:
    settings = load_settings(live.home)
    return TokenVerifier([load_certificate(settings.signing_cert_path.read_bytes())],
                         rp_private_key=load_private_key((live.home / "demo" / "rp.key").read_bytes()),  # type: ignore[arg-type]
                         audience="https://service-a.example/")


@pytest.fixture(scope="module")
def service_a(live_sts) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_service_app(_verifier(live_sts), base_url=base, sts_url=live_sts.sts_url)
    with serving(app, port) as url:
        yield url


def get_token(live, user: str, password: str, applies_to: str = "https://service-a.example/") -> etree._Element:
    reply = post(live.sts_url, rst_envelope(user=user, password=password, applies_to=applies_to, claims=CLAIMS))
    assert reply.status == 200, reply.fault_reason
    return reply.token()


def hello_envelope(token: etree._Element, soap: str = ns.SOAP12) -> bytes:
    envelope = etree.Element(f"{{{soap}}}Envelope", nsmap={"s": soap})
    header = etree.SubElement(envelope, f"{{{soap}}}Header")
    security = etree.SubElement(header, f"{{{ns.WSSE}}}Security", nsmap={"wsse": ns.WSSE})
    security.append(parse(etree.tostring(token)))
    body = etree.SubElement(envelope, f"{{{soap}}}Body")
    etree.SubElement(body, f"{{{SERVICE_NS}}}HelloRequest", nsmap={None: SERVICE_NS})
    return etree.tostring(envelope)


def call(base: str, envelope: bytes, soap: str = ns.SOAP12) -> tuple[int, etree._Element]:
    content_type = "application/soap+xml; charset=utf-8" if soap == ns.SOAP12 else "text/xml; charset=utf-8"
    response = httpx.post(base + "/service-a", content=envelope, headers={"content-type": content_type}, timeout=30)
    return response.status_code, parse(response.content)


def fault_text(root: etree._Element) -> str:
    return root.findtext(f".//{{{ns.SOAP12}}}Text") or root.findtext(".//faultstring") or ""


def test_alice_is_greeted(live_sts, demo, service_a) -> None:
    token = get_token(live_sts, demo["user"], demo["password"])
    status, root = call(service_a, hello_envelope(token))
    assert status == 200, fault_text(root)
    assert root.findtext(f".//{{{SERVICE_NS}}}greeting") == "Hello, Alice Liddell"
    # SOAP 1.1 too
    status, root = call(service_a, hello_envelope(token, ns.SOAP11), ns.SOAP11)
    assert status == 200 and root.findtext(f".//{{{SERVICE_NS}}}greeting") == "Hello, Alice Liddell"


def test_missing_dateofbirth_is_denied_naming_the_claim(live_sts, users, service_a) -> None:
    status, root = call(service_a, hello_envelope(get_token(live_sts, "bob", users["bob"])))
    assert status == 400 and DOB in fault_text(root)
    assert root.find(f".//{{{ns.SOAP12}}}Fault") is not None


def test_under_18_is_denied_naming_dateofbirth(live_sts, users, service_a) -> None:
    status, root = call(service_a, hello_envelope(get_token(live_sts, "carol", users["carol"])))
    assert status == 400 and DOB in fault_text(root) and "under 18" in fault_text(root)


def test_token_for_another_audience_is_denied(live_sts, demo, users, service_a) -> None:
    token = get_token(live_sts, demo["user"], demo["password"], applies_to=OTHER_RP)
    status, root = call(service_a, hello_envelope(token))
    assert status == 400 and "audience" in fault_text(root)


def test_no_token_and_garbage(service_a) -> None:
    envelope = b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>'
    status, root = call(service_a, envelope)
    assert status == 400 and "token rejected" in fault_text(root)
    status, root = call(service_a, b"<not-soap")
    assert status == 400 and root.find(f".//{{{ns.SOAP12}}}Fault") is not None


def test_wsdl_policy(live_sts, service_a) -> None:
    response = httpx.get(service_a + "/service-a?wsdl")
    assert response.status_code == 200
    wsdl = parse(response.content)
    token = wsdl.find(f".//{{{ns.SP12}}}IssuedToken")
    assert token is not None
    assert token.get(f"{{{ns.SP12}}}IncludeToken") == f"{ns.SP12}/IncludeToken/AlwaysToRecipient"
    assert token.findtext(f"{{{ns.SP12}}}Issuer/{{{ns.WSA}}}Address") == live_sts.sts_url
    template = token.find(f"{{{ns.SP12}}}RequestSecurityTokenTemplate")
    assert template.findtext(f"{{{ns.WST13}}}TokenType") == (
        "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0")
    assert template.findtext(f"{{{ns.WST13}}}KeyType") == f"{ns.WST13}/Bearer"
    claims = template.find(f"{{{ns.WST13}}}Claims")
    assert claims.get("Dialect") == ns.IDENTITY
    assert [c.get("Uri") for c in claims] == [GIVENNAME, SURNAME, DOB]
    assert wsdl.find(f".//{{{ns.WSDL_SOAP12}}}address").get("location") == service_a + "/service-a"


# --- the middleware, in process -----------------------------------------------------------------------------------


class _Client:
    """An in-process client of an ASGI app (httpx's ASGITransport)."""

    def __init__(self, app: object) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, url, **kwargs)  # type: ignore[arg-type]

        return anyio.run(go)

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", url, **kwargs)


def test_middleware_401_without_or_with_a_bad_token_200_with_a_good_one(live_sts, demo) -> None:
    app = create_service_app(_verifier(live_sts), base_url="http://testserver", sts_url=live_sts.sts_url)
    client = _Client(app)
    response = client.get("/service-a/hello")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("SAML ")
    assert response.text.startswith("token rejected:")
    response = client.get("/service-a/hello", headers={"Authorization": "SAML bm90IGEgdG9rZW4="})
    assert response.status_code == 401 and "malformed" in response.headers["www-authenticate"]
    response = client.get("/service-a/hello", headers={"Authorization": "Bearer abc"})
    assert response.status_code == 401
    token = etree.tostring(get_token(live_sts, demo["user"], demo["password"]))
    response = client.get("/service-a/hello", headers={"Authorization": encode_header_value(token)})
    assert response.status_code == 200, response.text
    assert response.json() == {"greeting": "Hello, Alice Liddell", "subject": "alice"}
    response = client.get("/service-a/hello", headers={"X-SAML-Token": base64.b64encode(token).decode()})
    assert response.status_code == 200
    # The SOAP path is not behind the middleware: it answers faults of its own.
    assert client.get("/service-a?wsdl").status_code == 200


def test_middleware_reads_the_soap_security_header(live_sts, demo) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from sts.rp.asgi import TokenVerifierMiddleware

    async def echo(request: Request) -> PlainTextResponse:
        body = await request.body()
        return PlainTextResponse(f"{request.state.token.subject} {len(body)}")

    app = Starlette(routes=[Route("/soap", echo, methods=["POST"])])
    app.add_middleware(TokenVerifierMiddleware, verifier=_verifier(live_sts))
    client = _Client(app)
    envelope = hello_envelope(get_token(live_sts, demo["user"], demo["password"]))
    response = client.post("/soap", content=envelope, headers={"content-type": "application/soap+xml"})
    assert response.status_code == 200 and response.text == f"alice {len(envelope)}"
    response = client.post("/soap", content=b"<x/>", headers={"content-type": "text/xml"})
    assert response.status_code == 401


def _hmac_sign(envelope_xml: bytes, key: bytes, soap: str = ns.SOAP12) -> bytes:
    """Sign the Body with HMAC-SHA256 under the proof key, as a holder-of-key client does (WSS 1.1 §8)."""
    import hashlib
    import hmac

    root = parse(envelope_xml)
    body = root.find(f"{{{soap}}}Body")
    body.set(f"{{{ns.WSU}}}Id", "body")
    security = root.find(f"{{{soap}}}Header/{{{ns.WSSE}}}Security")
    ds = f"{{{ns.DS}}}"
    signature = etree.SubElement(security, f"{ds}Signature", nsmap={"ds": ns.DS})
    signed_info = etree.SubElement(signature, f"{ds}SignedInfo")
    etree.SubElement(signed_info, f"{ds}CanonicalizationMethod", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    etree.SubElement(signed_info, f"{ds}SignatureMethod", Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256")
    reference = etree.SubElement(signed_info, f"{ds}Reference", URI="#body")
    transforms = etree.SubElement(reference, f"{ds}Transforms")
    etree.SubElement(transforms, f"{ds}Transform", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    etree.SubElement(reference, f"{ds}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    digest = hashlib.sha256(etree.tostring(body, method="c14n", exclusive=True)).digest()
    etree.SubElement(reference, f"{ds}DigestValue").text = base64.b64encode(digest).decode()
    value = hmac.digest(key, etree.tostring(signed_info, method="c14n", exclusive=True), "sha256")
    etree.SubElement(signature, f"{ds}SignatureValue").text = base64.b64encode(value).decode()
    return etree.tostring(root)


def test_holder_of_key_needs_a_body_signature_with_the_proof_key(live_sts, demo, service_a) -> None:
    reply = post(live_sts.sts_url, rst_envelope(user=demo["user"], password=demo["password"],
                                                applies_to="https://service-a.example/", claims=CLAIMS,
                                                key_type_uri=f"{ns.WST13}/SymmetricKey"))
    assert reply.status == 200, reply.fault_reason
    secret = base64.b64decode(reply.findtext(".//trust:RequestedProofToken/trust:BinarySecret") or "")
    plain = hello_envelope(reply.token())
    status, root = call(service_a, plain)
    assert status == 400 and "proof key" in fault_text(root)
    status, root = call(service_a, _hmac_sign(plain, b"\x00" * len(secret)))
    assert status == 400 and "proof key" in fault_text(root)
    status, root = call(service_a, _hmac_sign(plain, secret))
    assert status == 200, fault_text(root)
    assert root.findtext(f".//{{{SERVICE_NS}}}greeting") == "Hello, Alice Liddell"
