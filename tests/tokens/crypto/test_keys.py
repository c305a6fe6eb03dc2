"""Key and certificate generation, loading (PEM and DER) and the messages users see."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sts.tokens.crypto.keys import (
    SigningKey,
    check_certificate,
    fingerprint_sha256,
    generate_key_and_cert,
    load_certificate,
    load_private_key,
    random_id,
)


def test_rsa_certificate_profile(rsa_material) -> None:
    cert = load_certificate(rsa_material.cert_pem)
    key = load_private_key(rsa_material.key_pem)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert rsa_material.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS #8, unencrypted
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "CN=sts.test"
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and usage.data_encipherment
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=3650)


def test_ec_certificate_profile(ec_material) -> None:
    key = load_private_key(ec_material.key_pem)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    usage = load_certificate(ec_material.cert_pem).extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.data_encipherment
    assert ec_material.signing_key.is_ec


def test_serials_are_random() -> None:
    first = load_certificate(generate_key_and_cert("a", ec=True)[1])
    second = load_certificate(generate_key_and_cert("a", ec=True)[1])
    assert first.serial_number != second.serial_number


def test_der_and_pem_load_alike(rsa_material) -> None:
    cert = load_certificate(rsa_material.cert_pem)
    assert load_certificate(cert.public_bytes(serialization.Encoding.DER)) == cert
    key = load_private_key(rsa_material.key_pem)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert load_private_key(der).private_numbers() == key.private_numbers()  # type: ignore[union-attr]


def test_a_key_offered_as_certificate_is_named(rsa_material) -> None:
    with pytest.raises(ValueError, match="this is a private key, upload the certificate"):
        load_certificate(rsa_material.key_pem)


BROKEN_PEM = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("data", [b"", b"hello", BROKEN_PEM])
def test_garbage_is_not_a_certificate(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a PEM or DER X.509 certificate"):
        load_certificate(data)


def test_a_certificate_offered_as_key_is_named(rsa_material) -> None:
    with pytest.raises(ValueError, match="this is a certificate, not a private key"):
        load_private_key(rsa_material.cert_pem)


def test_encrypted_key_needs_a_password(rsa_material) -> None:
    key = load_private_key(rsa_material.key_pem)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="password"):
        load_private_key(pem)
    unlocked = SigningKey.from_pem(pem, rsa_material.cert_pem, b"secret")
    assert unlocked.private_key.private_numbers() == key.private_numbers()


def test_check_certificate_window(rsa_material) -> None:
    cert = load_certificate(rsa_material.cert_pem)
    check_certificate(cert, cert.not_valid_before_utc + timedelta(days=1))
    with pytest.raises(ValueError, match="expired"):
        check_certificate(cert, cert.not_valid_after_utc + timedelta(seconds=1))
    with pytest.raises(ValueError, match="not valid before"):
        check_certificate(cert, cert.not_valid_before_utc - timedelta(seconds=1))


def test_fingerprint_is_colon_hex(rsa_material) -> None:
    value = fingerprint_sha256(load_certificate(rsa_material.cert_pem))
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", value)


def test_signing_key_load_from_files(rsa_material, tmp_path: Path) -> None:
    key_path, cert_path = rsa_material.write(tmp_path, "sts")
    loaded = SigningKey.load(key_path, cert_path)
    assert loaded.cert_der == rsa_material.signing_key.cert_der
    assert loaded.cert_b64 == rsa_material.signing_key.cert_b64
    assert not loaded.is_ec


def test_signing_key_refuses_a_foreign_certificate(rsa_material, ec_material) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        SigningKey.from_pem(rsa_material.key_pem, ec_material.cert_pem)


def test_random_id_is_an_ncname() -> None:
    assert re.fullmatch(r"_[0-9a-f]{32}", random_id())
