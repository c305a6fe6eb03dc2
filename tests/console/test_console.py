"""The management console over ASGI (no browser): auth, CSRF, validation, escaping, the JSON API."""

from __future__ import annotations

import re

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from console_support import ADMIN, ADMIN_PASSWORD, csrf_of, make_cert, sign_in  # type: ignore[import-not-found]
from cryptography import x509
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient

from sts.cli.main import main
from sts.web.console.auth import SessionCodec, parse_basic
from sts.runtime import Runtime

PAGES = ["/console/", "/console/rps", "/console/rps/new", "/console/users", "/console/explain", "/console/tokens",
         "/console/keys", "/console/audit"]


def basic(name: str = ADMIN, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_session(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


def test_api_needs_authentication(client: TestClient) -> None:
    response = client.get("/console/api/rps")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


def test_sign_in_sets_a_strict_httponly_cookie_and_every_page_renders(client: TestClient) -> None:
    page = client.get("/console/login")
    response = client.post("/console/login", data={"csrf": csrf_of(page.text), "name": ADMIN,
                                                    "password": ADMIN_PASSWORD})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    for path in PAGES:
        assert client.get(path).status_code == 200, path


def test_secure_cookie_when_served_over_https(runtime: Runtime) -> None:
    from sts.web.asgi import create_app

    tls_client = TestClient(create_app(runtime, loopback_bind=True), base_url="https://testserver",
                            follow_redirects=False)
    page = tls_client.get("/console/login")
    response = tls_client.post("/console/login", data={"csrf": csrf_of(page.text), "name": ADMIN,
                                                        "password": ADMIN_PASSWORD})
    assert "secure" in response.headers["set-cookie"].lower()


def test_wrong_password_and_non_admin_are_refused(client: TestClient, runtime: Runtime) -> None:
    runtime.stores.users.add("bob", "pw")
    page = client.get("/console/login")
    for name, password in ((ADMIN, "wrong"), ("bob", "pw")):
        response = client.post("/console/login", data={"csrf": csrf_of(page.text), "name": name,
                                                        "password": password})
        assert response.status_code == 401
        assert "wrong name or password" in response.text
        assert f'value="{name}"' in response.text  # input kept


def test_session_codec_rejects_tampering_and_expiry() -> None:
    codec = SessionCodec(b"k" * 32)
    cookie, session = codec.issue("root", now=1000)
    assert codec.read(cookie, now=1001) == session
    payload, mac = cookie.split(".")
    forged = base64.urlsafe_b64encode(b'{"u": "x", "c": "y", "e": 9e99}').decode().rstrip("=")
    assert codec.read(f"{forged}.{mac}") is None
    assert codec.read(cookie, now=1000 + 9 * 3600) is None
    assert SessionCodec(b"other" * 8).read(cookie, now=1001) is None
    assert parse_basic("Basic " + base64.b64encode(b"a:b:c").decode()) == ("a", "b:c")
    assert parse_basic("Bearer x") is None


def test_login_post_without_csrf_is_forbidden(client: TestClient) -> None:
    response = client.post("/console/login", data={"name": ADMIN, "password": ADMIN_PASSWORD})
    assert response.status_code == 403


def test_post_without_csrf_is_forbidden(client: TestClient, admin: str, runtime: Runtime) -> None:
    _, cert = make_cert()
    response = client.post("/console/rps/new", data={"endpoint": "https://x.example/", "cert_pem": cert.decode(),
                                                     "encrypt": "1"})
    assert response.status_code == 403
    response = client.post("/console/rps/new", data={"csrf": "forged", "endpoint": "https://x.example/"})
    assert response.status_code == 403
    assert runtime.stores.relying_parties.get("https://x.example/") is None


def test_logout(client: TestClient, admin: str) -> None:
    response = client.post("/console/logout", data={"csrf": admin})
    assert response.status_code == 303
    client.cookies.clear()
    assert client.get("/console/").status_code == 303


def test_dashboard(client: TestClient, admin: str) -> None:
    html = client.get("/console/").text
    for text in ("/services/sts?wsdl", "/services/sts/mex", "FederationMetadata.xml", "<svg", "tokens issued"):
        assert text in html


def _add_rp(client: TestClient, csrf: str, endpoint: str, cert: bytes | None = None,
            filename: str = "rp.pem", **extra: str) -> object:
    files = {"cert_file": (filename, cert, "application/octet-stream")} if cert is not None else None
    data = {"csrf": csrf, "endpoint": endpoint, "encrypt": "1", "token_type": "saml20", **extra}
    return client.post("/console/rps/new", data=data, files=files)


def test_add_rp_by_file_pem_and_der(client: TestClient, admin: str, runtime: Runtime) -> None:
    _, cert = make_cert("pem.example")
    response = _add_rp(client, admin, "https://pem.example/app", cert)
    assert response.status_code == 303  # type: ignore[attr-defined]
    der = x509.load_pem_x509_certificate(make_cert("der.example")[1]).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
    assert _add_rp(client, admin, "https://der.example/", der, "rp.cer").status_code == 303  # type: ignore[attr-defined]
    listing = re.sub(r"<[^>]+>", "", client.get("/console/rps").text)  # the text, as a reader sees it
    assert "https://pem.example/app" in listing and "CN=der.example" in listing
    stored = runtime.stores.relying_parties.get("https://pem.example/app")
    assert stored is not None and stored.encrypt and stored.cert_pem is not None


def test_add_rp_with_pasted_pem(client: TestClient, admin: str, runtime: Runtime) -> None:
    _, cert = make_cert()
    response = _add_rp(client, admin, "urn:example:rp", None, cert_pem=cert.decode())
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert runtime.stores.relying_parties.get("urn:example:rp") is not None


@pytest.mark.parametrize("endpoint, cert, field, message", [
    ("https://ok.example/", b"garbage", "cert", "not a PEM or DER X.509 certificate"),
    ("https://ok.example/", make_cert(days=-1, start_days=-10)[1], "cert", "the certificate expired"),
    ("https://ok.example/", make_cert()[0], "cert", "this is a private key"),
    ("not-a-url", make_cert()[1], "endpoint", "must be an absolute URL"),
    ("/relative/path", make_cert()[1], "endpoint", "must be an absolute URL"),
])
def test_bad_rp_input_is_refused_next_to_the_field(client: TestClient, admin: str, runtime: Runtime,
                                                    endpoint: str, cert: bytes, field: str, message: str) -> None:
    response = _add_rp(client, admin, endpoint, cert, required_claims="http://c.example/x")
    assert response.status_code == 400  # type: ignore[attr-defined]
    html = response.text  # type: ignore[attr-defined]
    assert f'id="{field}-error"' in html and message in html
    assert f'value="{endpoint}"' in html and "http://c.example/x" in html  # input kept
    assert runtime.stores.relying_parties.list() == [
        rp for rp in runtime.stores.relying_parties.list() if rp.endpoint == "https://service-a.example/"]


def test_duplicate_endpoint_is_refused(client: TestClient, admin: str) -> None:
    response = _add_rp(client, admin, "https://SERVICE-A.example", make_cert()[1])
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "already exists" in response.text  # type: ignore[attr-defined]


def test_missing_certificate_with_encryption(client: TestClient, admin: str) -> None:
    response = _add_rp(client, admin, "https://nocert.example/")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "a certificate is needed" in response.text  # type: ignore[attr-defined]


def test_script_in_certificate_subject_is_escaped(client: TestClient, admin: str) -> None:
    _, cert = make_cert(attrs=[x509.NameAttribute(NameOID.COMMON_NAME, "<script>alert(1)</script>")])
    assert _add_rp(client, admin, "https://xss.example/", cert).status_code == 303  # type: ignore[attr-defined]
    html = client.get("/console/rps").text
    assert "<script>alert" not in html and "alert(1)</script>" not in html and "alert(1)\\</script>" not in html
    assert "&lt;script\\&gt;alert(1)" in html


def test_edit_policy_and_legacy_opt_in(client: TestClient, admin: str, runtime: Runtime) -> None:
    url = "/console/rps/edit?endpoint=https%3A%2F%2Fservice-a.example%2F"
    assert client.get(url).status_code == 200
    data = {"csrf": admin, "encrypt": "1", "token_type": "saml11", "signature": "rsa-sha1",
            "data_encryption": "aes256-gcm", "key_transport": "rsa-oaep-mgf1p", "max_lifetime": "600",
            "required_claims": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
    refused = client.post(url, data=data)
    assert refused.status_code == 400 and "legacy algorithm" in refused.text
    assert 'id="signature-error"' in refused.text and "allow legacy algorithms" in refused.text
    response = client.post(url, data={**data, "legacy": "1"})
    assert response.status_code == 200, response.text  # saved, with the warning to read
    assert "Saved https://service-a.example/" in response.text
    assert "legacy algorithm rsa-sha1 for https://service-a.example/: SHA-1" in response.text
    rp = runtime.stores.relying_parties.get("https://service-a.example/")
    assert rp is not None and rp.token_type.short == "saml11" and rp.max_lifetime.total_seconds() == 600
    assert rp.required_claims == ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",)
    assert rp.signature_algorithm.value.endswith("rsa-sha1")


def test_remove_needs_confirmation(client: TestClient, admin: str, runtime: Runtime) -> None:
    url = "/console/rps/remove?endpoint=https%3A%2F%2Fservice-a.example%2F"
    page = client.get(url)
    assert page.status_code == 200 and "Yes, remove" in page.text
    assert runtime.stores.relying_parties.get("https://service-a.example/") is not None
    assert client.post(url, data={"csrf": admin}).status_code == 303
    assert runtime.stores.relying_parties.get("https://service-a.example/") is None


def test_users_add_edit_disable_remove(client: TestClient, admin: str, runtime: Runtime) -> None:
    email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    bad = client.post("/console/users", data={"csrf": admin, "name": "carol", "password": "pw", "claims": "oops"})
    assert bad.status_code == 400 and "is not NAME=VALUE or URI=VALUE" in bad.text and 'value="carol"' in bad.text
    ok = client.post("/console/users", data={"csrf": admin, "name": "carol", "password": "pw",
                                              "claims": f"{email}=carol@example.com"})
    assert ok.status_code == 303
    user = runtime.stores.users.get("carol")
    assert user is not None and user.claims[0].values == ("carol@example.com",)
    assert email in client.get("/console/users/carol").text
    client.post("/console/users/carol", data={"csrf": admin, "action": "claims", "claims": f"{email}=c@x.example"})
    client.post("/console/users/carol", data={"csrf": admin, "action": "password", "password": "new"})
    assert runtime.stores.users.check_password("carol", "new")
    client.post("/console/users/carol", data={"csrf": admin, "action": "disable"})
    user = runtime.stores.users.get("carol")
    assert user is not None and user.disabled and user.claims[0].values == ("c@x.example",)
    confirm = client.post("/console/users/carol", data={"csrf": admin, "action": "remove"})
    assert confirm.status_code == 200 and "Yes, remove" in confirm.text
    client.post("/console/users/carol", data={"csrf": admin, "action": "remove", "confirm": "yes"})
    assert runtime.stores.users.get("carol") is None
    own = client.post(f"/console/users/{ADMIN}", data={"csrf": admin, "action": "disable"})
    assert own.status_code == 400


def test_tokens_search_detail_and_cancel(client: TestClient, admin: str, runtime: Runtime) -> None:
    from datetime import UTC, datetime, timedelta

    from sts.model import TokenRecord
    from sts.uris import TokenType

    now = datetime.now(UTC)
    runtime.stores.tokens.put(TokenRecord("_t1", TokenType.SAML20, "alice", "https://service-a.example/", now,
                                          now + timedelta(hours=1), details={"claims": 3}))
    listing = client.get("/console/tokens?subject=alice").text
    assert "_t1" in listing
    assert "_t1" not in client.get("/console/tokens?subject=nobody").text
    assert "claims" in client.get("/console/tokens/_t1").text
    assert client.post("/console/tokens/_t1/cancel", data={"csrf": admin}).status_code == 303
    token = runtime.stores.tokens.get("_t1")
    assert token is not None and token.status == "cancelled"
    assert "1" in client.get("/console/").text


def test_audit_records_console_actions(client: TestClient, admin: str) -> None:
    _add_rp(client, admin, "https://audited.example/", make_cert()[1])
    html = client.get("/console/audit?event=rp.*").text
    assert "<td>rp.add</td>" in html and "https://audited.example/" in html
    assert "<td>console.login</td>" not in html
    assert "<td>console.login</td>" in client.get(f"/console/audit?event=console.login&actor={ADMIN}").text


def test_api_with_basic_auth(client: TestClient, runtime: Runtime) -> None:
    _, cert = make_cert()
    assert client.get("/console/api/rps", headers=basic(password="wrong")).status_code == 401
    created = client.post("/console/api/rps", headers=basic(),
                          json={"endpoint": "https://api.example/", "certificate_pem": cert.decode()})
    assert created.status_code == 201, created.text
    refused = client.post("/console/api/rps", headers=basic(), json={"endpoint": "nope", "certificate_pem": "x"})
    assert refused.status_code == 400 and set(refused.json()["errors"]) == {"endpoint", "cert"}
    duplicate = client.post("/console/api/rps", headers=basic(),
                            json={"endpoint": "https://api.example/", "certificate_pem": cert.decode()})
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["errors"]["endpoint"]
    listed = client.get("/console/api/rps", headers=basic()).json()
    assert "https://api.example/" in [rp["endpoint"] for rp in listed]
    assert client.post("/console/api/users", headers=basic(), json={"name": "dave", "password": "p"}).status_code == 201
    assert client.patch("/console/api/users/dave", headers=basic(), json={"disabled": True}).status_code == 200
    assert client.delete("/console/api/users/dave", headers=basic()).status_code == 200
    assert client.delete("/console/api/rps?endpoint=https://api.example/", headers=basic()).status_code == 200
    assert client.get("/console/api/status", headers=basic()).json()["relying_parties"] == 1
    assert isinstance(client.get("/console/api/tokens", headers=basic()).json(), list)
    assert isinstance(client.get("/console/api/audit", headers=basic()).json(), list)


def test_api_with_session_needs_the_csrf_header(client: TestClient, admin: str) -> None:
    body = {"name": "erin", "password": "p"}
    assert client.post("/console/api/users", json=body).status_code == 403
    assert client.post("/console/api/users", json=body, headers={"X-CSRF-Token": admin}).status_code == 201


def test_security_headers(client: TestClient, admin: str) -> None:
    headers = client.get("/console/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_static_assets_are_served(client: TestClient) -> None:
    assert "body" in client.get("/console/static/console.css").text
    assert client.get("/console/static/console.js").status_code == 200


def test_cli_admin_add(console_home: Path, runtime: Runtime) -> None:
    result = CliRunner().invoke(main, ["--home", str(console_home), "admin", "add", "eve", "--password-stdin"],
                                input="a long s3cret\n")
    assert result.exit_code == 0, result.output
    user = runtime.stores.users.get("eve")
    assert user is not None and user.admin
    assert runtime.stores.users.check_password("eve", "a long s3cret")
    again = CliRunner().invoke(main, ["--home", str(console_home), "admin", "add", "eve", "--password", "x"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_non_admin_session_loses_access(client: TestClient, runtime: Runtime) -> None:
    sign_in(client)
    runtime.stores.users.set_admin(ADMIN, False)
    assert client.get("/console/").status_code == 303


def test_accessibility_smoke_over_every_page(client: TestClient, admin: str, runtime: Runtime) -> None:
    from a11y import check_page  # type: ignore[import-not-found]

    check_page(client.get("/console/login").text, "login")
    for path in [*PAGES, "/console/rps/edit?endpoint=https%3A%2F%2Fservice-a.example%2F", "/console/users/alice",
                 "/console/rps/remove?endpoint=https%3A%2F%2Fservice-a.example%2F"]:
        check_page(client.get(path).text, path)


def _needs_rp_field(name: str) -> pytest.MarkDecorator:
    from sts.web.console.forms import rp_supports

    return pytest.mark.skipif(not rp_supports(name), reason=f"RelyingParty.{name} is not in this build yet")


@_needs_rp_field("next_cert_from")
def test_edit_rollover_audiences_and_allowed_types(client: TestClient, admin: str, runtime: Runtime) -> None:
    url = "/console/rps/edit?endpoint=https%3A%2F%2Fservice-a.example%2F"
    _, soon = make_cert("next.example", days=10)
    data = {"csrf": admin, "encrypt": "1", "token_type": "saml20", "signature": "rsa-sha256",
            "data_encryption": "aes256-gcm", "key_transport": "rsa-oaep-mgf1p",
            "additional_audiences": "urn:extra:audience", "allowed_token_types": "saml20",
            "allowed_key_types": ["bearer", "symmetric"], "next_cert_pem": soon.decode()}
    missing_time = client.post(url, data=data)
    assert missing_time.status_code == 400 and 'id="next_cert_from-error"' in missing_time.text
    switch = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    bad_audience = client.post(url, data={**data, "next_cert_from": switch, "additional_audiences": "x"})
    assert bad_audience.status_code == 400 and 'id="additional_audiences-error"' in bad_audience.text
    too_late = client.post(url, data={**data, "next_cert_from": "2030-01-01T00:00"})
    assert too_late.status_code == 400 and "before the switch time" in too_late.text  # it expires in 10 days
    assert client.post(url, data={**data, "next_cert_from": switch}).status_code == 303
    rp = runtime.stores.relying_parties.get("https://service-a.example/")
    assert rp is not None
    assert getattr(rp, "additional_audiences") == ("urn:extra:audience",)
    assert [t.short for t in getattr(rp, "allowed_token_types")] == ["saml20"]
    assert len(getattr(rp, "allowed_key_types")) == 2
    assert getattr(rp, "next_cert_from").strftime("%Y-%m-%dT%H:%M") == switch
    assert getattr(rp, "next_cert_pem") is not None
    listing = client.get("/console/rps").text
    assert "next: CN=next.example" in listing
    assert "expires in 9 days" in client.get(url).text or "expires in 10 days" in client.get(url).text


def _module(name: str) -> object:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@pytest.mark.skipif(_module("sts.service.explain") is None, reason="sts.service.explain is not in this build yet")
def test_explain_page_and_api(client: TestClient, admin: str) -> None:
    email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    response = client.post("/console/explain", data={"csrf": admin, "user": "alice",
                                                      "rp": "https://service-a.example/", "claims": email})
    assert response.status_code == 200, response.text
    assert "Would issue" in response.text and email in response.text
    refused = client.post("/console/explain", data={"csrf": admin, "user": "alice", "rp": "https://nope.example/"})
    assert "Would refuse" in refused.text
    missing = client.post("/console/explain", data={"csrf": admin, "user": "", "rp": ""})
    assert missing.status_code == 400 and 'id="user-error"' in missing.text
    api = client.post("/console/api/explain", headers=basic(), json={"user": "alice", "rp": "https://service-a.example/"})
    assert api.status_code == 200 and api.json()["ok"] is True


@pytest.mark.skipif(_module("sts.admin.rp_metadata") is None, reason="sts.admin.rp_metadata is not in this build yet")
def test_add_rp_from_metadata_file(client: TestClient, admin: str, runtime: Runtime) -> None:
    _, cert = make_cert("meta.example")
    body = b"".join(cert.split(b"\n")[1:-2])
    metadata = (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
                b'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://meta.example/sp">'
                b'<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
                b'<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>' + body +
                b'</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>'
                b'<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
                b'Location="https://meta.example/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>')
    response = client.post("/console/rps/new", data={"csrf": admin, "source": "metadata", "encrypt": "1"},
                           files={"metadata_file": ("sp.xml", metadata, "application/xml")})
    assert response.status_code == 303, response.text
    assert any("meta.example" in rp.endpoint for rp in runtime.stores.relying_parties.list())
    broken = client.post("/console/rps/new", data={"csrf": admin, "source": "metadata", "encrypt": "1"},
                         files={"metadata_file": ("sp.xml", b"<x/>", "application/xml")})
    assert broken.status_code == 400 and 'id="metadata-error"' in broken.text


@pytest.mark.skipif(_module("sts.tokens.keyring") is None, reason="sts.tokens.keyring is not in this build yet")
def test_keys_page_schedules_a_generated_key(client: TestClient, admin: str, runtime: Runtime) -> None:
    if getattr(runtime, "keyring", None) is None:
        pytest.skip("the runtime has no keyring yet")
    bad = client.post("/console/keys", data={"csrf": admin, "active_from": "tomorrow", "overlap_days": "7"})
    assert bad.status_code == 400 and 'id="active_from-error"' in bad.text
    response = client.post("/console/keys", data={"csrf": admin, "active_from": "2030-01-01T00:00",
                                                  "overlap_days": "7"})
    assert response.status_code == 303, response.text
    html = client.get("/console/keys").text
    assert "next" in html and "2030-01-01 00:00 UTC" in html
