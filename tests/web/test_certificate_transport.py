"""AD FS's certificatetransport: a registered client authenticates by its TLS client certificate (real TLS on loopback)."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msal.mex
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from live import LiveServer, free_port, make_tls_files, serving, start_server, wait_healthy
from signing import key_pem, make_client
from sts import ns
from sts.protocol.addressing import render_request_headers
from sts.config import load_settings
from sts.tokens.crypto.encryption import decrypt_element
from sts.tokens.crypto.keys import load_private_key
from sts.home import init_home
from interop.xsd import validator
from sts.web.metadata.mex import certificatetransport_url, render_mex_wsdl, usernamemixed_url
from sts.protocol.soap import build_envelope
from sts.web.tls import client_cert_der, ssl_options
from sts.uris import RequestType, SoapVersion, TrustVersion
from sts.runtime import open_stores
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wstrust.render import render_rst
from sts.protocol.xmlsafe import parse
from trust_client import Reply, rst_envelope

CLIENT = "tls-payments"
DISABLED = "tls-disabled"
PUBLIC = f"{ns.WST13}/PublicKey"
X509_AUTHN = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"


@dataclass
class Identity:
    cert_file: str
    key_file: str
    certificate: x509.Certificate


@dataclass
class TlsSts:
    live: LiveServer
    server_cert: str
    registered: Identity
    stranger: Identity
    disabled: Identity


def _identity(directory: Path, name: str) -> Identity:
    key, cert, pem = make_client(name)
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(pem)
    key_file.write_bytes(key_pem(key))
    return Identity(str(cert_file), str(key_file), cert)


@pytest.fixture(scope="module")
def tls_sts(sts_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSts]:
    directory = tmp_path_factory.mktemp("client-tls")
    registered, stranger, disabled = (_identity(directory, n) for n in (CLIENT, "tls-stranger", DISABLED))
    stores = open_stores(load_settings(sts_home))
    for name, identity in ((CLIENT, registered), (DISABLED, disabled)):
        stores.clients.remove(name)
        stores.clients.add(name, identity.certificate.public_bytes(Encoding.PEM),
                           [(GIVENNAME, "Payments")])
    stores.clients.set_disabled(DISABLED, True)
    # The TLS layer accepts all three (the bundle holds them); only the registry decides who is a client.
    bundle = directory / "client-ca.pem"
    bundle.write_bytes(b"".join(Path(i.cert_file).read_bytes() for i in (registered, stranger, disabled)))
    server_cert, server_key = make_tls_files(directory)
    live, server, thread = start_server(sts_home, ssl=(server_cert, server_key), loopback_bind=False,
                                        client_ca=str(bundle))
    yield TlsSts(live, server_cert, registered, stranger, disabled)
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=10)


def _client(server_cert: str, identity: Identity | None) -> httpx.Client:
    # An explicit SSLContext, and trust_env=False: REQUESTS_CA_BUNDLE/SSL_CERT_FILE in the environment must not
    # replace the server certificate we trust.
    context = ssl.create_default_context(cafile=server_cert)
    if identity is not None:
        context.load_cert_chain(identity.cert_file, identity.key_file)
    return httpx.Client(verify=context, trust_env=False, timeout=30)


def _post(sts: TlsSts, path: str, body: bytes, identity: Identity | None) -> Reply:
    with _client(sts.server_cert, identity) as client:
        response = client.post(sts.live.base_url + path, content=body,
                               headers={"content-type": SoapVersion.SOAP12.content_type})
    return Reply(response.status_code, response.headers.get("content-type", ""), parse(response.content))


def _path(version: TrustVersion = TrustVersion.WST13, kind: str = "certificatetransport") -> str:
    return f"/adfs/services/trust/{'13' if version is TrustVersion.WST13 else '2005'}/{kind}"


def _request(applies_to: str, version: TrustVersion = TrustVersion.WST13, *, extra: tuple[etree._Element, ...] = (),
             timestamp_ttl_seconds: int | None = None) -> bytes:
    """An Issue RST with no message credentials (optionally a bare wsu:Timestamp)."""
    headers = render_request_headers(RequestType.ISSUE.request_action(version))
    if timestamp_ttl_seconds is not None:
        from datetime import UTC, datetime, timedelta

        security = build_security_header("unused", "unused",
                                         now=datetime.now(UTC) - timedelta(seconds=3600),
                                         ttl=timedelta(seconds=timestamp_ttl_seconds))
        security.remove(security.find(f"{{{ns.WSSE}}}UsernameToken"))  # type: ignore[arg-type]
        headers.append(security)
    return build_envelope(SoapVersion.SOAP12, render_rst(version, applies_to=applies_to, extra=extra), headers)


def _assertion(reply: Reply, live: LiveServer) -> etree._Element:
    """What the relying party reads: the decrypted SAML 2.0 assertion."""
    rp_key = load_private_key((live.home / "demo" / "rp.key").read_bytes())
    encrypted = reply.token()
    return decrypt_element(encrypted[0], rp_key)  # type: ignore[arg-type]


def _use_key(cert_der: bytes) -> etree._Element:
    use_key = etree.Element(f"{{{ns.WST13}}}UseKey")
    key_info = etree.SubElement(use_key, f"{{{ns.DS}}}KeyInfo", nsmap={"ds": ns.DS})
    data = etree.SubElement(key_info, f"{{{ns.DS}}}X509Data")
    etree.SubElement(data, f"{{{ns.DS}}}X509Certificate").text = base64.b64encode(cert_der).decode()
    return use_key


def _key_type(uri: str) -> etree._Element:
    element = etree.Element(f"{{{ns.WST13}}}KeyType")
    element.text = uri
    return element


# --- a registered client over TLS -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(TrustVersion))
def test_registered_client_certificate_gets_a_token(tls_sts, demo, version) -> None:
    reply = _post(tls_sts, _path(version), _request(demo["rp"], version), tls_sts.registered)
    assert reply.status == 200, reply.fault_reason
    assertion = _assertion(reply, tls_sts.live)
    assert assertion.findtext(f".//{{{ns.SAML2}}}NameID") == CLIENT
    assert assertion.findtext(f".//{{{ns.SAML2}}}AuthnContextClassRef") == X509_AUTHN


def test_the_clients_claims_are_issued(tls_sts, demo) -> None:
    headers = render_request_headers(RequestType.ISSUE.request_action(TrustVersion.WST13))
    rst = render_rst(TrustVersion.WST13, applies_to=demo["rp"], claims=((GIVENNAME, False),))
    reply = _post(tls_sts, _path(), build_envelope(SoapVersion.SOAP12, rst, headers), tls_sts.registered)
    assert reply.status == 200, reply.fault_reason
    assert "Payments" in etree.tostring(_assertion(reply, tls_sts.live)).decode()


def test_public_key_token_proved_by_the_tls_handshake(tls_sts, demo) -> None:
    cert_der = tls_sts.registered.certificate.public_bytes(Encoding.DER)
    body = _request(demo["rp"], extra=(_key_type(PUBLIC), _use_key(cert_der)))
    reply = _post(tls_sts, _path(), body, tls_sts.registered)
    assert reply.status == 200, reply.fault_reason
    assertion = _assertion(reply, tls_sts.live)
    assert assertion.findtext(f".//{{{ns.SAML2}}}NameID") == CLIENT
    confirmed = assertion.findtext(f".//{{{ns.SAML2}}}SubjectConfirmationData//{{{ns.DS}}}X509Certificate")
    assert confirmed is not None and base64.b64decode(confirmed) == cert_der
    assert reply.root.find(f".//{{{ns.WST13}}}RequestedProofToken") is None


def test_public_key_for_another_certificate_is_refused(tls_sts, demo) -> None:
    other = tls_sts.stranger.certificate.public_bytes(Encoding.DER)
    body = _request(demo["rp"], extra=(_key_type(PUBLIC), _use_key(other)))
    reply = _post(tls_sts, _path(), body, tls_sts.registered)
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


def test_current_timestamp_is_accepted_and_an_expired_one_refused(tls_sts, demo) -> None:
    fresh = _post(tls_sts, _path(), _request(demo["rp"], timestamp_ttl_seconds=7200), tls_sts.registered)
    assert fresh.status == 200, fresh.fault_reason
    stale = _post(tls_sts, _path(), _request(demo["rp"], timestamp_ttl_seconds=60), tls_sts.registered)
    assert stale.fault_code == (ns.WSSE, "MessageExpired")


# --- refused ----------------------------------------------------------------------------------------------------


def test_unregistered_client_certificate_fails(tls_sts, demo) -> None:
    reply = _post(tls_sts, _path(), _request(demo["rp"]), tls_sts.stranger)
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


def test_disabled_client_fails(tls_sts, demo) -> None:
    reply = _post(tls_sts, _path(), _request(demo["rp"]), tls_sts.disabled)
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


@pytest.mark.parametrize("version", list(TrustVersion))
def test_no_client_certificate_fails(tls_sts, demo, version) -> None:
    reply = _post(tls_sts, _path(version), _request(demo["rp"], version), None)
    assert reply.fault_code == (version.value, "FailedAuthentication")


def test_a_username_token_does_not_replace_the_certificate(tls_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"])
    reply = _post(tls_sts, _path(), body, None)
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


def test_plain_http_fails(live_sts, demo) -> None:
    response = httpx.post(live_sts.base_url + _path(), content=_request(demo["rp"]),
                          headers={"content-type": SoapVersion.SOAP12.content_type}, timeout=30)
    reply = Reply(response.status_code, "", parse(response.content))
    assert reply.status != 500
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


# --- usernamemixed on the same listener ------------------------------------------------------------------------


@pytest.mark.parametrize("with_certificate", [False, True])
def test_usernamemixed_ignores_the_tls_client_certificate(tls_sts, demo, with_certificate) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"])
    identity = tls_sts.registered if with_certificate else None
    reply = _post(tls_sts, _path(kind="usernamemixed"), body, identity)
    assert reply.status == 200, reply.fault_reason
    assertion = _assertion(reply, tls_sts.live)
    assert assertion.findtext(f".//{{{ns.SAML2}}}NameID") == demo["user"]
    assert not assertion.findtext(f".//{{{ns.SAML2}}}AuthnContextClassRef").endswith(":X509")


def test_usernamemixed_without_credentials_fails_despite_a_registered_certificate(tls_sts, demo) -> None:
    reply = _post(tls_sts, _path(kind="usernamemixed"), _request(demo["rp"]), tls_sts.registered)
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


# --- metadata ---------------------------------------------------------------------------------------------------


def test_mex_advertises_certificatetransport_and_msal_still_finds_usernamemixed(tls_sts) -> None:
    with _client(tls_sts.server_cert, None) as client:
        document = client.get(tls_sts.live.base_url + "/adfs/services/trust/mex").content
    base = tls_sts.live.base_url
    root = etree.fromstring(document)
    locations = [p.find(f"{{{ns.WSDL_SOAP12}}}address").get("location")  # type: ignore[union-attr]
                 for p in root.iterfind(f"{{{ns.WSDL}}}service/{{{ns.WSDL}}}port")]
    assert locations == [usernamemixed_url(base, TrustVersion.WST13), usernamemixed_url(base, TrustVersion.WST2005),
                         certificatetransport_url(base, TrustVersion.WST13),
                         certificatetransport_url(base, TrustVersion.WST2005)]
    assert msal.mex.Mex(document.decode()).get_wstrust_username_password_endpoint() == {
        "address": usernamemixed_url(base, TrustVersion.WST13), "action": msal.mex.Mex.ACTION_13}


def test_certificatetransport_policies_require_a_client_certificate() -> None:
    root = render_mex_wsdl("https://sts.example.org/", certificate_transport=True)
    policies = {p.get(f"{{{ns.WSU}}}Id"): p for p in root.iterfind(f"{{{ns.WSP12}}}Policy")}
    p13 = policies["CertificateTransportWSTrustBinding_IWSTrust13Async_policy"]
    assert p13.find(f".//{{{ns.SP12}}}HttpsToken/{{{ns.WSP12}}}Policy/{{{ns.SP12}}}RequireClientCertificate") is not None
    p2005 = policies["CertificateTransportWSTrustBinding_IWSTrustFeb2005Async_policy"]
    assert p2005.find(f".//{{{ns.SP2005}}}HttpsToken").get("RequireClientCertificate") == "true"  # type: ignore[union-attr]
    for policy in (p13, p2005):
        assert [str(e.reason) for e in validator().iter_errors(policy)] == []
        assert policy.find(f".//{{{ns.SP12}}}UsernameToken") is None
        assert policy.find(f".//{{{ns.SP2005}}}UsernameToken") is None


def test_certificatetransport_never_advertised_over_plain_http() -> None:
    text = etree.tostring(render_mex_wsdl("http://localhost:8080", certificate_transport=True)).decode()
    assert "certificatetransport" not in text


# --- helpers and the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["TlsH11Protocol", "TlsHttpToolsProtocol"])
def test_the_protocol_fills_the_asgi_tls_extension(tmp_path: Path, protocol: str) -> None:
    """Each of our uvicorn protocols (h11, and httptools, which sts serve runs) under a bare ASGI app: the
    extension's fields as the spec names them."""
    import json

    from sts.web import tls as tls_module

    http = getattr(tls_module, protocol)
    assert http is not None, "httptools is a dependency of sts (pyproject.toml)"

    async def echo(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        tls = scope.get("extensions", {}).get("tls")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(tls).encode()})

    identity = _identity(tmp_path, "echo")
    server_cert, server_key = make_tls_files(tmp_path)
    port = free_port()
    tls_options = ssl_options(server_cert, server_key, identity.cert_file)
    with serving(echo, port, lifespan="off", http=http, **tls_options):
        with _client(server_cert, identity) as client:
            tls = client.get(f"https://127.0.0.1:{port}/").json()
        with _client(server_cert, None) as client:
            anonymous = client.get(f"https://127.0.0.1:{port}/").json()
    assert client_cert_der({"extensions": {"tls": tls}}) == identity.certificate.public_bytes(Encoding.DER)
    assert tls["client_cert_name"] == identity.certificate.subject.rfc4514_string()
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert tls["server_cert"] == Path(server_cert).read_text()
    assert anonymous["client_cert_chain"] == [] and anonymous["client_cert_name"] is None


def test_ssl_options() -> None:
    assert ssl_options(None, None, None) == {"ssl_certfile": None, "ssl_keyfile": None}
    assert ssl_options("c.pem", "k.pem", "ca.pem") == {"ssl_certfile": "c.pem", "ssl_keyfile": "k.pem",
                                                      "ssl_cert_reqs": ssl.CERT_OPTIONAL, "ssl_ca_certs": "ca.pem"}
    with pytest.raises(ValueError):
        ssl_options(None, None, "ca.pem")


def test_client_cert_der_reads_the_asgi_tls_extension() -> None:
    _, cert, pem = make_client("scope")
    assert client_cert_der({"type": "http"}) is None
    assert client_cert_der({"extensions": {"tls": {"client_cert_chain": []}}}) is None
    assert client_cert_der({"extensions": {"tls": {"client_cert_chain": [pem.decode()]}}}) == cert.public_bytes(
        Encoding.DER)


def test_serve_with_client_ca_and_workers(tmp_path: Path, demo) -> None:
    """`sts serve --ssl-client-ca` in multi-worker mode (sts.web.asgi:app_from_env in spawned processes)."""
    home = tmp_path / "home"
    init_home(home)
    identity = _identity(tmp_path, CLIENT)
    open_stores(load_settings(home)).clients.add(CLIENT, identity.certificate.public_bytes(Encoding.PEM))
    server_cert, server_key = make_tls_files(tmp_path)
    port = free_port()
    env = {**os.environ, "STS_PASSWORD_HASH_N": "16"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port), "--workers", "2",
         "--ssl-certfile", server_cert, "--ssl-keyfile", server_key, "--ssl-client-ca", identity.cert_file],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        base = f"https://127.0.0.1:{port}"
        with _client(server_cert, identity) as client:
            wait_healthy(base, process, client)
            for _ in range(3):
                response = client.post(base + _path(), content=_request(demo["rp"]),
                                       headers={"content-type": SoapVersion.SOAP12.content_type})
                assert response.status_code == 200, response.text
            mex = client.get(base + "/adfs/services/trust/mex").text
            assert certificatetransport_url(base, TrustVersion.WST13) in mex
    finally:
        process.terminate()
        process.communicate(timeout=20)


def test_serve_refuses_client_ca_without_tls(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_client("ca")[2])
    result = subprocess.run([sys.executable, "-m", "sts", "--home", str(home), "serve", "--ssl-client-ca", str(ca)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "--ssl-client-ca" in result.stderr
