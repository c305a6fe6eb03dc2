"""A few verifier attacks through ``sts token verify`` as a subprocess: what an operator or a script runs.

Exit 1 and ``token rejected: ... (code: C)`` on stderr for each attack; exit 0 for the genuine token after them.
Each run is a fresh process (about 2 s here), so the cases are few; the in-process suite has the rest.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from assertion_content import make_content
from sts import ns
from sts.tokens.crypto.encryption import encrypt_element
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, random_id
from sts.tokens.crypto.signing import XmlSigner
from sts.tokens.saml import saml20
from sts.uris import KeyTransport
from sts.xmltime import utcnow

AUDIENCE = "https://rp.example/"
ISSUER = "https://sts.example/"
DS = f"{{{ns.DS}}}"
SAML2 = f"{{{ns.SAML2}}}"


Keys = tuple[SigningKey, SigningKey, Path, Path]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """The STS key, the RP key, and their files (STS certificate, RP private key)."""
    directory = tmp_path_factory.mktemp("verify-cli")
    sts_pem, sts_cert = generate_key_and_cert("sts")
    rp_pem, rp_cert = generate_key_and_cert("rp")
    (directory / "sts.crt").write_bytes(sts_cert)
    (directory / "rp.key").write_bytes(rp_pem)
    return SigningKey.from_pem(sts_pem, sts_cert), SigningKey.from_pem(rp_pem, rp_cert), directory / "sts.crt", \
        directory / "rp.key"


def _signed(key: SigningKey, subject: str = "alice") -> etree._Element:
    content = make_content(now=utcnow(), assertion_id=random_id(), issuer=ISSUER, subject_name=subject,
                           audience=AUDIENCE)
    assertion = saml20.build_assertion(content)
    XmlSigner(key).sign(assertion, content.assertion_id, after=saml20.issuer_of(assertion))
    return assertion


def _wrapped(key: SigningKey, rp: SigningKey) -> bytes:
    good = _signed(key)
    evil = copy.deepcopy(good)
    evil.remove(evil.find(f"{DS}Signature"))
    evil.find(f".//{SAML2}NameID").text = "mallory"
    etree.SubElement(evil, f"{SAML2}Advice").append(good)
    data: bytes = etree.tostring(evil)
    return data


def _pi_in_nameid(key: SigningKey, rp: SigningKey) -> bytes:
    data: bytes = etree.tostring(_signed(key)).replace(b">alice<", b">a<?x?>lice<", 1)
    return data


def _rsa_1_5(key: SigningKey, rp: SigningKey) -> bytes:
    data: bytes = etree.tostring(encrypt_element(_signed(key), rp.certificate, key_transport=KeyTransport.RSA_1_5))
    return data


ATTACKS: dict[str, tuple[Callable[[SigningKey, SigningKey], bytes], str]] = {
    "wrapped-in-advice": (_wrapped, "signature"),
    "pi-in-nameid": (_pi_in_nameid, "malformed"),
    "rsa-1_5-key-transport": (_rsa_1_5, "algorithm"),
}


def _verify(path: Path, sts_cert: Path, rp_key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sts", "token", "verify", "--sts-cert", str(sts_cert), "--rp-key", str(rp_key),
         "--audience", AUDIENCE, "--issuer", ISSUER, str(path)],
        capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_sts_token_verify_refuses(keys: Keys, tmp_path: Path, name: str) -> None:
    sts_key, rp_key, sts_cert, rp_key_file = keys
    build, code = ATTACKS[name]
    attack = tmp_path / f"{name}.xml"
    attack.write_bytes(build(sts_key, rp_key))
    result = _verify(attack, sts_cert, rp_key_file)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"(code: {code})" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_sts_token_verify_accepts_the_genuine_token(keys: Keys, tmp_path: Path) -> None:
    """After the attacks, with the same files: a genuine encrypted token verifies (each run is a new process,
    so once is enough)."""
    sts_key, rp_key, sts_cert, rp_key_file = keys
    genuine = tmp_path / "genuine.xml"
    genuine.write_bytes(etree.tostring(encrypt_element(_signed(sts_key), rp_key.certificate)))
    after = _verify(genuine, sts_cert, rp_key_file)
    assert after.returncode == 0 and "valid SAML 2.0 token" in after.stdout, after.stderr
