"""Relying-party metadata: WS-Federation and SAML 2.0 SP forms, from a file and over HTTP (`sts rp add --metadata`)."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

from sts.cli.main import main
from sts.config import load_settings
from sts.tokens.crypto.keys import generate_key_and_cert, load_certificate
from sts.home import init_home
from sts.admin.rp_metadata import fetch_rp_metadata, parse_rp_metadata
from sts.runtime import open_stores


def _b64(cert_pem: bytes) -> str:
    return base64.b64encode(load_certificate(cert_pem).public_bytes(Encoding.DER)).decode()


def _key(cert_pem: bytes, use: str | None) -> str:
    attr = f' use="{use}"' if use else ""
    return (f'<md:KeyDescriptor{attr}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{_b64(cert_pem)}'
            "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>")


def wsfed(entity_id: str, keys: str) -> bytes:
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
            f'xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xmlns:wsa="http://www.w3.org/2005/08/addressing" entityID="{entity_id}">'
            f'<md:RoleDescriptor xsi:type="fed:ApplicationServiceType" '
            f'protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706">{keys}'
            "<fed:ApplicationServiceEndpoint><wsa:EndpointReference><wsa:Address>https://app.example/svc"
            "</wsa:Address></wsa:EndpointReference></fed:ApplicationServiceEndpoint>"
            "</md:RoleDescriptor></md:EntityDescriptor>").encode()


def saml_sp(entity_id: str, keys: str) -> bytes:
    return (f'<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">'
            f'<SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}'
            '<AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            'Location="https://sp.example/acs"/></SPSSODescriptor></EntityDescriptor>').encode()


@pytest.fixture(scope="module")
def certs() -> tuple[bytes, bytes]:
    return generate_key_and_cert("rp signing")[1], generate_key_and_cert("rp encryption")[1]


def test_wsfed_takes_the_encryption_certificate(certs: tuple[bytes, bytes]) -> None:
    signing, encryption = certs
    endpoint, pem = parse_rp_metadata(wsfed("https://app.example/", _key(signing, "signing") +
                                            _key(encryption, "encryption")))
    assert endpoint == "https://app.example/"
    assert load_certificate(pem) == load_certificate(encryption)


def test_saml_sp_without_use_and_acs_fallback(certs: tuple[bytes, bytes]) -> None:
    endpoint, pem = parse_rp_metadata(saml_sp("not a uri", _key(certs[1], None)))
    assert endpoint == "https://sp.example/acs"
    assert load_certificate(pem) == load_certificate(certs[1])


@pytest.mark.parametrize(("data", "message"), [
    (b"<nope", "not readable"),
    (b'<x xmlns="urn:y"/>', "EntityDescriptor"),
    (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="urn:a:b"/>', "SPSSODescriptor"),
])
def test_errors_say_what_is_missing(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rp_metadata(data)


def test_signing_only_certificate_is_not_used_to_encrypt(certs: tuple[bytes, bytes]) -> None:
    with pytest.raises(ValueError, match="encryption certificate"):
        parse_rp_metadata(wsfed("https://app.example/", _key(certs[0], "signing")))


@pytest.fixture
def served(tmp_path: Path, certs: tuple[bytes, bytes]) -> Iterator[str]:
    (tmp_path / "metadata.xml").write_bytes(wsfed("https://served.example/", _key(certs[1], "encryption")))
    (tmp_path / "big.xml").write_bytes(b" " * 5000)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)


def test_fetch_bounded_and_rp_add_from_url_and_file(tmp_path: Path, served: str, certs: tuple[bytes, bytes]) -> None:
    with pytest.raises(ValueError, match="larger"):
        fetch_rp_metadata(f"{served}/big.xml", max_bytes=1000)
    with pytest.raises(ValueError, match="404"):
        fetch_rp_metadata(f"{served}/missing.xml")
    with pytest.raises(ValueError, match="http"):
        fetch_rp_metadata("file:///etc/passwd")
    home = tmp_path / "home"
    init_home(home, demo=False)
    runner = CliRunner()
    result = runner.invoke(main, ["--home", str(home), "rp", "add", "--metadata", f"{served}/metadata.xml"])
    assert result.exit_code == 0, result.output
    (tmp_path / "sp.xml").write_bytes(saml_sp("urn:sp:one", _key(certs[1], "encryption")))
    result = runner.invoke(main, ["--home", str(home), "rp", "add", "--metadata", str(tmp_path / "sp.xml"),
                                  "--token-type", "saml11"])
    assert result.exit_code == 0, result.output
    stores = open_stores(load_settings(home))
    served_rp, sp = stores.relying_parties.get("https://served.example/"), stores.relying_parties.get("urn:sp:one")
    assert served_rp is not None and served_rp.cert_pem is not None and served_rp.encrypt
    assert sp is not None and sp.token_type.short == "saml11"
    stores.close()
    missing = runner.invoke(main, ["--home", str(home), "rp", "add"])
    assert missing.exit_code != 0 and "--endpoint" in missing.output
