"""Signed WS-Federation metadata: ``GET {base}/FederationMetadata/2007-06/FederationMetadata.xml``.

Specs: SAML 2.0 Metadata (``md:EntityDescriptor``, ``md:RoleDescriptor``, ``md:KeyDescriptor``), WS-Federation 1.2
section 3.1 (``fed:SecurityTokenServiceType``: TokenTypesOffered, ClaimTypesOffered, SecurityTokenServiceEndpoint,
in that order), XML-DSig enveloped signature over the whole document (SAML metadata wants ``ds:Signature`` first).

No ``fed:PassiveRequestorEndpoint``: this STS has no passive (browser) endpoint, and announcing one would send
relying parties to a URL that does not answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from lxml import etree
from lxml.builder import ElementMaker

from sts import ns
from sts.uris import TokenType
from sts.web.metadata import sts_url

FEDERATION_METADATA_PATH = "/FederationMetadata/2007-06/FederationMetadata.xml"

#: ``sign(element, reference_id)`` signs ``element`` (enveloped, referenced by ``#reference_id``), appends the
#: ``ds:Signature`` to it and returns that element.
Signer = Callable[[etree._Element, str], etree._Element]

_NSMAP = {"md": ns.MD, "fed": ns.FED, "auth": ns.AUTH, "wsa": ns.WSA, "ds": ns.DS, "xsi": ns.XSI}

MD = ElementMaker(namespace=ns.MD)
FED = ElementMaker(namespace=ns.FED)
AUTH = ElementMaker(namespace=ns.AUTH)
WSA = ElementMaker(namespace=ns.WSA)
DS = ElementMaker(namespace=ns.DS)

DEFAULT_TOKEN_TYPES = (TokenType.SAML20, TokenType.SAML11)


def _key_descriptor(cert_b64: str, use: str = "signing") -> etree._Element:
    return MD.KeyDescriptor(DS.KeyInfo(DS.X509Data(DS.X509Certificate(cert_b64))), use=use)


def _token_types(token_types: Sequence[TokenType]) -> etree._Element:
    # Offer both spellings of each type: WIF-era relying parties look for the profile URI, msal/ADAL for the urn.
    uris = [uri for t in token_types for uri in (t.profile_uri, t.value)]
    return FED.TokenTypesOffered(*(FED.TokenType(Uri=uri) for uri in uris))


def _claim_types(claim_types: Sequence[str]) -> etree._Element:
    return FED.ClaimTypesOffered(*(AUTH.ClaimType(Uri=uri, Optional="true") for uri in claim_types))


def _sts_endpoint(base_url: str) -> etree._Element:
    return FED.SecurityTokenServiceEndpoint(WSA.EndpointReference(WSA.Address(sts_url(base_url))))


def _certs(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(dict.fromkeys(value))


def build_role_descriptor(
    base_url: str,
    signing_cert_b64: str | Sequence[str],
    token_types: Sequence[TokenType],
    claim_types: Sequence[str],
    encryption_cert_b64: str | None = None,
) -> etree._Element:
    """The ``md:RoleDescriptor xsi:type="fed:SecurityTokenServiceType"`` of this STS.

    ``signing_cert_b64`` may be several certificates (signing key rollover: the active one first, then the next
    and still-trusted old ones), each in a KeyDescriptor use="signing".
    With ``encryption_cert_b64``, a second KeyDescriptor (use="encryption") names the certificate requesters
    encrypt their entropy for (WS-Trust 1.3 §3.3).
    """
    role = MD.RoleDescriptor(protocolSupportEnumeration=ns.FED)
    role.set(ns.qn(ns.XSI, "type"), "fed:SecurityTokenServiceType")
    for cert_b64 in _certs(signing_cert_b64):
        role.append(_key_descriptor(cert_b64))
    if encryption_cert_b64:
        role.append(_key_descriptor(encryption_cert_b64, "encryption"))
    role.append(_token_types(token_types))
    if claim_types:
        role.append(_claim_types(claim_types))
    role.append(_sts_endpoint(base_url))
    return role


def build_entity_descriptor(
    base_url: str,
    entity_id: str,
    signing_cert_b64: str | Sequence[str],
    *,
    descriptor_id: str,
    token_types: Sequence[TokenType] = DEFAULT_TOKEN_TYPES,
    claim_types: Sequence[str] = (),
    encryption_cert_b64: str | None = None,
) -> etree._Element:
    """The unsigned ``md:EntityDescriptor``; every prefix is declared on it (``xsi:type`` names ``fed:``)."""
    root = etree.Element(ns.qn(ns.MD, "EntityDescriptor"), nsmap=_NSMAP, ID=descriptor_id, entityID=entity_id)
    root.append(build_role_descriptor(base_url, signing_cert_b64, token_types, claim_types, encryption_cert_b64))
    return root


def render_federation_metadata(
    base_url: str,
    entity_id: str,
    signing_cert_b64: str | Sequence[str],
    sign: Signer,
    *,
    claim_types: Sequence[str] = (),
    token_types: Sequence[TokenType] = DEFAULT_TOKEN_TYPES,
    descriptor_id: str | None = None,
    encryption_cert_b64: str | None = None,
) -> bytes:
    """The signed federation metadata document.

    ``sign`` appends an enveloped signature referencing ``#ID``; it is then moved to be the first child, where
    the SAML metadata schema wants it. Moving is safe: the enveloped-signature transform removes the
    ``ds:Signature`` wherever it sits, so the digest does not depend on its position.
    """
    root_id = descriptor_id or f"_{uuid.uuid4()}"
    root = build_entity_descriptor(
        base_url,
        entity_id,
        signing_cert_b64,
        descriptor_id=root_id,
        token_types=token_types,
        claim_types=claim_types,
        encryption_cert_b64=encryption_cert_b64,
    )
    signature = sign(root, root_id)
    root.insert(0, signature)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
