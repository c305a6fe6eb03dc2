"""Proof keys: P_SHA1 known answers, every branch of ProofKeyFactory, UseKey checks, key transport helpers."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from sts import ns
from sts.tokens.crypto.encryption import decrypt_key, decrypt_key_bytes, encrypt_key_for
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, load_certificate, load_private_key
from sts.tokens.crypto.proof import ProofKeyFactory, p_sha1, proof_key_info, use_key_matches
from sts.errors import BadRequest, InsecureProofDelivery, RequestFailed
from sts.model import Entropy, ProofKey, RelyingParty, RequestSecurityToken, UseKey
from sts.uris import KeyTransport, KeyType, RequestType, TrustVersion
from sts.protocol.wstrust.parse import parse_encrypted_key
from paths import FIXTURES  # type: ignore[import-not-found]

VECTORS = json.loads(
    (FIXTURES / "psha1" / "vectors.json").read_text()
)["vectors"]
WST13 = TrustVersion.WST13
PSHA1_13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1"
PSHA1_2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust/CK/PSHA1"
XENC = "{http://www.w3.org/2001/04/xmlenc#}"


# --- P_SHA1 ----------------------------------------------------------------------------------------------


def _reference_p_sha1(secret: bytes, seed: bytes, length: int) -> bytes:
    """RFC 2246 §5 written out a second time, recursively and with the hmac object API."""

    def a(i: int) -> bytes:
        return seed if i == 0 else hmac.new(secret, a(i - 1), hashlib.sha1).digest()

    out = b""
    i = 1
    while len(out) < length:
        out += hmac.new(secret, a(i) + seed, hashlib.sha1).digest()
        i += 1
    return out[:length]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_p_sha1_known_answers(vector: dict[str, object]) -> None:
    secret, seed = bytes.fromhex(str(vector["secret"])), bytes.fromhex(str(vector["seed"]))
    length, expected = int(str(vector["length"])), bytes.fromhex(str(vector["output"]))
    assert len(expected) == length
    assert p_sha1(secret, seed, length) == expected
    assert _reference_p_sha1(secret, seed, length) == expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("vector", VECTORS[:2], ids=lambda v: v["name"])
def test_p_sha1_matches_openssl_tls1_prf(vector: dict[str, object]) -> None:
    done = subprocess.run(
        ["openssl", "kdf", "-keylen", str(vector["length"]), "-kdfopt", "digest:SHA1",
         "-kdfopt", f"hexsecret:{vector['secret']}", "-kdfopt", f"hexseed:{vector['seed']}", "TLS1-PRF"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"openssl kdf unavailable: {done.stderr.strip()}")
    assert done.stdout.strip().replace(":", "").lower() == vector["output"]


@pytest.mark.parametrize("length", [0, 1, 19, 20, 21, 32, 64])
def test_p_sha1_lengths_are_prefixes(length: int) -> None:
    full = p_sha1(b"secret", b"seed", 64)
    assert p_sha1(b"secret", b"seed", length) == full[:length] == _reference_p_sha1(b"secret", b"seed", length)


def test_p_sha1_secret_and_seed_are_not_interchangeable() -> None:
    assert p_sha1(b"client", b"server", 32) != p_sha1(b"server", b"client", 32)
    with pytest.raises(ValueError):
        p_sha1(b"a", b"b", -1)


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sts_encryption() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("sts encryption"))


@pytest.fixture(scope="module")
def factory(sts_encryption: SigningKey) -> ProofKeyFactory:
    return ProofKeyFactory(sts_encryption)


@pytest.fixture(scope="module")
def rp(rp_material) -> RelyingParty:
    return RelyingParty(endpoint="https://rp.test/", cert_pem=rp_material.cert_pem)


@pytest.fixture(scope="module")
def requester_pems() -> tuple[bytes, bytes]:
    return generate_key_and_cert("requester.test")


def _rst(key_type: KeyType | None = KeyType.SYMMETRIC, **fields: object) -> RequestSecurityToken:
    return RequestSecurityToken(
        version=fields.pop("version", WST13),  # type: ignore[arg-type]
        request_type=RequestType.ISSUE,
        applies_to="https://rp.test/",
        key_type=key_type,
        **fields,  # type: ignore[arg-type]
    )


def _make(factory: ProofKeyFactory, rst: RequestSecurityToken, rp: RelyingParty, **kw: object):
    kw.setdefault("requester_cert", None)
    kw.setdefault("secure_channel", True)
    return factory.make(rst, rp, **kw)  # type: ignore[arg-type]


# --- Bearer ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [None, KeyType.BEARER])
def test_bearer_has_no_proof(factory, rp, key_type) -> None:
    assert _make(factory, _rst(key_type), rp, secure_channel=False) == (None, None)


# --- SymmetricKey: sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [None, 128, 256, 512])
def test_symmetric_key_sizes_accepted(factory, rp, bits) -> None:
    proof, response = _make(factory, _rst(key_size=bits), rp)
    expected = bits or 256
    assert response.key_size == expected
    assert len(proof.symmetric_key) == expected // 8


@pytest.mark.parametrize("bits", [64, 520, 100, 0, 129])
def test_symmetric_key_sizes_refused(factory, rp, bits) -> None:
    with pytest.raises(BadRequest) as raised:
        _make(factory, _rst(key_size=bits), rp)
    assert raised.value.detail == "KeySize"


def test_factory_limits_are_checked() -> None:
    key = SigningKey.from_pem(*generate_key_and_cert("x"))
    with pytest.raises(ValueError):
        ProofKeyFactory(key, min_bits=256, default_bits=128)


# --- SymmetricKey: issuer-chosen key -------------------------------------------------------------------------


def test_sts_generated_key_in_clear_over_a_secure_channel(factory, rp) -> None:
    proof, response = _make(factory, _rst(), rp)
    assert response.binary_secret == proof.symmetric_key and len(proof.symmetric_key) == 32
    assert response.encrypted is None and response.server_entropy is None
    assert response.computed_key_algorithm is None
    assert _make(factory, _rst(), rp)[0].symmetric_key != proof.symmetric_key  # fresh per request


def test_insecure_channel_without_requester_certificate_is_refused(factory, rp) -> None:
    with pytest.raises(InsecureProofDelivery) as raised:
        _make(factory, _rst(), rp, secure_channel=False)
    assert isinstance(raised.value, RequestFailed)
    assert raised.value.public_reason == (
        "A proof key is returned only over TLS or encrypted for the requester's certificate"
    )
    with pytest.raises(InsecureProofDelivery):
        _make(factory, _rst(entropy=Entropy(binary_secret=b"c" * 32)), rp, secure_channel=False)


def test_encrypted_for_requester_allowed_off_a_secure_channel(factory, rp, requester_pems) -> None:
    cert = load_certificate(requester_pems[1])
    requester_key = SigningKey.from_pem(*requester_pems)
    proof, response = _make(factory, _rst(), rp, requester_cert=cert, secure_channel=False)
    # Encrypted in the decision, not when the RSTR is written: no secret stays in clear in the response.
    assert response.encrypted is not None and response.binary_secret is None
    assert response.encrypted.recipient_der == cert.public_bytes(serialization.Encoding.DER)
    assert decrypt_key_bytes(response.encrypted.cipher_value, requester_key.private_key,
                             KeyTransport.RSA_OAEP_MGF1P) == proof.symmetric_key


def test_ec_requester_certificate_cannot_receive_a_key(factory, rp, ec_material) -> None:
    with pytest.raises(InsecureProofDelivery):
        _make(factory, _rst(), rp, requester_cert=ec_material.signing_key.certificate, secure_channel=False)


def test_relying_party_without_certificate_is_refused(factory) -> None:
    with pytest.raises(BadRequest) as raised:
        _make(factory, _rst(), RelyingParty(endpoint="https://rp.test/"))
    assert raised.value.detail == "KeyType"


def test_symmetric_key_never_in_errors(factory, rp) -> None:
    with pytest.raises(BadRequest) as raised:
        _make(factory, _rst(entropy=Entropy(binary_secret=b"")), rp)
    assert raised.value.detail == "Entropy"


# --- SymmetricKey: computed key (CK/PSHA1) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "algorithm", "expected"),
    [
        (TrustVersion.WST13, None, PSHA1_13),
        (TrustVersion.WST13, PSHA1_13, PSHA1_13),
        (TrustVersion.WST13, f"{PSHA1_13}\n  ", PSHA1_13),
        (TrustVersion.WST2005, PSHA1_2005, PSHA1_2005),
        (TrustVersion.WST2005, PSHA1_13, PSHA1_2005),
    ],
)
def test_psha1_with_binary_secret_entropy(factory, rp, version, algorithm, expected) -> None:
    client = base64.b64decode("IwQnJtnT6rioPQRuoOq2vj+lME/xvDy+ZXkRR7dxRTk=")  # picketlink wst-computedkeyalgorithm
    rst = _rst(version=version, entropy=Entropy(binary_secret=client), computed_key_algorithm=algorithm)
    proof, response = _make(factory, rst, rp)
    assert response.computed_key_algorithm == expected
    assert response.binary_secret is None and len(response.server_entropy) == 32
    assert proof.symmetric_key == p_sha1(client, response.server_entropy, 32)
    assert proof.symmetric_key == _reference_p_sha1(client, response.server_entropy, 32)


def test_psha1_key_length_follows_key_size(factory, rp) -> None:
    proof, response = _make(factory, _rst(entropy=Entropy(binary_secret=b"\x01" * 8), key_size=512), rp)
    assert len(proof.symmetric_key) == len(response.server_entropy) == 64 and response.key_size == 512


def test_psha1_with_deterministic_randomness_hits_a_vector(sts_encryption, rp) -> None:
    vector = VECTORS[0]
    seed = bytes.fromhex(vector["seed"])
    factory = ProofKeyFactory(sts_encryption, random_bytes=lambda n: seed[:n])
    rst = _rst(entropy=Entropy(binary_secret=bytes.fromhex(vector["secret"])), key_size=128)
    proof, response = _make(factory, rst, rp)
    assert response.server_entropy == seed
    assert proof.symmetric_key.hex() == vector["output"]


def test_psha1_with_encrypted_key_entropy(factory, rp, sts_encryption) -> None:
    client = bytes(range(32))
    encrypted = encrypt_key_for(sts_encryption.certificate, client, KeyTransport.RSA_OAEP_MGF1P)
    rst = _rst(entropy=Entropy(encrypted_key=parse_encrypted_key(encrypted)), computed_key_algorithm=PSHA1_13)
    proof, response = _make(factory, rst, rp)
    assert proof.symmetric_key == p_sha1(client, response.server_entropy, 32)


def test_rsa15_entropy_is_refused_naming_the_algorithm(factory, rp, sts_encryption) -> None:
    encrypted = encrypt_key_for(sts_encryption.certificate, b"c" * 32, KeyTransport.RSA_1_5)
    with pytest.raises(BadRequest) as raised:
        _make(factory, _rst(entropy=Entropy(encrypted_key=parse_encrypted_key(encrypted))), rp)
    assert raised.value.detail == KeyTransport.RSA_1_5.value


def test_entropy_for_another_key_is_refused(factory, rp, requester_pems) -> None:
    encrypted = encrypt_key_for(load_certificate(requester_pems[1]), b"c" * 32)
    with pytest.raises(BadRequest) as raised:
        _make(factory, _rst(entropy=Entropy(encrypted_key=parse_encrypted_key(encrypted))), rp)
    assert raised.value.detail == "Entropy"


@pytest.mark.parametrize(
    "algorithm",
    ["http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/HASH", "urn:example:ck"],
)
def test_other_computed_key_algorithms_are_refused(factory, rp, algorithm) -> None:
    rst = _rst(entropy=Entropy(binary_secret=b"c" * 32), computed_key_algorithm=algorithm)
    with pytest.raises(BadRequest) as raised:
        _make(factory, rst, rp)
    assert raised.value.detail == algorithm


# --- PublicKey ---------------------------------------------------------------------------------------------


def test_public_key_from_certificate(factory, rp, requester_pems) -> None:
    cert = load_certificate(requester_pems[1])
    der = cert.public_bytes(serialization.Encoding.DER)
    proof, response = _make(factory, _rst(KeyType.PUBLIC_KEY, use_key=UseKey(certificate_der=der)), rp,
                            secure_channel=False)
    assert response is None and proof == ProofKey(certificate_der=der)
    assert use_key_matches(proof, cert)
    assert not use_key_matches(proof, load_certificate(rp.cert_pem))


def test_public_key_from_key_value(factory, requester_pems) -> None:
    cert = load_certificate(requester_pems[1])
    numbers = cert.public_key().public_numbers()  # type: ignore[union-attr]
    use_key = UseKey(rsa_modulus=numbers.n, rsa_exponent=numbers.e)
    # A relying party without a certificate is fine: nothing is encrypted for it.
    proof, _ = _make(factory, _rst(KeyType.PUBLIC_KEY, use_key=use_key), RelyingParty(endpoint="https://rp.test/"))
    assert (proof.rsa_modulus, proof.rsa_exponent) == (numbers.n, numbers.e)
    assert use_key_matches(proof, cert)


def test_public_key_ec_certificate(factory, rp, ec_material) -> None:
    der = ec_material.signing_key.cert_der
    proof, _ = _make(factory, _rst(KeyType.PUBLIC_KEY, use_key=UseKey(certificate_der=der)), rp)
    assert use_key_matches(proof, ec_material.signing_key.certificate)


def test_public_key_without_use_key(factory, rp) -> None:
    with pytest.raises(BadRequest) as raised:
        _make(factory, _rst(KeyType.PUBLIC_KEY), rp)
    assert raised.value.detail == "UseKey"


def _weak_use_keys() -> list[UseKey]:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    k1 = ec.generate_private_key(ec.SECP256K1())
    name = x509.Name([])
    now = datetime.now(timezone.utc)
    k1_cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k1.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(k1, hashes.SHA256())
    )
    return [
        UseKey(rsa_modulus=weak.n, rsa_exponent=weak.e),
        UseKey(rsa_modulus=2**2048 + 2, rsa_exponent=65537),  # even modulus: not an RSA key
        UseKey(certificate_der=k1_cert.public_bytes(serialization.Encoding.DER)),  # not a NIST curve
        UseKey(certificate_der=b"\x30\x03\x02\x01\x00"),  # not a certificate
        UseKey(),
    ]


@pytest.mark.parametrize("use_key", _weak_use_keys(), ids=["rsa1024", "even-modulus", "secp256k1", "junk", "empty"])
def test_weak_or_broken_use_keys_are_refused(factory, rp, use_key) -> None:
    with pytest.raises(BadRequest) as raised:
        _make(factory, _rst(KeyType.PUBLIC_KEY, use_key=use_key), rp)
    assert raised.value.detail == "UseKey"


def test_symmetric_proof_matches_no_certificate(rp) -> None:
    assert not use_key_matches(ProofKey(symmetric_key=b"k" * 32), load_certificate(rp.cert_pem))


# --- key transport helpers and KeyInfo ---------------------------------------------------------------------


def test_encrypt_key_for_and_decrypt_key(rp_material) -> None:
    cert = load_certificate(rp_material.cert_pem)
    encrypted = encrypt_key_for(cert, b"k" * 32)
    assert encrypted.tag == f"{XENC}EncryptedKey"
    assert encrypted.find(f"{XENC}EncryptionMethod").get("Algorithm") == KeyTransport.RSA_OAEP_MGF1P.value
    key = load_private_key(rp_material.key_pem)
    reparsed = etree.fromstring(etree.tostring(encrypted))
    assert decrypt_key(reparsed, key) == b"k" * 32
    with pytest.raises(ValueError, match="not allowed"):
        decrypt_key(encrypt_key_for(cert, b"k" * 32, KeyTransport.RSA_1_5), key)
    assert decrypt_key(encrypt_key_for(cert, b"k" * 32, KeyTransport.RSA_1_5), key,
                       allowed=set(KeyTransport)) == b"k" * 32


def test_decrypt_key_refuses_other_oaep_digests(rp_material) -> None:
    encrypted = encrypt_key_for(load_certificate(rp_material.cert_pem), b"k" * 32)
    encrypted.find(f"{XENC}EncryptionMethod")[0].set("Algorithm", "http://www.w3.org/2001/04/xmlenc#sha256")
    with pytest.raises(ValueError, match="digest"):
        decrypt_key(encrypted, load_private_key(rp_material.key_pem))


def test_proof_key_info_forms(rp_material, requester_pems) -> None:
    ds = f"{{{ns.DS}}}"
    cert = load_certificate(requester_pems[1])
    der = cert.public_bytes(serialization.Encoding.DER)
    x509_info = proof_key_info(ProofKey(certificate_der=der))
    assert base64.b64decode(x509_info.findtext(f"{ds}X509Data/{ds}X509Certificate")) == der
    numbers = cert.public_key().public_numbers()  # type: ignore[union-attr]
    value_info = proof_key_info(ProofKey(rsa_modulus=numbers.n, rsa_exponent=numbers.e))
    modulus = base64.b64decode(value_info.findtext(f"{ds}KeyValue/{ds}RSAKeyValue/{ds}Modulus"))
    assert int.from_bytes(modulus, "big") == numbers.n and modulus[0] != 0
    assert value_info.findtext(f"{ds}KeyValue/{ds}RSAKeyValue/{ds}Exponent") == "AQAB"
    with pytest.raises(ValueError):
        proof_key_info(ProofKey(symmetric_key=b"k" * 16))
    with pytest.raises(ValueError):
        proof_key_info(ProofKey())
    symmetric = proof_key_info(ProofKey(symmetric_key=b"k" * 16), load_certificate(rp_material.cert_pem))
    assert decrypt_key(symmetric[0], load_private_key(rp_material.key_pem)) == b"k" * 16


def test_proof_responses_do_not_print_keys_in_errors(factory, rp) -> None:
    """The factory's exceptions never carry the secret (their text is logged)."""
    secret = b"\xde\xad\xbe\xef" * 8
    rst = dataclasses.replace(_rst(entropy=Entropy(binary_secret=secret)), computed_key_algorithm="urn:x")
    with pytest.raises(BadRequest) as raised:
        _make(factory, rst, rp)
    assert secret.hex() not in str(raised.value) and "deadbeef" not in repr(raised.value.args)
