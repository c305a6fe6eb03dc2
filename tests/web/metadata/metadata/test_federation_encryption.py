"""Federation metadata publishes the STS encryption certificate (KeyDescriptor use="encryption")."""

from __future__ import annotations

import base64

from lxml import etree

from sts import ns
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from sts.tokens.crypto.signing import XmlSigner
from interop.xsd import validator
from sts.web.metadata.federation import render_federation_metadata

MD = f"{{{ns.MD}}}"
DS = f"{{{ns.DS}}}"


def _render(encryption_cert_b64: str | None) -> tuple[etree._Element, SigningKey]:
    signing = SigningKey.from_pem(*generate_key_and_cert("sts signing"))
    signer = XmlSigner(signing)
    document = render_federation_metadata(
        "https://sts.test",
        "https://sts.test/services/sts",
        signing.cert_b64,
        lambda element, reference_id: signer.sign(element, reference_id),
        encryption_cert_b64=encryption_cert_b64,
    )
    return etree.fromstring(document), signing


def test_encryption_key_descriptor_follows_the_signing_one() -> None:
    encryption = SigningKey.from_pem(*generate_key_and_cert("sts encryption"))
    root, signing = _render(encryption.cert_b64)
    descriptors = root.findall(f"{MD}RoleDescriptor/{MD}KeyDescriptor")
    assert [d.get("use") for d in descriptors] == ["signing", "encryption"]
    certs = [d.findtext(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate") for d in descriptors]
    assert certs == [signing.cert_b64, encryption.cert_b64]
    assert base64.b64decode(certs[1]) == encryption.cert_der
    for descriptor in descriptors:  # (the WS-Federation XSD is not vendored: the md parts are validated)
        errors = list(validator().iter_errors(descriptor))
        assert not errors, errors[0]


def test_without_an_encryption_certificate_only_signing_is_published() -> None:
    root, _ = _render(None)
    assert [d.get("use") for d in root.iter(f"{MD}KeyDescriptor")] == ["signing"]
