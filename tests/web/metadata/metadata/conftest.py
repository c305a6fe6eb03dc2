"""Fixtures for the metadata tests: a loopback HTTP server for the WSDL/XSDs/MEX, and a signing certificate."""

from __future__ import annotations

import base64
import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from sts.tokens.crypto.keys import generate_key_and_cert, load_certificate
from sts.web.metadata import STS_PATH, load_xsd_for_serving
from sts.web.metadata.mex import render_mex_wsdl
from sts.web.metadata.wsdl import render_wsdl


class _MetadataHandler(http.server.BaseHTTPRequestHandler):
    """Serves what the STS's Starlette app will serve, and nothing else."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        base = f"http://127.0.0.1:{self.server.server_port}"
        body: bytes | None = None
        if url.path == STS_PATH and "wsdl" in query:
            body = render_wsdl(base)
        elif url.path == STS_PATH and "xsd" in query:
            body = load_xsd_for_serving(query["xsd"][0], base)
        elif url.path in (STS_PATH + "/mex", "/adfs/services/trust/mex"):
            body = etree.tostring(render_mex_wsdl(base), xml_declaration=True, encoding="UTF-8")
        self.server.requested.append(self.path)  # type: ignore[attr-defined]
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass


@pytest.fixture(scope="module")
def metadata_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MetadataHandler)
    server.requested = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def metadata_base(metadata_server: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{metadata_server.server_port}"


@dataclass(frozen=True)
class SigningMaterial:
    key_pem: bytes
    cert_pem: bytes
    cert_b64: str


@pytest.fixture(scope="session")
def signing_material() -> SigningMaterial:
    key_pem, cert_pem = generate_key_and_cert("sts metadata test")
    cert_der = load_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return SigningMaterial(key_pem, cert_pem, base64.b64encode(cert_der).decode())
