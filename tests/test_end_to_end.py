"""The mission's story end to end: the client reads Service A's policy, gets the token it demands from the STS,
calls Service A with it through zeep, and is granted or denied - every actor a real server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import zeep
import zeep.exceptions

from live import free_port, serving
from sts.client.trust import TrustClient, TrustFault, UsernameCredentials
from sts.config import load_settings
from sts.tokens.crypto.keys import load_certificate, load_private_key
from sts.rp.demo_service import DATEOFBIRTH, GIVENNAME, SURNAME, create_service_app
from sts.model import RelyingParty
from sts.client.presenting import IssuedTokenPlugin
from sts.rp.verifier import TokenVerifier
from sts.runtime import open_stores


@pytest.fixture(scope="module")
def service_a(live_sts) -> Iterator[str]:
    """Service A at its own URL, registered at the STS as a relying party with the demo RP certificate."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    endpoint = f"{base}/service-a"
    home = live_sts.home
    stores = open_stores(load_settings(home))
    stores.relying_parties.add(RelyingParty(endpoint=endpoint, cert_pem=(home / "demo" / "rp.crt").read_bytes()))
    teen = date.today().replace(year=date.today().year - 15).isoformat()
    for name, claims in (("e2e-noage", [(GIVENNAME, "No"), (SURNAME, "Age")]),
                         ("e2e-teen", [(GIVENNAME, "Teen"), (SURNAME, "Ager"), (DATEOFBIRTH, teen)])):
        if stores.users.get(name) is None:
            stores.users.add(name, "pw", claims)
    stores.close()
    verifier = TokenVerifier(
        [load_certificate(load_settings(home).signing_cert_path.read_bytes())],
        rp_private_key=load_private_key((home / "demo" / "rp.key").read_bytes()),  # type: ignore[arg-type]
        audience=endpoint,
    )
    with serving(create_service_app(verifier, base_url=base, sts_url=live_sts.sts_url), port) as url:
        yield url


def _client(live_sts, user: str, password: str) -> TrustClient:
    return TrustClient(f"{live_sts.sts_url}?wsdl", credentials=UsernameCredentials(user, password, digest=True))


def _hello(service_a: str, plugin: IssuedTokenPlugin) -> str:
    service = zeep.Client(f"{service_a}/service-a?wsdl", plugins=[plugin]).service
    return str(service.Hello("hi"))


def test_client_reads_the_policy_gets_the_token_and_is_greeted(live_sts, demo, service_a) -> None:
    result = _client(live_sts, demo["user"], demo["password"]).issue_for_service(f"{service_a}/service-a?wsdl")
    assert result.applies_to == f"{service_a}/service-a"
    assert "Alice Liddell" in _hello(service_a, IssuedTokenPlugin(result))


def test_user_without_a_date_of_birth_is_denied_naming_the_claim(live_sts, service_a) -> None:
    with pytest.raises(TrustFault) as info:
        _client(live_sts, "e2e-noage", "pw").issue_for_service(f"{service_a}/service-a?wsdl")
    assert info.value.fault_code[1] == "RequestFailed" and DATEOFBIRTH in info.value.fault_reason
    # And if such a token reaches Service A anyway (asked for without the claim), the service names it.
    result = _client(live_sts, "e2e-noage", "pw").issue(f"{service_a}/service-a",
                                                         claims=(GIVENNAME, SURNAME))
    with pytest.raises(zeep.exceptions.Fault) as denied:
        _hello(service_a, IssuedTokenPlugin(result))
    assert DATEOFBIRTH in str(denied.value.message)


def test_under_18_is_denied(live_sts, service_a) -> None:
    result = _client(live_sts, "e2e-teen", "pw").issue_for_service(f"{service_a}/service-a?wsdl")
    with pytest.raises(zeep.exceptions.Fault) as denied:
        _hello(service_a, IssuedTokenPlugin(result))
    assert DATEOFBIRTH in str(denied.value.message)


def test_token_for_another_audience_is_denied(live_sts, demo, service_a) -> None:
    result = _client(live_sts, demo["user"], demo["password"]).issue(
        demo["rp"], claims=(GIVENNAME, SURNAME, DATEOFBIRTH))
    with pytest.raises(zeep.exceptions.Fault) as denied:
        _hello(service_a, IssuedTokenPlugin(result))
    assert "audience" in str(denied.value.message).lower()


def test_holder_of_key_token_signed_with_the_proof_key_is_greeted(live_sts, demo, service_a) -> None:
    result = _client(live_sts, demo["user"], demo["password"]).issue(
        f"{service_a}/service-a", claims=(GIVENNAME, SURNAME, DATEOFBIRTH), key_type="symmetric")
    assert result.proof_key is not None and len(result.proof_key) == 32
    assert "Alice Liddell" in _hello(service_a, IssuedTokenPlugin(result))
    with pytest.raises(zeep.exceptions.Fault):
        _hello(service_a, IssuedTokenPlugin(result, sign_with_proof_key=False))
