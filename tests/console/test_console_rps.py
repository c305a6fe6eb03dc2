"""The relying-party pages and /console/api/rps as adapters of the admin core: status, field errors, warnings.

What the core decides is tested in tests/admin/test_relying_parties.py; here only the mapping: a refusal lands next
to its field with the input kept (pages) or as ``{"errors": {field: message}}`` with its status (API), a warning
is shown, the signed-in administrator is the audit actor, and a relying party the CLI stored saves unchanged.
"""

from __future__ import annotations

import base64
from pathlib import Path

from click.testing import CliRunner
from console_support import ADMIN, ADMIN_PASSWORD, make_cert  # type: ignore[import-not-found]
from starlette.testclient import TestClient

from sts.cli.main import main
from sts.runtime import Runtime
from sts.claim_dictionary import BY_NAME
from sts.store.audit import AuditTrail

EMAIL = BY_NAME["emailaddress"].uri
API = "/console/api/rps"


def _basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{ADMIN}:{ADMIN_PASSWORD}".encode()).decode()}


def _add(client: TestClient, csrf: str, endpoint: str, **extra: str) -> object:
    data = {"csrf": csrf, "endpoint": endpoint, "encrypt": "1", "token_type": "saml20",
            "cert_pem": make_cert()[1].decode(), **extra}
    return client.post("/console/rps/new", data=data)


def test_a_short_claim_name_is_stored_as_its_uri_and_the_admin_is_the_actor(client: TestClient, admin: str,
                                                                           runtime: Runtime) -> None:
    response = _add(client, admin, "https://short.example/", required_claims="emailaddress")
    assert response.status_code == 303  # type: ignore[attr-defined]
    party = runtime.stores.relying_parties.get("https://short.example/")
    assert party is not None and party.required_claims == (EMAIL,)
    record = AuditTrail(runtime.stores.engine).search(event="rp.add")[0]
    assert record.actor == ADMIN and record.detail["after"]["required_claims"] == [EMAIL]


def test_an_unknown_claim_name_is_refused_next_to_its_field_with_the_input_kept(client: TestClient, admin: str,
                                                                               runtime: Runtime) -> None:
    response = _add(client, admin, "https://bogus.example/", required_claims="bogusclaimname")
    html = response.text  # type: ignore[attr-defined]
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert 'id="required_claims-error"' in html and "unknown claim name &#39;bogusclaimname&#39;" in html
    assert 'value="https://bogus.example/"' in html and ">bogusclaimname</textarea>" in html
    assert runtime.stores.relying_parties.get("https://bogus.example/") is None


def test_a_uri_outside_the_dictionary_is_saved_with_the_warning_shown(client: TestClient, admin: str) -> None:
    response = _add(client, admin, "https://odd.example/", required_claims="urn:c:age")
    assert response.status_code == 200  # type: ignore[attr-defined]
    html = response.text  # type: ignore[attr-defined]
    assert "Added https://odd.example/." in html and "claim URI urn:c:age is not in the claim dictionary" in html


def test_the_form_lists_the_claim_dictionary(client: TestClient, admin: str) -> None:
    html = client.get("/console/rps/new").text
    assert "<code>emailaddress</code>" in html and f"<code>{EMAIL}</code>" in html


def test_a_failed_metadata_import_shows_one_error(client: TestClient, admin: str) -> None:
    response = client.post("/console/rps/new", data={"csrf": admin, "source": "metadata", "encrypt": "1"},
                           files={"metadata_file": ("sp.xml", b"<x/>", "application/xml")})
    assert response.status_code == 400
    assert response.text.count('class="error"') == 1 and 'id="metadata-error"' in response.text
    assert "the metadata cannot be used: no md:EntityDescriptor" in response.text


def test_a_relying_party_the_cli_stored_saves_unchanged(console_home: Path, client: TestClient, admin: str,
                                                        runtime: Runtime) -> None:
    cert = console_home / "rp.crt"
    cert.write_bytes(make_cert("cli.example")[1])
    result = CliRunner().invoke(main, [
        "--home", str(console_home), "rp", "add", "--endpoint", "https://cli.example/", "--cert", str(cert),
        "--require-claim", "emailaddress", "--require-claim", "urn:c:age", "--permit-claim", "givenname",
        "--name-id-claim", "upn", "--signature", "rsa-sha1", "--data-encryption", "aes128-cbc",
        "--default-lifetime", "60", "--max-lifetime", "120"])
    assert result.exit_code == 0, result.output
    stored = runtime.stores.relying_parties.get("https://cli.example/")
    url = "/console/rps/edit?endpoint=https%3A%2F%2Fcli.example%2F"
    form = client.get(url).text
    data = {"csrf": admin, "encrypt": "1", "token_type": "saml20", "signature": "rsa-sha1",
            "data_encryption": "aes128-cbc", "key_transport": "rsa-oaep-mgf1p", "default_lifetime": "60",
            "max_lifetime": "120", "required_claims": f"{EMAIL}\nurn:c:age",
            "permitted_claims": BY_NAME["givenname"].uri, "name_id_claim": BY_NAME["upn"].uri}
    for value in data.values():
        assert value in form or value in ("1", admin)  # the form shows what is stored
    response = client.post(url, data=data)  # no legacy confirmation: the CLI's choice is kept, not made again
    assert response.status_code == 200, response.text  # saved, with the dictionary warning for urn:c:age
    assert runtime.stores.relying_parties.get("https://cli.example/") == stored


def test_a_legacy_algorithm_without_the_checkbox_is_refused_by_field(client: TestClient, admin: str,
                                                                     runtime: Runtime) -> None:
    response = _add(client, admin, "https://legacy.example/", key_transport="rsa-1_5")
    assert response.status_code == 400  # type: ignore[attr-defined]
    html = response.text  # type: ignore[attr-defined]
    assert 'id="key_transport-error"' in html and "rsa-1_5 is a legacy algorithm" in html
    assert runtime.stores.relying_parties.get("https://legacy.example/") is None
    confirmed = _add(client, admin, "https://legacy.example/", key_transport="rsa-1_5", legacy="1")
    assert confirmed.status_code == 200 and "legacy algorithm rsa-1_5 for" in confirmed.text  # type: ignore[attr-defined]


def test_api_maps_refusals_to_statuses_and_fields(client: TestClient) -> None:
    cert = make_cert()[1].decode()
    created = client.post(API, headers=_basic(), json={"endpoint": "https://api.example/", "certificate_pem": cert,
                                                       "required_claims": ["emailaddress"]})
    assert created.status_code == 201 and created.json()["required_claims"] == [EMAIL]
    assert created.json()["warnings"] == [] and "cert_pem" not in created.json()
    bogus = client.post(API, headers=_basic(), json={"endpoint": "https://b.example/", "certificate_pem": cert,
                                                     "required_claims": ["bogusclaimname"]})
    assert bogus.status_code == 400 and list(bogus.json()["errors"]) == ["required_claims"]
    legacy = client.post(API, headers=_basic(), json={"endpoint": "https://l.example/", "certificate_pem": cert,
                                                      "signature": "rsa-sha1"})
    assert legacy.status_code == 400 and list(legacy.json()["errors"]) == ["signature"] and legacy.json()["risk"]
    confirmed = client.post(API, headers=_basic(), json={"endpoint": "https://l.example/", "certificate_pem": cert,
                                                         "signature": "rsa-sha1", "legacy": True})
    assert confirmed.status_code == 201 and confirmed.json()["warnings"][0].startswith("legacy algorithm rsa-sha1")
    assert client.post(API, headers=_basic(), json={"endpoint": "https://api.example/",
                                                    "certificate_pem": cert}).status_code == 409
    patched = client.patch(f"{API}?endpoint=https://api.example/", headers=_basic(), json={"max_lifetime": 60})
    assert patched.status_code == 200 and patched.json()["max_lifetime"] == 60
    assert patched.json()["required_claims"] == [EMAIL]  # what the body leaves out stays
    bad_patch = client.patch(f"{API}?endpoint=https://api.example/", headers=_basic(), json={"max_lifetime": "x"})
    assert bad_patch.status_code == 400 and list(bad_patch.json()["errors"]) == ["max_lifetime"]
    missing = client.patch(f"{API}?endpoint=https://nope.example/", headers=_basic(), json={})
    assert missing.status_code == 404 and "no relying party" in missing.json()["errors"]["endpoint"]
    assert client.delete(f"{API}?endpoint=https://nope.example/", headers=_basic()).status_code == 404
    assert client.delete(f"{API}?endpoint=https://api.example/", headers=_basic()).json() == {"removed": True}
