"""TLS client certificates for uvicorn: the ASGI TLS extension and the server's TLS options.

Spec: the ASGI "TLS Extension" (asgiref docs, ``scope["extensions"]["tls"]``, HTTP spec 2.x). uvicorn 0.54 does
not fill it in, so an app cannot see the certificate a client presented in the handshake; AD FS's
``certificatetransport`` endpoints authenticate by exactly that certificate. :class:`TlsH11Protocol` is uvicorn's
own h11 protocol with one addition: when a TLS connection is made, every request on it carries the extension.
:class:`TlsHttpToolsProtocol` does the same for uvicorn's httptools protocol (a C parser, ≈ 10× cheaper per
request than h11); ``http_protocol()`` picks it when httptools is installed. Select one with
``uvicorn.Config(http=...)``; each is a plain subclass that also never loses an answer to a TCP reset at shutdown
or when closing with input unread (``sts.web.draining``). Over plain HTTP
the scope is left as uvicorn builds it.

Only the leaf certificate is reported: Python before 3.13 has no API for the peer's chain. The handshake
already verified it against the CA bundle (``--ssl-client-ca``), so ``client_cert_error`` is always None;
``cipher_suite`` is None because Python's ``ssl`` exposes the suite's name, not its 16-bit code.

Behind a TLS-terminating proxy the certificate arrives in a request header instead
(:func:`certificate_from_header`: nginx's ``$ssl_client_escaped_cert`` or Envoy's ``x-forwarded-client-cert``);
``sts.web.proxies`` decides whether that header is believed. Either way the DER lands in
``RequestContext.tls_client_cert_der`` and the certificatetransport check
(``X509Authenticator.authenticate_transport``) is the same.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import re
import ssl
from urllib.parse import unquote_to_bytes
from pathlib import Path
from typing import Any

from cryptography import x509
from uvicorn.protocols.http.h11_impl import H11Protocol

from sts.web.draining import Draining

__all__ = ["TlsH11Protocol", "TlsHttpToolsProtocol", "certificate_from_header", "client_cert_der", "http_protocol",
           "ssl_options", "tls_extension"]

#: ``SSLObject.version()`` names -> the TLS protocol version numbers the extension carries.
_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

_Asgi = Any  # uvicorn's ASGI3Application (a private type): (scope, receive, send) -> awaitable


def _carry_client_certificate(protocol: Any, transport: asyncio.Transport) -> None:
    """After uvicorn's own ``connection_made``: on a TLS connection, every request gets the TLS extension."""
    ssl_object = transport.get_extra_info("ssl_object")
    if isinstance(ssl_object, ssl.SSLObject):
        protocol.app = _with_extension(protocol.app, tls_extension(ssl_object, protocol.config.ssl_certfile))


class TlsH11Protocol(Draining, H11Protocol):
    """uvicorn's h11 protocol, adding ``scope["extensions"]["tls"]`` on TLS connections (one instance a connection)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _carry_client_certificate(self, transport)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 it is
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


if HttpToolsProtocol is not None:

    class TlsHttpToolsProtocol(Draining, HttpToolsProtocol):
        """uvicorn's httptools protocol, adding ``scope["extensions"]["tls"]`` on TLS connections."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            _carry_client_certificate(self, transport)
else:
    TlsHttpToolsProtocol = None  # type: ignore[misc]


def http_protocol() -> type:
    """The HTTP protocol ``sts serve`` runs: httptools when installed, else h11; both carry client certificates."""
    return TlsHttpToolsProtocol if TlsHttpToolsProtocol is not None else TlsH11Protocol


def tls_extension(ssl_object: ssl.SSLObject, server_certfile: object = None) -> dict[str, object]:
    """The ASGI TLS extension's fields for one established connection."""
    der = ssl_object.getpeercert(binary_form=True)
    name = x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
    return {
        "server_cert": _first_pem(str(server_certfile)) if server_certfile else None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": name,
        "client_cert_error": None,  # an unverifiable certificate fails the handshake before any request
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def client_cert_der(scope: dict[str, Any] | Any) -> bytes | None:
    """The DER of the client certificate in an ASGI scope's TLS extension, or None (plain HTTP, none sent)."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return ssl.PEM_cert_to_DER_cert(chain[0]) if chain else None


#: A client certificate header longer than this is refused unread (a certificate is 1-3 KB; a chain is not taken).
MAX_CERT_HEADER = 16 * 1024
_PEM = re.compile(r"\s*-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----\s*")
#: One XFCC key=value pair: a bare value, or a double-quoted one with backslash escapes.
_XFCC_PAIR = re.compile(r'([A-Za-z]+)=(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^,;="]*))')


def certificate_from_header(value: str, header_format: str) -> bytes:
    """The DER of the one client certificate in a proxy's header; ValueError (saying why) for anything else.

    ``escaped-pem``: nginx's ``$ssl_client_escaped_cert``, the URL-escaped PEM of the leaf certificate.
    ``xfcc``: Envoy's ``x-forwarded-client-cert``: comma-separated elements of ``Key=value`` pairs (values with
    ``,;=`` quoted), one element per proxy that forwarded a client certificate, each appending its own: the
    last element is the one the proxy next to us added. Its ``Cert`` is the URL-encoded PEM; a ``Hash`` (hex
    SHA-256 of the DER), when present, must match it.
    """
    if len(value) > MAX_CERT_HEADER:
        raise ValueError(f"longer than {MAX_CERT_HEADER} characters")
    if header_format == "escaped-pem":
        return _pem_certificate(_url_decoded(value.strip()))
    if header_format == "xfcc":
        pairs = _xfcc_last_element(value)
        certs = [v for k, v in pairs if k.lower() == "cert"]
        if len(certs) != 1:
            raise ValueError("the last XFCC element must carry exactly one Cert (Envoy: set_current_client_cert_"
                             "details with cert: true)")
        der = _pem_certificate(_url_decoded(certs[0]))
        hashes = [v for k, v in pairs if k.lower() == "hash"]
        if hashes and hashes[-1].lower() != hashlib.sha256(der).hexdigest():
            raise ValueError("the XFCC Hash does not match its Cert")
        return der
    raise ValueError(f"unknown client_cert_header_format {header_format!r}")


def _url_decoded(text: str) -> str:
    try:
        return unquote_to_bytes(text).decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("not a URL-escaped PEM certificate") from None


def _pem_certificate(text: str) -> bytes:
    """Exactly one PEM certificate, nothing around it but white space; its DER, checked to be a certificate."""
    match = _PEM.fullmatch(text)
    if match is None:
        raise ValueError("not exactly one PEM certificate")
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise ValueError("the PEM does not hold a readable X.509 certificate") from None
    return der


def _xfcc_last_element(value: str) -> list[tuple[str, str]]:
    """The key/value pairs of the header's last element (quoted values unescaped); strict: any stray text fails."""
    elements: list[list[tuple[str, str]]] = [[]]
    position, end = 0, len(value)
    while position < end:
        match = _XFCC_PAIR.match(value, position)
        if match is None:
            raise ValueError(f"malformed XFCC at character {position}")
        quoted, bare = match.group(2), match.group(3)
        text = (re.sub(r"\\(.)", r"\1", quoted) if "\\" in quoted else quoted) if quoted is not None else bare
        elements[-1].append((match.group(1), text))
        position = match.end()
        if position < end:
            separator = value[position]
            if separator == ",":
                elements.append([])
            elif separator != ";":
                raise ValueError(f"malformed XFCC at character {position}")
            position += 1
            while position < end and value[position] == " ":
                position += 1
            if position == end:
                raise ValueError("the XFCC header ends in a separator")
    if not elements[-1]:
        raise ValueError("empty XFCC element")
    return elements[-1]


def ssl_options(certfile: str | None, keyfile: str | None, client_ca: str | None) -> dict[str, object]:
    """uvicorn's TLS keyword arguments; with ``client_ca`` the server asks for (but does not require) a client certificate.

    Optional, not required: the same listener serves usernamemixed and metadata to clients without one; the
    certificatetransport endpoints refuse requests that came without a certificate.
    """
    if client_ca and not certfile:
        raise ValueError("client certificates need TLS: give a server certificate too")
    options: dict[str, object] = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
    if client_ca:
        options.update(ssl_cert_reqs=ssl.CERT_OPTIONAL, ssl_ca_certs=client_ca)
    return options


def _with_extension(app: _Asgi, tls: dict[str, object]) -> _Asgi:
    async def app_with_tls(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
        await app(scope, receive, send)

    return app_with_tls


@functools.cache
def _first_pem(path: str) -> str | None:
    """The first certificate of the server's PEM file, read once per process."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    return text[start:stop + len(end)] + "\n" if start >= 0 and stop >= 0 else None
