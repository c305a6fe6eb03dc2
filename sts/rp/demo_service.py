"""Service A: a small relying party that accepts tokens of this (or any WS-Trust) STS.

``POST /service-a``: SOAP 1.1/1.2, document/literal operation ``Hello`` (``HelloRequest`` -> ``HelloResponse``).
The token comes in the ``wsse:Security`` header (WSS SAML Token Profile 1.1) and is checked by ``TokenVerifier``;
for a holder-of-key token the message must also carry a ``ds:Signature`` over the soap:Body made with the proof
key (HMAC-SHA1/SHA256 for a symmetric key, the proof certificate's or RSAKeyValue's public key otherwise). The
greeting needs the identity claims givenname, surname and dateofbirth and an age of at least 18; else a SOAP
fault names the claim that fails.

``GET /service-a?wsdl``: WSDL 1.1 whose binding policy (WS-SecurityPolicy 1.2) asks for an ``sp:IssuedToken``
from the STS, with a RequestSecurityTokenTemplate (SAML 2.0, Bearer, the three claims).

``GET /service-a/hello``: the same greeting as JSON, behind ``TokenVerifierMiddleware`` (``Authorization: SAML
<base64 token>``).

``verifier_following`` builds the verifier ``sts demo-service`` uses: it trusts the signing certificates of the
STS's federation metadata and reads them again on a schedule and when a token names an unknown key, so a planned
rollover of the STS signing key needs no restart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Final

import anyio.to_thread
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography import x509
from lxml import etree
from lxml.builder import ElementMaker
from signxml.algorithms import DigestAlgorithm as SxDigest
from signxml.algorithms import SignatureMethod as SxMethod
from signxml.verifier import SignatureConfiguration, XMLVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sts import ns
from sts.protocol import xmlsafe
from sts.home import CLAIMS, DEMO_RP_ENDPOINT
from sts.tokens.crypto.keys import PrivateKey
from sts.protocol.soap import parse_envelope
from sts.uris import SoapVersion
from sts.rp.federation_trust import DEFAULT_REFRESH, FederationMetadataTrust
from sts.rp.verifier import TokenRejected, TokenVerifier, VerifiedToken
from sts.rp.asgi import TokenVerifierMiddleware, token_from_soap
from sts.xmltime import utcnow

SERVICE_NS: Final = "urn:sts:demo:service-a"
PATH: Final = "/service-a"
HELLO_PATH: Final = "/service-a/hello"
GIVENNAME: Final = f"{CLAIMS}/givenname"
SURNAME: Final = f"{CLAIMS}/surname"
DATEOFBIRTH: Final = f"{CLAIMS}/dateofbirth"
REQUIRED_CLAIMS: Final = (GIVENNAME, SURNAME, DATEOFBIRTH)
DEFAULT_AUDIENCE: Final = DEMO_RP_ENDPOINT
SAML20_TOKEN_TYPE: Final = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
BEARER: Final = f"{ns.WST13}/Bearer"
MINIMUM_AGE: Final = 18

_HMAC: Final = frozenset({SxMethod.HMAC_SHA1, SxMethod.HMAC_SHA256})
_PUBLIC: Final = frozenset({SxMethod.RSA_SHA256, SxMethod.RSA_SHA1, SxMethod.ECDSA_SHA256})
_DIGESTS: Final = frozenset({SxDigest.SHA1, SxDigest.SHA256})


class Denied(Exception):
    """The request is refused; ``text`` goes into the SOAP fault, ``code`` is the fault code's local name."""

    def __init__(self, text: str, code: str = "FailedAuthentication", namespace: str = ns.WSSE) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.namespace = namespace


# --- the WSDL ---------------------------------------------------------------------------------------------------

_W = ElementMaker(namespace=ns.WSDL, nsmap={"wsdl": ns.WSDL, "tns": SERVICE_NS, "xsd": ns.XSD, "soap12": ns.WSDL_SOAP12,
                                            "wsp": ns.WSP15, "sp": ns.SP12, "wsu": ns.WSU, "wsa": ns.WSA,
                                            "wst": ns.WST13, "i": ns.IDENTITY, "wsx": ns.MEX})
_X = ElementMaker(namespace=ns.XSD)
_P = ElementMaker(namespace=ns.WSP15)
_SP = ElementMaker(namespace=ns.SP12)
_A = ElementMaker(namespace=ns.WSA)
_T = ElementMaker(namespace=ns.WST13)
_I = ElementMaker(namespace=ns.IDENTITY)
_MEX = ElementMaker(namespace=ns.MEX)
_S12 = ElementMaker(namespace=ns.WSDL_SOAP12)
_POLICY_ID: Final = "ServiceA_IssuedToken_policy"


FEDERATION_METADATA_PATH: Final = "/FederationMetadata/2007-06/FederationMetadata.xml"


def federation_metadata_url_for(sts_url: str) -> str | None:
    """This STS's federation metadata address when ``sts_url`` is its SOAP endpoint; None otherwise."""
    base = sts_url.rstrip("/")
    return base.removesuffix("/services/sts") + FEDERATION_METADATA_PATH if base.endswith("/services/sts") else None


def verifier_following(metadata_url: str, *, fallback: Sequence[x509.Certificate], audience: Sequence[str],
                       rp_private_key: PrivateKey | None = None,
                       refresh_interval: timedelta = DEFAULT_REFRESH) -> TokenVerifier:
    """A verifier that trusts the STS's federation metadata and keeps following it (key rollover).

    ``fallback`` (e.g. the home's published certificates) is trusted until the metadata is first read: now, or
    when the STS is not up yet, at a request a minute or more later."""
    trust = FederationMetadataTrust(metadata_url, refresh_interval=refresh_interval, initial=fallback)
    trust.refresh_if_due()
    return TokenVerifier((), metadata=trust, rp_private_key=rp_private_key, audience=audience)


def mex_url_for(sts_url: str) -> str | None:
    """This STS's MEX address when ``sts_url`` is its SOAP endpoint (``.../services/sts``); None otherwise."""
    return sts_url.rstrip("/") + "/mex" if sts_url.rstrip("/").endswith("/services/sts") else None


def build_issued_token_policy(sts_url: str, mex_url: str | None) -> etree._Element:
    """The binding policy: one sp:IssuedToken from ``sts_url``, included in every request to the service."""
    issuer = _SP.Issuer(_A.Address(sts_url))
    if mex_url:
        issuer.append(_A.Metadata(_MEX.Metadata(_MEX.MetadataSection(_MEX.MetadataReference(_A.Address(mex_url))))))
    claims = _T.Claims(*(_I.ClaimType(Uri=uri) for uri in REQUIRED_CLAIMS), Dialect=ns.IDENTITY)
    token = _SP.IssuedToken(
        issuer,
        _SP.RequestSecurityTokenTemplate(_T.TokenType(SAML20_TOKEN_TYPE), _T.KeyType(BEARER), claims),
        _P.Policy(_SP.RequireInternalReference()),
    )
    token.set(ns.qn(ns.SP12, "IncludeToken"), f"{ns.SP12}/IncludeToken/AlwaysToRecipient")
    policy = _P.Policy(_P.ExactlyOne(_P.All(_SP.SupportingTokens(_P.Policy(token)))))
    policy.set(ns.qn(ns.WSU, "Id"), _POLICY_ID)
    return policy


def build_wsdl(service_url: str, sts_url: str, mex_url: str | None = None) -> etree._Element:
    """WSDL 1.1 of Service A (document/literal, SOAP 1.2 binding) with the IssuedToken policy."""
    element = _X.element
    schema = _X.schema(
        element(_X.complexType(_X.sequence(element(name="greeting", type="xsd:string", minOccurs="0"))),
                name="HelloRequest"),
        element(_X.complexType(_X.sequence(element(name="greeting", type="xsd:string"))), name="HelloResponse"),
        targetNamespace=SERVICE_NS, elementFormDefault="qualified",
    )
    return _W.definitions(
        build_issued_token_policy(sts_url, mex_url),
        _W.types(schema),
        _W.message(_W.part(name="parameters", element="tns:HelloRequest"), name="HelloRequest"),
        _W.message(_W.part(name="parameters", element="tns:HelloResponse"), name="HelloResponse"),
        _W.portType(_W.operation(_W.input(message="tns:HelloRequest"), _W.output(message="tns:HelloResponse"),
                                 name="Hello"), name="ServiceA"),
        _W.binding(
            _P.PolicyReference(URI=f"#{_POLICY_ID}"),
            _S12.binding(transport="http://schemas.xmlsoap.org/soap/http", style="document"),
            _W.operation(_S12.operation(soapAction=f"{SERVICE_NS}/Hello"),
                         _W.input(_S12.body(use="literal")), _W.output(_S12.body(use="literal")), name="Hello"),
            name="ServiceA_Soap12", type="tns:ServiceA",
        ),
        _W.service(_W.port(_S12.address(location=service_url), name="ServiceA_Soap12",
                           binding="tns:ServiceA_Soap12"), name="ServiceA"),
        name="ServiceA", targetNamespace=SERVICE_NS,
    )


# --- deciding ---------------------------------------------------------------------------------------------------


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def greeting_for(token: VerifiedToken, today: date) -> str:
    """``Hello, <givenname> <surname>`` when the three claims are there and the subject is of age; else ``Denied``."""
    for uri in REQUIRED_CLAIMS:
        if not token.claim(uri):
            raise Denied(f"the claim {uri} is required", "RequestFailed", ns.WST13)
    try:
        born = date.fromisoformat((token.claim(DATEOFBIRTH) or "")[:10])
    except ValueError:
        raise Denied(f"the claim {DATEOFBIRTH} is not a date", "RequestFailed", ns.WST13) from None
    if age_on(born, today) < MINIMUM_AGE:
        raise Denied(f"the claim {DATEOFBIRTH} says the subject is under {MINIMUM_AGE}", "RequestFailed", ns.WST13)
    return f"Hello, {token.claim(GIVENNAME)} {token.claim(SURNAME)}"


def check_proof_of_possession(root: etree._Element, token: VerifiedToken) -> None:
    """For a holder-of-key token: the wsse:Security ds:Signature is made with the proof key and covers the Body."""
    if not token.holder_of_key:
        return
    envelope = parse_envelope(root)
    soap_ns = envelope.version.value
    security = root.find(f"{{{soap_ns}}}Header/{{{ns.WSSE}}}Security")
    body = root.find(f"{{{soap_ns}}}Body")
    if security is None or body is None or security.find(ns.qn(ns.DS, "Signature")) is None:
        raise Denied("a holder-of-key token needs a message signature made with its proof key")
    try:
        xmlsafe.id_map(root)
    except Exception:  # noqa: BLE001
        raise Denied("duplicate Ids in the message") from None
    location = f"./{{{soap_ns}}}Header/{{{ns.WSSE}}}Security/"
    common: dict[str, object] = {"location": location, "expect_references": True, "digest_algorithms": _DIGESTS}
    try:
        if token.proof_key is not None:
            config = SignatureConfiguration(require_x509=False, signature_methods=_HMAC, **common)  # type: ignore[arg-type]
            results = XMLVerifier().verify(root, hmac_key=token.proof_key, expect_config=config)
        elif token.proof_certificate is not None:
            config = SignatureConfiguration(require_x509=True, signature_methods=_PUBLIC, **common)  # type: ignore[arg-type]
            results = XMLVerifier().verify(root, x509_cert=token.proof_certificate, expect_config=config)
        elif token.proof_public_key is not None:
            config = SignatureConfiguration(require_x509=False, signature_methods=_PUBLIC, **common)  # type: ignore[arg-type]
            results = XMLVerifier().verify(root, expect_config=config)
            expected = token.proof_public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            for result in results if isinstance(results, list) else [results]:
                if result.signature_key != expected:
                    raise Denied("the message is not signed with the token's proof key")
        else:
            raise Denied("the holder-of-key token names no proof key")
    except Denied:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever signxml raises: not proven
        raise Denied(f"the message signature does not verify with the proof key ({type(exc).__name__})") from None
    body_c14n = etree.tostring(body, method="c14n", exclusive=True, with_comments=False)
    signed = results if isinstance(results, list) else [results]
    if not any(result.signed_data == body_c14n for result in signed):
        raise Denied("the message signature does not cover the soap:Body")


# --- HTTP -------------------------------------------------------------------------------------------------------

_SOAP_CONTENT_TYPES: Final = {SoapVersion.SOAP11: "text/xml; charset=utf-8",
                              SoapVersion.SOAP12: "application/soap+xml; charset=utf-8"}


def _envelope(version: SoapVersion, payload: etree._Element) -> bytes:
    envelope = etree.Element(ns.qn(version.value, "Envelope"), nsmap={"s": version.value})
    etree.SubElement(envelope, ns.qn(version.value, "Body")).append(payload)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


def render_soap_fault(version: SoapVersion, code: tuple[str, str], text: str) -> bytes:
    """A Sender/Client fault whose subcode (SOAP 1.2) or faultcode (SOAP 1.1) is ``code`` and reason ``text``."""
    env = version.value
    if version is SoapVersion.SOAP11:
        fault = etree.Element(ns.qn(env, "Fault"), nsmap={"s": env, "c": code[0]})
        etree.SubElement(fault, "faultcode").text = f"c:{code[1]}"
        etree.SubElement(fault, "faultstring").text = text
        return _envelope(version, fault)
    fault = etree.Element(ns.qn(env, "Fault"), nsmap={"s": env, "c": code[0]})
    code_el = etree.SubElement(fault, ns.qn(env, "Code"))
    etree.SubElement(code_el, ns.qn(env, "Value")).text = "s:Sender"
    etree.SubElement(etree.SubElement(code_el, ns.qn(env, "Subcode")), ns.qn(env, "Value")).text = f"c:{code[1]}"
    reason = etree.SubElement(fault, ns.qn(env, "Reason"))
    text_el = etree.SubElement(reason, ns.qn(env, "Text"))
    text_el.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text_el.text = text
    return _envelope(version, fault)


def _soap_version(content_type: str) -> SoapVersion:
    media = content_type.split(";", 1)[0].strip().lower()
    return SoapVersion.SOAP11 if media == "text/xml" else SoapVersion.SOAP12


def create_service_app(
    verifier: TokenVerifier,
    *,
    base_url: str,
    sts_url: str,
    sts_mex_url: str | None = None,
    today: Callable[[], date] = lambda: utcnow().date(),
) -> Starlette:
    """The Starlette app of Service A (its address is ``base_url + /service-a``)."""
    service_url = base_url.rstrip("/") + PATH
    wsdl = bytes(etree.tostring(build_wsdl(service_url, sts_url, sts_mex_url or mex_url_for(sts_url)),
                                xml_declaration=True, encoding="utf-8", pretty_print=True))

    def handle(body: bytes) -> tuple[SoapVersion, bytes, int]:
        root = xmlsafe.parse(body)
        envelope = parse_envelope(root)
        version = envelope.version
        try:
            token = verifier.verify(token_from_soap(body))
            check_proof_of_possession(root, token)
            if envelope.body is None or envelope.body.tag != ns.qn(SERVICE_NS, "HelloRequest"):
                raise Denied("the operation is Hello (tns:HelloRequest)", "InvalidRequest", ns.WST13)
            greeting = greeting_for(token, today())
        except TokenRejected as exc:
            return version, render_soap_fault(version, (ns.WSSE, "InvalidSecurityToken"),
                                              f"token rejected: {exc.reason}"), _status(version)
        except Denied as exc:
            return version, render_soap_fault(version, (exc.namespace, exc.code), exc.text), _status(version)
        response = etree.Element(ns.qn(SERVICE_NS, "HelloResponse"), nsmap={None: SERVICE_NS})
        etree.SubElement(response, ns.qn(SERVICE_NS, "greeting")).text = greeting
        return version, _envelope(version, response), 200

    async def soap_endpoint(request: Request) -> Response:
        if request.method == "GET":
            if "wsdl" in request.query_params or not request.query_params:
                return Response(wsdl, media_type="text/xml; charset=utf-8")
            return Response("unknown query\n", status_code=404, media_type="text/plain")
        body = await request.body()
        fallback = _soap_version(request.headers.get("content-type", ""))
        try:
            version, payload, status = await anyio.to_thread.run_sync(handle, body)
        except Exception:  # noqa: BLE001 - not even an envelope: answer a fault, never a traceback
            version, payload, status = fallback, render_soap_fault(
                fallback, (ns.WST13, "InvalidRequest"), "the request is not a SOAP envelope"), 400
        return Response(payload, status_code=status, media_type=_SOAP_CONTENT_TYPES[version])

    async def hello_json(request: Request) -> Response:
        token: VerifiedToken = request.state.token
        try:
            return JSONResponse({"greeting": greeting_for(token, today()), "subject": token.subject})
        except Denied as exc:
            return JSONResponse({"error": exc.text}, status_code=403)

    app = Starlette(routes=[
        Route(PATH, soap_endpoint, methods=["GET", "POST"]),
        Route(HELLO_PATH, hello_json, methods=["GET"]),
    ])
    app.add_middleware(TokenVerifierMiddleware, verifier=verifier, protect=lambda path: path == HELLO_PATH)
    return app


def _status(version: SoapVersion) -> int:
    return 500 if version is SoapVersion.SOAP11 else 400


__all__ = [
    "DATEOFBIRTH",
    "GIVENNAME",
    "REQUIRED_CLAIMS",
    "SURNAME",
    "Denied",
    "build_wsdl",
    "check_proof_of_possession",
    "create_service_app",
    "federation_metadata_url_for",
    "greeting_for",
    "render_soap_fault",
    "verifier_following",
]
