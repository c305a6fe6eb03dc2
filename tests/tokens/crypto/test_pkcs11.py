"""Signing through PKCS#11 with a throwaway SoftHSM2 token: keys made in the token, never extractable; RSA and
ECDSA P-256 signatures that xmlsec1 and the relying-party verifier accept; threads sharing the session pool; errors
that say what to fix."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from live import init_home_with, running
from peers import xmlsec1_verify
from servers.softhsm import SoftHsm, shared_softhsm
from sts import ns
from sts.cli.main import main
from sts.config import load_settings
from sts.home import DEMO_PASSWORD
from sts.model import RelyingParty
from sts.rp.verifier import TokenVerifier
from sts.runtime import build_runtime
from sts.tokens.crypto.keys import load_certificate
from sts.tokens.crypto.pkcs11 import HsmConfig, HsmEcKey, HsmError, HsmRsaKey, open_token
from sts.tokens.crypto.signing import XmlSigner, c14n, default_algorithm
from sts.tokens.key_store import KeySourceError
from sts.xmltime import utcnow
from trust_client import post, rst_envelope

PLAIN = "https://plain.example/app"


@pytest.fixture
def hsm(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    token = shared_softhsm(tmp_path_factory.mktemp("softhsm"))
    monkeypatch.setenv(token.pin_env, token.pin)
    return token


def _label() -> str:
    return f"sts-signing-{secrets.token_hex(4)}"


def _hsm_home(path: Path, hsm: SoftHsm, label: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose sts.toml says key_source = "pkcs11" (the key ``label``), the secrets key imported into its
    database under a key-encryption key (with an HSM the secrets key is shared through the database)."""
    home = init_home_with(path, RelyingParty(endpoint=PLAIN, encrypt=False))
    config = home / "sts.toml"
    text = config.read_text().replace('key_source = "files"', 'key_source = "pkcs11"')
    text = text.replace('pkcs11_module = ""', f'pkcs11_module = "{hsm.module}"')
    text = text.replace('pkcs11_token_label = ""', f'pkcs11_token_label = "{hsm.token_label}"')
    config.write_text(text + f'pkcs11_key_label = "{label}"\n')  # not in the generated file (a default)
    monkeypatch.setenv("STS_KEY_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode("ascii"))
    imported = CliRunner().invoke(main, ["--home", str(home), "keys", "import-to-database"])
    assert imported.exit_code == 0, imported.output
    assert "imported the secrets key" in imported.output and "signing key" not in imported.output
    return home


def test_the_key_is_made_in_the_token_and_cannot_leave_it(hsm: SoftHsm) -> None:
    from pkcs11 import Attribute, ObjectClass

    label = _label()
    hsm.generate_key(label)
    key = hsm.token().signing_key(label)
    assert isinstance(key.private_key, HsmRsaKey) and key.private_key.key_size == 2048
    with pytest.raises(ValueError, match="cannot be exported"):
        key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    with hsm.token().session() as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        assert private[Attribute.SENSITIVE] is True and private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True


@pytest.mark.parametrize("use_ec", [False, True], ids=["rsa", "p256"])
def test_signatures_verify_with_the_public_key(hsm: SoftHsm, use_ec: bool) -> None:
    label = _label()
    hsm.generate_key(label, ec=use_ec)
    key = hsm.token().signing_key(label)
    public = key.certificate.public_key()
    data = b"signed info" * 20
    if use_ec:
        assert isinstance(key.private_key, HsmEcKey) and isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(key.private_key.sign(data, ec.ECDSA(hashes.SHA256())), data, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(key.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256()), data, padding.PKCS1v15(),
                      hashes.SHA256())
    # The certificate the helper stored was signed by the token itself (self-signed: its own key verifies it).
    key.certificate.verify_directly_issued_by(key.certificate)


def test_threads_sign_at_once_and_every_signature_verifies(hsm: SoftHsm) -> None:
    """PKCS#11 calls from many threads at once (SoftHSM2 fails with CKR_GENERAL_ERROR without the module lock)."""
    label = _label()
    hsm.generate_key(label, ec=True)
    key = hsm.token().signing_key(label)
    signer = XmlSigner(key, default_algorithm(key))

    def sign(i: int) -> etree._Element:
        element = etree.Element("{urn:test}Doc", ID=f"_d{i}")
        element.text = str(i)
        signer.sign(element, f"_d{i}")
        return element

    with ThreadPoolExecutor(8) as pool:
        signed = list(pool.map(sign, range(64)))
    public = key.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for element in signed:
        signature = element.find(f"{{{ns.DS}}}Signature")
        assert signature is not None
        raw = base64.b64decode(signature.findtext(f"{{{ns.DS}}}SignatureValue") or "")
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, c14n(signature[0]), ec.ECDSA(hashes.SHA256()))  # raises when it does not verify


@pytest.mark.parametrize("use_ec", [False, True], ids=["rsa", "p256"])
def test_tokens_issued_with_an_hsm_key_verify(hsm: SoftHsm, tmp_path: Path, use_ec: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    label = _label()
    cert_pem = hsm.generate_key(label, ec=use_ec)
    home = _hsm_home(tmp_path / "home", hsm, label, monkeypatch)
    with running(home) as live:
        assert live.runtime.keyring.source == "pkcs11"  # type: ignore[attr-defined]
        reply = post(live.sts_url, rst_envelope(user="alice", password=DEMO_PASSWORD, applies_to=PLAIN))
        assert reply.status == 200
        token = reply.token()
    method = token.find(f".//{{{ns.DS}}}SignatureMethod")
    assert method is not None and method.get("Algorithm", "").endswith("ecdsa-sha256" if use_ec else "rsa-sha256")
    xmlsec1_verify(token, cert_pem)
    assert TokenVerifier([load_certificate(cert_pem)], audience=PLAIN).verify(token).subject == "alice"


def test_a_rollover_makes_the_next_key_inside_the_hsm(hsm: SoftHsm, tmp_path: Path) -> None:
    label = _label()
    hsm.generate_key(label)
    home = init_home_with(tmp_path / "home")
    settings = replace(load_settings(home), **hsm.settings(label))  # type: ignore[arg-type]
    runtime = build_runtime(settings)
    try:
        assert runtime.keyring is not None
        now = utcnow()
        new_id = runtime.keyring.generate_and_schedule(now + timedelta(hours=1), timedelta(days=1))
        entries = {e.id: e.state for e in runtime.keyring.entries(now)}
        assert entries == {"sts-signing": "active", new_id: "next"}
        upcoming = runtime.keyring.current(now + timedelta(hours=2))
        assert isinstance(upcoming.private_key, HsmRsaKey) and upcoming.private_key.label == f"{label}-{new_id}"
        with pytest.raises(ValueError, match="made inside the HSM"):
            runtime.keyring.schedule(b"", None, active_from=now + timedelta(hours=3), overlap=timedelta(0))
    finally:
        runtime.stores.close()


def test_a_missing_key_token_or_module_is_a_clear_error(hsm: SoftHsm, tmp_path: Path) -> None:
    home = init_home_with(tmp_path / "home")
    settings = load_settings(home)
    cases = [
        (dict(hsm.settings("no-such-key")), "has no certificate labelled 'no-such-key'"),
        ({**hsm.settings("x"), "pkcs11_token_label": "no-such-token"}, "has no token labelled 'no-such-token'"),
        ({**hsm.settings("x"), "pkcs11_module": str(tmp_path / "missing.so")}, "missing.so does not exist"),
        ({**hsm.settings("x"), "pkcs11_module": ""}, "pkcs11_module is empty"),
        ({**hsm.settings("x"), "pkcs11_pin_env": "STS_TEST_NO_PIN"}, "set the environment variable STS_TEST_NO"),
    ]
    for overrides, message in cases:
        with pytest.raises(KeySourceError, match=message):
            build_runtime(replace(settings, **overrides))  # type: ignore[arg-type]


def test_another_pin_for_an_open_token_is_refused(hsm: SoftHsm) -> None:
    hsm.token()
    with pytest.raises(HsmError, match="another user PIN"):
        open_token(HsmConfig(hsm.module, hsm.token_label, "0000"))


def test_a_wrong_pin_stops_the_cli_with_what_to_fix(hsm: SoftHsm, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """In a process of its own, as a node starts: the HSM itself refuses the PIN."""
    label = _label()
    hsm.generate_key(label)
    home = _hsm_home(tmp_path / "home", hsm, label, monkeypatch)
    env = {**os.environ, **hsm.environment()}
    command = [sys.executable, "-m", "sts.cli.main", "--home", str(home), "keys", "list"]
    good = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert "source: pkcs11" in good.stdout and "sts-signing  active" in good.stdout
    bad = subprocess.run(command, env={**env, hsm.pin_env: "9999"}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "refused the user PIN" in bad.stderr and "pkcs11_pin_env" in bad.stderr
    assert "Traceback" not in bad.stderr
