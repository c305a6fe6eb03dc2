"""XML Encryption of one element for a relying party (XML-Enc 1.0 §3-§5, XML-Enc 1.1 §5.2.4 for AES-GCM).

The result is a self-contained ``xenc:EncryptedData`` (``xenc`` and ``ds`` declared on it) whose ds:KeyInfo
holds the ``xenc:EncryptedKey``: the form SAML 2.0 EncryptedAssertion and WS-Trust relying parties expect.

``encrypt_token`` gives an encrypted token as bytes, with the SHA-256 of its exclusive c14n (how the STS recognises
an encrypted token later), without building, serialising or canonicalising an element: only the two CipherValues
differ between the tokens made for one certificate, so the serialised and the canonical bytes around them are
worked out once, by lxml, and the values joined (or hashed) in between.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
from dataclasses import dataclass
from collections.abc import Callable, Collection
from typing import Final, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from sts import ns
from sts.offload import together
from sts.protocol import xmlsafe
from sts.uris import DataEncryption, DigestAlgorithm, KeyTransport
from sts.tokens.crypto.keys import PrivateKey

ELEMENT_TYPE: Final = "http://www.w3.org/2001/04/xmlenc#Element"
_NSMAP: Final = {"xenc": ns.XENC, "ds": ns.DS}
_GCM_IV = 12
_CBC_IV = 16
_BLOCK = 16
_E = TypeVar("_E", DataEncryption, KeyTransport)


@dataclass(frozen=True)
class _Cipher:
    key_size: int
    gcm: bool


_CIPHERS: Final = {
    DataEncryption.AES256_GCM: _Cipher(32, True),
    DataEncryption.AES128_GCM: _Cipher(16, True),
    DataEncryption.AES256_CBC: _Cipher(32, False),
    DataEncryption.AES128_CBC: _Cipher(16, False),
}

#: rsa-oaep-mgf1p: OAEP with SHA-1 and MGF1-SHA1 and no label (XML-Enc 1.0 §5.4.2); RSA 1.5 only for legacy.
_KEY_TRANSPORT_PADDING: Final = {
    KeyTransport.RSA_OAEP_MGF1P: padding.OAEP(
        mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None
    ),
    KeyTransport.RSA_1_5: padding.PKCS1v15(),
}


def _xenc(local: str) -> str:
    return ns.qn(ns.XENC, local)


def _ds(local: str) -> str:
    return ns.qn(ns.DS, local)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encrypt_element(
    element: etree._Element,
    cert: x509.Certificate,
    *,
    data: DataEncryption = DataEncryption.AES256_GCM,
    key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P,
) -> etree._Element:
    """Encrypt ``element`` (serialised with its in-scope namespaces) for the holder of ``cert``'s RSA key."""
    plaintext = etree.tostring(element, encoding="utf-8", xml_declaration=False)
    return encrypt_bytes(plaintext, cert, data=data, key_transport=key_transport)


def encrypt_bytes(
    plaintext: bytes,
    cert: x509.Certificate,
    *,
    data: DataEncryption = DataEncryption.AES256_GCM,
    key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P,
) -> etree._Element:
    """The xenc:EncryptedData (Type Element) of ``plaintext``, one element serialised with every namespace it
    uses declared in it, for the holder of ``cert``'s RSA key."""
    public_key, template = _recipient(cert, data, key_transport)
    key_value, data_value = _cipher_values(plaintext, public_key, data, key_transport)
    # lxml's __copy__ copies the whole tree in C (copy.deepcopy adds Python bookkeeping around the same call).
    encrypted_data = template.__copy__()
    # Positions fixed by _template: EncryptedData/KeyInfo/EncryptedKey/CipherData/CipherValue (the session key's)
    # and EncryptedData/CipherData/CipherValue (the data's).
    encrypted_data[1][0][2][0].text = key_value.decode("ascii")
    encrypted_data[2][0].text = data_value.decode("ascii")
    return encrypted_data


def encrypt_token(
    plaintext: bytes,
    cert: x509.Certificate,
    wrap: Callable[[etree._Element], etree._Element],
    *,
    data: DataEncryption = DataEncryption.AES256_GCM,
    key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P,
) -> tuple[bytes, str]:
    """The token ``wrap`` makes of ``encrypt_bytes(plaintext, cert)``, serialised (UTF-8, every namespace declared
    in it), and the hex SHA-256 of its exclusive c14n (what ``validators.token_hash`` computes). No element is
    built: both come from the template's bytes split around its two CipherValues, worked out once per certificate.
    ``wrap`` must build the same shape every time (the SAML 2.0 EncryptedAssertion, or the EncryptedData itself)."""
    key_value, data_value = together("encrypt", _cipher_values, plaintext, _recipient(cert, data, key_transport)[0],
                                     data, key_transport)
    canonical, serialised = _token_parts(cert, data, key_transport, wrap)
    # Base64 text has nothing c14n (or serialisation) escapes: the values are their own canonical form.
    digest = hashlib.sha256(canonical[0])
    for part in (key_value, canonical[1], data_value, canonical[2]):
        digest.update(part)
    before_key, between, after_data = serialised
    return b"".join((before_key, key_value, between, data_value, after_data)), digest.hexdigest()


def _cipher_values(plaintext: bytes, public_key: rsa.RSAPublicKey, data: DataEncryption,
                   key_transport: KeyTransport) -> tuple[bytes, bytes]:
    """The base64 CipherValues of a fresh session key (for ``public_key``) and of ``plaintext`` (under it)."""
    cipher = _CIPHERS[data]
    session_key = os.urandom(cipher.key_size)
    ciphertext = _encrypt_gcm(session_key, plaintext) if cipher.gcm else _encrypt_cbc(session_key, plaintext)
    wrapped_key = public_key.encrypt(session_key, _KEY_TRANSPORT_PADDING[key_transport])
    return base64.b64encode(wrapped_key), base64.b64encode(ciphertext)


_KEY_MARK: Final = "x-sts-key-cipher-value"
_DATA_MARK: Final = "x-sts-data-cipher-value"
_Parts = tuple[bytes, bytes, bytes]
#: (id of the certificate, algorithms, wrap) -> (the certificate, (the canonical parts, the serialised parts)).
_TOKEN_PARTS: dict[tuple[object, ...], tuple[x509.Certificate, tuple[_Parts, _Parts]]] = {}


def _token_parts(
    cert: x509.Certificate,
    data: DataEncryption,
    key_transport: KeyTransport,
    wrap: Callable[[etree._Element], etree._Element],
) -> tuple[_Parts, _Parts]:
    """The wrapped token's exclusive c14n and its serialisation, each split around its two CipherValues, from one
    marked copy of the template."""
    def split(rendered: bytes) -> _Parts:
        before_key, rest = rendered.split(_KEY_MARK.encode("ascii"))
        between, after_data = rest.split(_DATA_MARK.encode("ascii"))
        return before_key, between, after_data

    def both() -> tuple[_Parts, _Parts]:
        marked = copy.deepcopy(_recipient(cert, data, key_transport)[1])
        marked[1][0][2][0].text = _KEY_MARK
        marked[2][0].text = _DATA_MARK
        token = wrap(marked)
        # The c14n is the call validators.token_hash makes, so the bytes are the ones it would hash.
        return (split(etree.tostring(token, method="c14n", exclusive=True)),
                split(etree.tostring(token, encoding="utf-8", xml_declaration=False)))

    return _per_certificate(_TOKEN_PARTS, cert, (data, key_transport, wrap), both)


_V = TypeVar("_V")
_MAX_PER_CERTIFICATE = 256
#: (id of the certificate, algorithms) -> (the certificate, (its RSA key, the EncryptedData template)).
_RECIPIENTS: dict[tuple[object, ...], tuple[x509.Certificate, tuple[rsa.RSAPublicKey, etree._Element]]] = {}
#: (id of the certificate, key transport) -> (the certificate, a lone EncryptedKey template).
_KEY_TEMPLATES: dict[tuple[object, ...], tuple[x509.Certificate, etree._Element]] = {}


def _recipient(
    cert: x509.Certificate, data: DataEncryption, key_transport: KeyTransport
) -> tuple[rsa.RSAPublicKey, etree._Element]:
    """The recipient's public key and the EncryptedData template: built once per certificate and algorithms."""
    return _per_certificate(
        _RECIPIENTS, cert, (data, key_transport), lambda: (_recipient_key(cert), _template(cert, data, key_transport))
    )


def _per_certificate(
    cache: dict[tuple[object, ...], tuple[x509.Certificate, _V]],
    cert: x509.Certificate,
    key: tuple[object, ...],
    build: Callable[[], _V],
) -> _V:
    """``build()``, once per certificate object and ``key``: looked up by the certificate's id (hashing a
    certificate hashes its DER), the entry holding the certificate so that the id is not reused while cached.
    Relying parties are few: the cache is cleared when full."""
    entry = cache.get((id(cert), *key))
    if entry is None or entry[0] is not cert:
        if len(cache) >= _MAX_PER_CERTIFICATE:
            cache.clear()
        entry = cache[(id(cert), *key)] = (cert, build())
    return entry[1]


def _recipient_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the relying party's certificate must carry an RSA key to receive encrypted tokens")
    return public_key


def _template(cert: x509.Certificate, data: DataEncryption, key_transport: KeyTransport) -> etree._Element:
    """Everything but the two CipherValues (see ``_recipient``): copied per call."""
    encrypted_data = etree.Element(_xenc("EncryptedData"), nsmap=_NSMAP, Type=ELEMENT_TYPE)
    etree.SubElement(encrypted_data, _xenc("EncryptionMethod"), Algorithm=data.value)
    key_info = etree.SubElement(encrypted_data, _ds("KeyInfo"))
    key_info.append(_encrypted_key(cert, key_transport))
    _cipher_data(encrypted_data)
    return encrypted_data


def _encrypt_gcm(key: bytes, plaintext: bytes) -> bytes:
    # XML-Enc 1.1 §5.2.4: IV || ciphertext || 128-bit tag, which is what AESGCM.encrypt appends.
    iv = os.urandom(_GCM_IV)
    return iv + AESGCM(key).encrypt(iv, plaintext, None)


def _encrypt_cbc(key: bytes, plaintext: bytes) -> bytes:
    # XML-Enc 1.0 §5.2: the last byte says how many bytes were added. PKCS#7 bytes satisfy that and also
    # strict PKCS#7 decryptors (.NET's default), so both kinds of relying party accept them.
    pad = _BLOCK - len(plaintext) % _BLOCK
    iv = os.urandom(_CBC_IV)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + encryptor.update(plaintext + bytes([pad]) * pad) + encryptor.finalize()


def _encrypted_key(cert: x509.Certificate, key_transport: KeyTransport) -> etree._Element:
    encrypted_key = etree.Element(_xenc("EncryptedKey"), nsmap=_NSMAP)
    method = etree.SubElement(encrypted_key, _xenc("EncryptionMethod"), Algorithm=key_transport.value)
    if key_transport is KeyTransport.RSA_OAEP_MGF1P:
        # Stated explicitly although SHA-1 is the default: some decryptors (xml-encryption) read it.
        etree.SubElement(method, _ds("DigestMethod"), Algorithm=DigestAlgorithm.SHA1.value)
    key_info = etree.SubElement(encrypted_key, _ds("KeyInfo"))
    key_info.append(_x509_data(cert))
    _cipher_data(encrypted_key)
    return encrypted_key


def _x509_data(cert: x509.Certificate) -> etree._Element:
    """IssuerSerial and the certificate: decryptors select their key by either."""
    x509_data = etree.Element(_ds("X509Data"), nsmap=_NSMAP)
    issuer_serial = etree.SubElement(x509_data, _ds("X509IssuerSerial"))
    etree.SubElement(issuer_serial, _ds("X509IssuerName")).text = cert.issuer.rfc4514_string()
    etree.SubElement(issuer_serial, _ds("X509SerialNumber")).text = str(cert.serial_number)
    der = cert.public_bytes(serialization.Encoding.DER)
    etree.SubElement(x509_data, _ds("X509Certificate")).text = _b64(der)
    return x509_data


def _cipher_data(parent: etree._Element) -> None:
    cipher_data = etree.SubElement(parent, _xenc("CipherData"))
    etree.SubElement(cipher_data, _xenc("CipherValue"))


# --- key transport alone: holder-of-key proof keys and requester entropy (WS-Trust 1.3 §3.3, §4.4) ---------


def encrypt_key_for(
    cert: x509.Certificate, key_bytes: bytes, key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P
) -> etree._Element:
    """A self-contained ``xenc:EncryptedKey`` carrying ``key_bytes`` for the holder of ``cert``'s RSA key."""
    return encrypted_key_element(cert, encrypt_key_bytes(cert, key_bytes, key_transport), key_transport)


def encrypt_key_bytes(
    cert: x509.Certificate, key_bytes: bytes, key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P
) -> bytes:
    """The RSA key-transport cipher value of ``key_bytes`` for ``cert``'s key (the cryptography, no XML)."""
    return _recipient_key(cert).encrypt(key_bytes, _KEY_TRANSPORT_PADDING[key_transport])


def encrypted_key_element(
    cert: x509.Certificate, cipher_value: bytes, key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P
) -> etree._Element:
    """The ``xenc:EncryptedKey`` of a cipher value already made for ``cert`` (the XML, no cryptography)."""
    template = _per_certificate(_KEY_TEMPLATES, cert, (key_transport,), lambda: _encrypted_key(cert, key_transport))
    encrypted_key = template.__copy__()
    # Position fixed by _encrypted_key: EncryptedKey/CipherData/CipherValue.
    encrypted_key[2][0].text = _b64(cipher_value)
    return encrypted_key


def decrypt_key_bytes(cipher_value: bytes, private_key: PrivateKey, key_transport: KeyTransport) -> bytes:
    """The key inside an RSA key-transport cipher value; ValueError when it is not for ``private_key``."""
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is needed to decrypt")
    try:
        return private_key.decrypt(cipher_value, _KEY_TRANSPORT_PADDING[key_transport])
    except ValueError:
        raise ValueError("the key does not decrypt with this private key") from None


def key_transport_uri(encrypted_key: etree._Element) -> str:
    """The EncryptionMethod Algorithm of an ``xenc:EncryptedKey`` as written ('' when absent)."""
    method = encrypted_key.find(_xenc("EncryptionMethod"))
    return (method.get("Algorithm") or "").strip() if method is not None else ""


def decrypt_key(
    encrypted_key: etree._Element,
    private_key: PrivateKey,
    *,
    allowed: Collection[KeyTransport] = (KeyTransport.RSA_OAEP_MGF1P,),
) -> bytes:
    """The key inside an ``xenc:EncryptedKey``; ValueError when it is not for ``private_key`` or not allowed.

    RSA-OAEP here means SHA-1 and MGF1-SHA1 (rsa-oaep-mgf1p): a ds:DigestMethod naming anything else is refused.
    """
    if encrypted_key.tag != _xenc("EncryptedKey"):
        raise ValueError("not an xenc:EncryptedKey")
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is needed to decrypt")
    transport = _algorithm(encrypted_key, KeyTransport)
    if transport not in allowed:
        raise ValueError(f"key transport {transport.value!r} is not allowed here")
    digest = encrypted_key.find(f"{_xenc('EncryptionMethod')}/{_ds('DigestMethod')}")
    if digest is not None and digest.get("Algorithm") != DigestAlgorithm.SHA1.value:
        raise ValueError(f"unsupported RSA-OAEP digest {digest.get('Algorithm')!r}")
    try:
        return private_key.decrypt(_cipher_value(encrypted_key), _KEY_TRANSPORT_PADDING[transport])
    except ValueError:
        raise ValueError("the key does not decrypt with this private key") from None


# --- decryption: for the STS's own verifier and the tests -------------------------------------------------


def decrypt_element(
    encrypted_data: etree._Element,
    private_key: PrivateKey,
    *,
    allowed_data: Collection[DataEncryption] | None = None,
    allowed_transport: Collection[KeyTransport] | None = None,
) -> etree._Element:
    """The element inside ``encrypted_data`` (an xenc:EncryptedData with an embedded EncryptedKey).

    Raises ValueError when the algorithms are unknown or not in ``allowed_*`` (checked before any
    cryptography: no padding oracle for a refused algorithm) or the key or data do not decrypt; the plaintext
    goes through ``xmlsafe.parse`` like any other untrusted XML.
    """
    if encrypted_data.tag != _xenc("EncryptedData"):
        raise ValueError("not an xenc:EncryptedData")
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is needed to decrypt")
    data_algorithm = _algorithm(encrypted_data, DataEncryption)
    encrypted_key = encrypted_data.find(f"{_ds('KeyInfo')}/{_xenc('EncryptedKey')}")
    if encrypted_key is None:
        raise ValueError("no xenc:EncryptedKey in the EncryptedData's KeyInfo")
    transport = _algorithm(encrypted_key, KeyTransport)
    if allowed_data is not None and data_algorithm not in allowed_data:
        raise ValueError(f"data encryption {data_algorithm.value!r} is not allowed here")
    if allowed_transport is not None and transport not in allowed_transport:
        raise ValueError(f"key transport {transport.value!r} is not allowed here")
    cipher = _CIPHERS[data_algorithm]
    try:
        session_key = private_key.decrypt(_cipher_value(encrypted_key), _KEY_TRANSPORT_PADDING[transport])
    except ValueError:
        raise ValueError("the session key does not decrypt with this private key") from None
    if len(session_key) != cipher.key_size:
        raise ValueError("the session key has the wrong size for the data algorithm")
    ciphertext = _cipher_value(encrypted_data)
    plaintext = _decrypt_gcm(session_key, ciphertext) if cipher.gcm else _decrypt_cbc(session_key, ciphertext)
    return xmlsafe.parse(plaintext)


def _algorithm(parent: etree._Element, kind: type[_E]) -> _E:
    method = parent.find(_xenc("EncryptionMethod"))
    uri = method.get("Algorithm", "") if method is not None else ""
    try:
        return kind(uri)
    except ValueError:
        raise ValueError(f"unsupported encryption algorithm {uri!r}") from None


def _cipher_value(parent: etree._Element) -> bytes:
    value = parent.findtext(f"{_xenc('CipherData')}/{_xenc('CipherValue')}")
    if not value:
        raise ValueError("no xenc:CipherValue")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except ValueError:
        raise ValueError("xenc:CipherValue is not base64") from None


def _decrypt_gcm(key: bytes, data: bytes) -> bytes:
    if len(data) < _GCM_IV + 16:
        raise ValueError("AES-GCM data too short")
    try:
        return AESGCM(key).decrypt(data[:_GCM_IV], data[_GCM_IV:], None)
    except InvalidTag:
        raise ValueError("AES-GCM authentication failed") from None


def _decrypt_cbc(key: bytes, data: bytes) -> bytes:
    if len(data) < _CBC_IV + _BLOCK or len(data) % _BLOCK:
        raise ValueError("AES-CBC data has a wrong length")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(data[:_CBC_IV])).decryptor()
    padded = decryptor.update(data[_CBC_IV:]) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= _BLOCK:
        raise ValueError("AES-CBC padding is invalid")
    return padded[:-pad]
