"""Keys (session-scoped: RSA generation is slow) and the independent verifiers the crypto tests use."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import xmlsec
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm as SxDigest
from signxml.algorithms import SignatureMethod as SxMethod

from assertion_content import make_content
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from sts.model import AssertionContent

ENCRYPTED_DATA = "{http://www.w3.org/2001/04/xmlenc#}EncryptedData"


@dataclass(frozen=True)
class KeyMaterial:
    key_pem: bytes
    cert_pem: bytes
    signing_key: SigningKey

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
        key_path.write_bytes(self.key_pem)
        cert_path.write_bytes(self.cert_pem)
        return key_path, cert_path


def _material(common_name: str, *, ec: bool = False) -> KeyMaterial:
    key_pem, cert_pem = generate_key_and_cert(common_name, ec=ec)
    return KeyMaterial(key_pem, cert_pem, SigningKey.from_pem(key_pem, cert_pem))


@pytest.fixture(scope="session")
def rsa_material() -> KeyMaterial:
    return _material("sts.test")


@pytest.fixture(scope="session")
def ec_material() -> KeyMaterial:
    return _material("sts-ec.test", ec=True)


@pytest.fixture(scope="session")
def rp_material() -> KeyMaterial:
    """The relying party's encryption key pair."""
    return _material("rp.test")


@pytest.fixture
def content() -> AssertionContent:
    return make_content()


@pytest.fixture
def content_factory() -> Callable[..., AssertionContent]:
    return make_content


# --- independent verifiers ---------------------------------------------------------------------------------

#: signxml refuses SHA-1 unless told; the legacy tests need it (algorithm choice is asserted separately).
LEGACY_CONFIG = SignatureConfiguration(
    signature_methods=frozenset(SxMethod), digest_algorithms=frozenset(SxDigest)
)


class Peers:
    """Verifiers and decryptors nobody here wrote: signxml, the xmlsec1 CLI and python-xmlsec."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def signxml(self, data: bytes, cert_pem: bytes, *, id_attribute: str = "ID") -> etree._Element:
        """The signed element as signxml returns it (only what the signature covers)."""
        result = XMLVerifier().verify(
            data, x509_cert=cert_pem.decode(), id_attribute=id_attribute, expect_config=LEGACY_CONFIG
        )
        return result.signed_xml

    def xmlsec1_verify(self, data: bytes, cert_pem: bytes, id_attr: tuple[str, str]) -> None:
        cert_path = self._write("signer.crt", cert_pem)
        document = self._write("signed.xml", data)
        attr, node = id_attr
        done = _xmlsec1(
            "--verify", "--pubkey-cert-pem", str(cert_path), f"--id-attr:{attr}", node, str(document)
        )
        assert done.returncode == 0, done.stderr.decode()

    def python_xmlsec_verify(self, data: bytes, cert_pem: bytes, id_name: str) -> None:
        root = etree.fromstring(data)
        xmlsec.tree.add_ids(root, [id_name])
        signature = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem)
        context.verify(signature)  # raises xmlsec.Error when the signature is bad

    def xmlsec1_decrypt(self, data: bytes, key_pem: bytes) -> etree._Element:
        key_path = self._write("rp.key", key_pem)
        document = self._write("encrypted.xml", data)
        done = _xmlsec1("--decrypt", "--privkey-pem", str(key_path), str(document))
        assert done.returncode == 0, done.stderr.decode()
        return etree.fromstring(done.stdout)

    def python_xmlsec_decrypt(self, data: bytes, key_pem: bytes) -> etree._Element:
        root = etree.fromstring(data)
        encrypted = root if root.tag == ENCRYPTED_DATA else root.find(f".//{ENCRYPTED_DATA}")
        manager = xmlsec.KeysManager()
        manager.add_key(xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem))
        result = xmlsec.EncryptionContext(manager).decrypt(encrypted)
        assert isinstance(result, etree._Element)
        return result

    def _write(self, name: str, data: bytes) -> Path:
        path = self.tmp_path / name
        path.write_bytes(data)
        return path


def _xmlsec1(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["xmlsec1", *args], capture_output=True, timeout=60, check=False)


@pytest.fixture
def peers(tmp_path: Path) -> Peers:
    return Peers(tmp_path)
