"""A relying party's endpoint and encryption certificate, read from its published metadata.

Two forms (both ``md:EntityDescriptor``, SAML 2.0 Metadata):

* WS-Federation 1.2 §3.1: an ``md:RoleDescriptor`` of ``xsi:type`` ``fed:ApplicationServiceType`` (or
  ``fed:SecurityTokenServiceType``'s sibling types), its ``md:KeyDescriptor`` and endpoints;
* SAML 2.0 SP: ``md:SPSSODescriptor`` with ``md:KeyDescriptor`` and ``md:AssertionConsumerService``.

The endpoint (the AppliesTo the STS registers) is the ``entityID`` when it is a URL or URN, else the
application's endpoint / AssertionConsumerService Location. The certificate is the one of a KeyDescriptor with
``use="encryption"``, else one without ``use``; a ``use="signing"`` certificate is never taken to encrypt.

The claims the relying party asks for come along: WS-Federation's ``fed:ClaimTypesRequested/auth:ClaimType``
(``Optional``) and SAML's ``md:AttributeConsumingService/md:RequestedAttribute`` (``isRequired``).
"""

from __future__ import annotations

import base64

from dataclasses import dataclass

from lxml import etree

from sts import ns
from sts.tokens.crypto.keys import load_certificate
from sts.protocol.xmlsafe import parse

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
FED = "http://docs.oasis-open.org/wsfed/federation/200706"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_METADATA_BYTES = 1024 * 1024

_ROLE_ENDPOINTS = ("ApplicationServiceEndpoint", "PassiveRequestorEndpoint", "TargetScopes")


@dataclass(frozen=True)
class RequestedClaim:
    uri: str
    required: bool


@dataclass(frozen=True)
class RpMetadata:
    endpoint: str
    cert_pem: bytes
    claims: tuple[RequestedClaim, ...] = ()


def parse_rp_metadata(data: bytes) -> tuple[str, bytes]:
    """(endpoint, certificate PEM) from WS-Federation or SAML 2.0 SP metadata; ValueError saying what is missing."""
    metadata = read_rp_metadata(data)
    return metadata.endpoint, metadata.cert_pem


def read_rp_metadata(data: bytes) -> RpMetadata:
    """Endpoint, certificate and requested claims from WS-Federation or SAML 2.0 SP metadata; ValueError saying
    what is missing."""
    try:
        root = parse(data, max_bytes=MAX_METADATA_BYTES)
    except Exception as exc:  # noqa: BLE001 - any parse problem is "not metadata"
        raise ValueError(f"not readable XML metadata: {exc}") from None
    entity = root if root.tag == _md("EntityDescriptor") else root.find(f".//{_md('EntityDescriptor')}")
    if entity is None:
        raise ValueError("no md:EntityDescriptor in the metadata")
    roles = [r for r in entity.findall(_md("RoleDescriptor")) if _is_application(r)]
    roles += entity.findall(_md("SPSSODescriptor"))
    if not roles:
        raise ValueError("no fed:ApplicationServiceType RoleDescriptor or md:SPSSODescriptor in the metadata")
    cert_pem = None
    for role in roles:
        cert_pem = _encryption_certificate(role)
        if cert_pem is not None:
            break
    if cert_pem is None:
        raise ValueError("no encryption certificate (md:KeyDescriptor use=\"encryption\" or without use)")
    endpoint = _endpoint(entity, roles)
    if endpoint is None:
        raise ValueError("no endpoint: neither a URL/URN entityID nor an application endpoint or "
                         "AssertionConsumerService Location")
    return RpMetadata(endpoint, cert_pem, _requested_claims(roles))


def _requested_claims(roles: list[etree._Element]) -> tuple[RequestedClaim, ...]:
    """Each claim once, in document order; required wins when a claim is listed both ways."""
    found: dict[str, bool] = {}
    for role in roles:
        for claim_type in role.iterfind(f"{ns.qn(FED, 'ClaimTypesRequested')}/{ns.qn(ns.AUTH, 'ClaimType')}"):
            _note(found, claim_type.get("Uri"), claim_type.get("Optional", "false").strip() not in ("true", "1"))
        for attribute in role.iterfind(f"{_md('AttributeConsumingService')}/{_md('RequestedAttribute')}"):
            _note(found, attribute.get("Name"), attribute.get("isRequired", "false").strip() in ("true", "1"))
    return tuple(RequestedClaim(uri, required) for uri, required in found.items())


def _note(found: dict[str, bool], uri: str | None, required: bool) -> None:
    if uri and uri.strip():
        found[uri.strip()] = found.get(uri.strip(), False) or required


def fetch_rp_metadata(url: str, *, timeout: float = 10.0, max_bytes: int = MAX_METADATA_BYTES) -> bytes:
    """GET the metadata at ``url`` (http or https), at most ``max_bytes``; ValueError on any failure."""
    import httpx

    if not url.lower().startswith(("https://", "http://")):
        raise ValueError(f"{url!r}: metadata URLs must be http:// or https://")
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise ValueError(f"{url}: HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"{url}: metadata larger than {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ValueError(f"{url}: {exc}") from None
    return b"".join(chunks)


def load_rp_metadata(source: str) -> bytes:
    """The metadata document at ``source``: an http(s) URL, else a file path; ValueError on any failure."""
    if source.lower().startswith(("http://", "https://")):
        return fetch_rp_metadata(source)
    try:
        with open(source, "rb") as handle:
            data = handle.read(MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > MAX_METADATA_BYTES:
        raise ValueError(f"{source}: metadata larger than {MAX_METADATA_BYTES} bytes")
    return data


def _md(local: str) -> str:
    return ns.qn(MD, local)


def _is_application(role: etree._Element) -> bool:
    xsi_type = role.get(ns.qn(XSI, "type")) or ""
    prefix, _, local = xsi_type.rpartition(":")
    namespace = role.nsmap.get(prefix or None)
    return local == "ApplicationServiceType" and namespace in (FED, None)


def _encryption_certificate(role: etree._Element) -> bytes | None:
    descriptors = role.findall(_md("KeyDescriptor"))
    ordered = [d for d in descriptors if d.get("use") == "encryption"] + [d for d in descriptors if not d.get("use")]
    for descriptor in ordered:
        text = descriptor.findtext(f".//{ns.qn(ns.DS, 'X509Certificate')}")
        if not text or not text.strip():
            continue
        try:
            der = base64.b64decode("".join(text.split()), validate=True)
            certificate = load_certificate(der)
        except ValueError as exc:
            raise ValueError(f"unreadable certificate in md:KeyDescriptor: {exc}") from None
        from cryptography.hazmat.primitives.serialization import Encoding

        return certificate.public_bytes(Encoding.PEM)
    return None


def _endpoint(entity: etree._Element, roles: list[etree._Element]) -> str | None:
    from sts.store.relying_parties import check_endpoint

    candidates = [entity.get("entityID") or ""]
    for role in roles:
        for local in _ROLE_ENDPOINTS:
            for element in role.findall(ns.qn(FED, local)):
                candidates.extend(a.text or "" for a in element.iter(ns.qn(ns.WSA, "Address")))
        candidates.extend(acs.get("Location") or "" for acs in role.findall(_md("AssertionConsumerService")))
    for candidate in candidates:
        candidate = candidate.strip()
        try:
            check_endpoint(candidate)
        except ValueError:
            continue
        return candidate
    return None


__all__ = ["fetch_rp_metadata", "load_rp_metadata", "parse_rp_metadata"]
