"""The proof-token parts of an RSTR (WS-Trust 1.3 §4.4.2-§4.4.4, 2005/02 §5.4): what the requester learns.

``render_proof`` returns, in the request's WS-Trust namespace, the elements the RSTR carries after
RequestedUnattachedReference:

- an issuer-chosen key: ``RequestedProofToken/BinarySecret`` (Type .../SymmetricKey), or, for a requester
  certificate, ``RequestedProofToken/xenc:EncryptedKey`` (RSA-OAEP-MGF1P, encrypted by the service already:
  nothing here is cryptography);
- a computed key: ``RequestedProofToken/ComputedKey`` (.../CK/PSHA1), ``Entropy/BinarySecret`` (Type .../Nonce:
  the issuer's entropy, or an ``xenc:EncryptedKey`` of it for a requester certificate) and ``KeySize``.
"""

from __future__ import annotations

import base64

from cryptography import x509
from lxml import etree

from sts import ns
from sts.tokens.crypto.encryption import encrypted_key_element
from sts.model import EncryptedSecret, ProofResponse
from sts.uris import BinarySecretType, KeyTransport, TrustVersion

#: The prefixes ``wstrust.render`` writes, so that the parts merge into its RSTR without new declarations.
_WST_PREFIX = {TrustVersion.WST13: "trust", TrustVersion.WST2005: "t"}


def render_proof(version: TrustVersion, proof: ProofResponse) -> list[etree._Element]:
    """The RequestedProofToken (and, for a computed key, Entropy and KeySize) of one RSTR."""
    wst = version.ns
    nsmap = {_WST_PREFIX[version]: wst}
    requested = etree.Element(ns.qn(wst, "RequestedProofToken"), nsmap=nsmap)
    if proof.computed_key_algorithm is not None:
        etree.SubElement(requested, ns.qn(wst, "ComputedKey")).text = proof.computed_key_algorithm
        entropy = etree.Element(ns.qn(wst, "Entropy"), nsmap=nsmap)
        entropy.append(_secret(version, proof.server_entropy, BinarySecretType.NONCE, proof.encrypted))
        key_size = etree.Element(ns.qn(wst, "KeySize"), nsmap=nsmap)
        key_size.text = str(proof.key_size)
        return [requested, entropy, key_size]
    requested.append(_secret(version, proof.binary_secret, BinarySecretType.SYMMETRIC_KEY, proof.encrypted))
    return [requested]


def _secret(
    version: TrustVersion, secret: bytes | None, kind: BinarySecretType, encrypted: EncryptedSecret | None
) -> etree._Element:
    """A wst:BinarySecret of ``kind``, or the xenc:EncryptedKey the service made of it for the requester."""
    if encrypted is not None and encrypted.recipient_der is not None:
        recipient = x509.load_der_x509_certificate(encrypted.recipient_der)
        return encrypted_key_element(recipient, encrypted.cipher_value, KeyTransport(encrypted.algorithm))
    if secret is None:
        raise ValueError("a ProofResponse without its secret, in clear or encrypted")
    element = etree.Element(ns.qn(version.ns, "BinarySecret"), Type=kind.uri(version))
    element.text = base64.b64encode(secret).decode("ascii")
    return element
