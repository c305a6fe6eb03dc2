"""Helpers for the console tests (imported by name: a conftest module name is not unique)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient

ADMIN, ADMIN_PASSWORD = "root", "console-secret"


def make_cert(subject: str = "rp.example", *, days: int = 365, start_days: int = -1,
              attrs: list[x509.NameAttribute] | None = None) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) for a throw-away RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(attrs or [x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + timedelta(days=start_days))
            .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def sign_in(client: TestClient, name: str = ADMIN, password: str = ADMIN_PASSWORD) -> str:
    """Sign in; returns the session's CSRF token."""
    page = client.get("/console/login")
    response = client.post("/console/login", data={"csrf": csrf_of(page.text), "name": name, "password": password})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/console/").text)
