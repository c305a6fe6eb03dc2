"""`make cluster-test`: a farm of two ``sts serve`` nodes on one PostgreSQL, both signing through one HSM key
(SoftHSM2, PKCS#11), users from a directory (slapd) besides the local ones (issue 15, item 5).

Everything is real and throwaway: the PostgreSQL 15 server (tests/servers/postgres.py), the SoftHSM2 token with the
signing key generated inside it (tests/servers/softhsm.py), the OpenLDAP server with the test users of
fixtures/ldap (tests/servers/slapd.py), and two ``sts serve`` processes on their own loopback ports, configured the
way an operator would: the same ``STS_*`` environment on both nodes and ``sts init`` on each (the first one
seeds the database: the schema, the farm's secrets key sealed under the key-encryption key, the demo data).

The cases run across the nodes: issue on A, cancel on B, validate on A; a UsernameToken replayed from A to B; the
same token renewed on both at once; a directory user's token with the directory's claims; and a node killed in the
middle of a load, after which the other keeps serving and every acknowledged operation is found as acknowledged.
The tests share one farm and run in file order on one xdist worker (group "farm"); the node kill comes last.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from bench.soak import (DEMO_RP_ENDPOINT, SOAP, VERSION, Journal, envelope, fault_code, fault_reason, run_clients, serving,
                        token_id_of)
from servers.postgres import PostgresServer
from servers.slapd import PASSWORD_ENV, READER_PASSWORD, Slapd
from servers.softhsm import SoftHsm, shared_softhsm
from sts import ns
from sts.client.trust import TrustClient, UsernameCredentials
from sts.config import environment_for
from sts.protocol.xmlsafe import parse
from sts.rp.verifier import TokenVerifier
from sts.store.ldap_directory import ROLE_CLAIM
from sts.tokens.crypto.keys import load_certificate, load_private_key

pytestmark = pytest.mark.xdist_group("farm")

HSM_KEY = "farm-signing"  # the test process's one SoftHSM2 token is shared: keys differ by label
GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
WST = VERSION.value


@dataclass
class Farm:
    a: str  # base URLs of the two nodes
    b: str
    node_a: subprocess.Popen[bytes]
    node_b: subprocess.Popen[bytes]
    home_a: Path
    hsm_certificate: bytes  # PEM of the signing key made inside the HSM

    def sts(self, base: str) -> str:
        return f"{base}/services/sts"


def _environment(postgres: PostgresServer, hsm: SoftHsm, directory: Slapd) -> dict[str, str]:
    """What every node of the farm gets: one database, one HSM key, one directory, one key-encryption key."""
    settings: dict[str, object] = {"database_url": postgres.url, **hsm.settings(HSM_KEY), **directory.settings()}
    return {**environment_for(settings), **hsm.environment(), PASSWORD_ENV: READER_PASSWORD, "STS_PASSWORD_HASH_N": "16",
            "STS_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode("ascii")}


def _sts(home: Path, env: dict[str, str], *args: str) -> str:
    """Run an ``sts`` command as an operator would; its output (a failure shows what it said)."""
    result = subprocess.run([sys.executable, "-m", "sts", "--home", str(home), *args], capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=120, check=False)
    assert result.returncode == 0, f"sts {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("farm")
    # SoftHSM2 lists its tokens once per process: a token deleted while the module is loaded breaks every later
    # lookup in this process (GeneralError), so the farm's key goes on the process's one shared token.
    hsm = shared_softhsm(root)
    with PostgresServer() as postgres, Slapd.started(root) as directory:
        certificate = hsm.generate_key(HSM_KEY)
        env = _environment(postgres, hsm, directory)
        home_a, home_b = root / "node-a", root / "node-b"
        _sts(home_a, env, "init")  # the schema, the farm's secrets key (under the KEK), the demo user and RP
        _sts(home_b, env, "init")  # finds all of it there: adds nothing
        try:
            nodes = serving(home_a, workers=1, env=env), serving(home_b, workers=1, env=env)
            with nodes[0] as (a, node_a), nodes[1] as (b, node_b):
                yield Farm(a, b, node_a, node_b, home_a, certificate)
                for home in (home_a, home_b):  # shown with a failing test: what the nodes logged
                    print(f"--- {home.name}:\n{_tail(home / 'serve.log')}")
        except RuntimeError as failure:  # a node did not start: say what it printed
            logs = "".join(f"\n--- {home.name}:\n{_tail(home / 'serve.log')}" for home in (home_a, home_b))
            raise RuntimeError(f"{failure}{logs}") from None


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def _post(url: str, body: bytes) -> tuple[int, etree._Element]:
    response = httpx.post(url, content=body, headers={"content-type": SOAP.content_type}, timeout=30)
    return response.status_code, parse(response.content)


def _explain(root: etree._Element) -> str:
    return f"{fault_code(root)}: {fault_reason(root)}"


def _issue(url: str) -> str:
    status, root = _post(url, envelope("Issue", applies_to=DEMO_RP_ENDPOINT, renewing=(True, False)))
    assert status == 200, _explain(root)
    return token_id_of(root)


def _status(url: str, token_id: str) -> str:
    """Validate by reference: ``valid`` or ``invalid``."""
    status, root = _post(url, envelope("Validate", applies_to=None, targets={"ValidateTarget": token_id},
                                       token_type_uri=VERSION.uri("RSTR/Status")))
    assert status == 200, _explain(root)
    return str(root.findtext(f".//{{{WST}}}Status/{{{WST}}}Code")).rsplit("/", 1)[1]


def test_a_token_issued_on_a_and_cancelled_on_b_is_invalid_on_a_at_once(farm: Farm) -> None:
    token_id = _issue(farm.sts(farm.a))
    assert _status(farm.sts(farm.a), token_id) == "valid"
    status, root = _post(farm.sts(farm.b), envelope("Cancel", applies_to=None, targets={"CancelTarget": token_id}))
    assert status == 200, _explain(root)
    assert _status(farm.sts(farm.a), token_id) == "invalid"
    assert _status(farm.sts(farm.b), token_id) == "invalid"


def test_a_username_token_accepted_by_a_is_refused_as_a_replay_by_b(farm: Farm) -> None:
    body = envelope("Issue", applies_to=DEMO_RP_ENDPOINT)
    assert _post(farm.sts(farm.a), body)[0] == 200
    status, root = _post(farm.sts(farm.b), body)
    assert (status, fault_code(root)) == (400, "MessageExpired")  # SOAP 1.2: a Sender fault is HTTP 400
    # And the other way round, with both nodes asked at the same moment: exactly one accepts.
    body = envelope("Issue", applies_to=DEMO_RP_ENDPOINT)

    async def both() -> list[int]:
        async with httpx.AsyncClient(headers={"content-type": SOAP.content_type}, timeout=30) as client:
            answers = await asyncio.gather(*(client.post(farm.sts(base), content=body) for base in (farm.a, farm.b)))
        return sorted(answer.status_code for answer in answers)

    assert asyncio.run(both()) == [200, 400]


def test_one_token_renewed_on_both_nodes_at_once_is_renewed_exactly_once(farm: Farm) -> None:
    async def race(token_id: str) -> list[etree._Element]:
        async with httpx.AsyncClient(headers={"content-type": SOAP.content_type}, timeout=30) as client:
            answers = await asyncio.gather(*(
                client.post(farm.sts(base), content=envelope("Renew", applies_to=None,
                                                              targets={"RenewTarget": token_id}))
                for base in (farm.a, farm.b)))
        return [parse(answer.content) for answer in answers if answer.status_code == 200]

    for _ in range(5):
        token_id = _issue(farm.sts(farm.a))
        renewed = asyncio.run(race(token_id))
        assert len(renewed) == 1, f"{len(renewed)} renewals of one token"
        successor = token_id_of(renewed[0])
        assert _status(farm.sts(farm.b), successor) == "valid"
        assert _status(farm.sts(farm.a), token_id) == "invalid"  # superseded by its one renewal


def test_both_nodes_sign_with_the_key_in_the_hsm_and_publish_its_certificate(farm: Farm) -> None:
    hsm_certificate = load_certificate(farm.hsm_certificate)
    verifier = TokenVerifier([hsm_certificate], audience=DEMO_RP_ENDPOINT,
                             rp_private_key=load_private_key((farm.home_a / "demo" / "rp.key").read_bytes()))  # type: ignore[arg-type]
    signing_b64 = base64.b64encode(hsm_certificate.public_bytes(Encoding.DER)).decode("ascii")
    for base in (farm.a, farm.b):
        status, root = _post(farm.sts(base), envelope("Issue", applies_to=DEMO_RP_ENDPOINT))
        assert status == 200
        token = root.find(f".//{{{WST}}}RequestedSecurityToken")
        assert token is not None and verifier.verify(etree.tostring(token[0])).subject == "alice"
        metadata = httpx.get(f"{base}/FederationMetadata/2007-06/FederationMetadata.xml", timeout=30).content
        published = {element.text for element in parse(metadata).iter(f"{{{ns.DS}}}X509Certificate")}
        assert signing_b64 in published, f"{base} does not publish the HSM's certificate"


def test_a_directory_user_gets_the_directorys_claims_from_either_node(farm: Farm) -> None:
    verifier = TokenVerifier([load_certificate(farm.hsm_certificate)], audience=DEMO_RP_ENDPOINT,
                             rp_private_key=load_private_key((farm.home_a / "demo" / "rp.key").read_bytes()))  # type: ignore[arg-type]
    for base in (farm.a, farm.b):
        client = TrustClient(f"{farm.sts(base)}?wsdl", credentials=UsernameCredentials("carol", "carol-pass-1"))
        try:
            result = client.issue(DEMO_RP_ENDPOINT, claims=(GIVEN, ROLE_CLAIM))
        finally:
            client.transport.session.close()
        token = verifier.verify(result.token)
        assert token.subject == "carol" and token.claims[GIVEN] == ("Carol",)
        assert sorted(token.claims[ROLE_CLAIM]) == ["sts-admins", "sts-users"]


async def _load_then_kill_a(farm: Farm) -> tuple[Journal, Journal]:
    """Clients on both nodes; SIGKILL node A once it acknowledged some whole cycles, B's clients go on a while."""
    on_a, on_b = Journal(), Journal()
    stop_a, stop_b = asyncio.Event(), asyncio.Event()

    async def kill() -> None:
        deadline = time.monotonic() + 60
        while len(on_a.cancelled) < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        os.killpg(farm.node_a.pid, signal.SIGKILL)
        stop_a.set()
        await asyncio.sleep(3)  # node B under load after the kill
        stop_b.set()

    killer = asyncio.create_task(kill())
    await asyncio.gather(run_clients(farm.sts(farm.a), 8, seconds=90, stop=stop_a, journal=on_a),
                         run_clients(farm.sts(farm.b), 8, seconds=90, stop=stop_b, journal=on_b))
    await killer
    return on_a, on_b


def test_killing_a_node_mid_load_the_other_keeps_serving_and_nothing_acknowledged_is_lost(farm: Farm) -> None:
    on_a, on_b = asyncio.run(_load_then_kill_a(farm))
    print(f"\nnode A (killed): {len(on_a.issued)} issued, {len(on_a.cancelled)} cancelled acknowledged, "
          f"{on_a.error_count} requests cut; node B: {len(on_b.issued)} issued, {len(on_b.cancelled)} cancelled, "
          f"{on_b.error_count} errors")
    assert on_b.error_count == 0, on_b.samples
    assert len(on_a.cancelled) >= 10 and len(on_b.cancelled) > 0
    assert all(issubclass(getattr(httpx, code), httpx.TransportError) for _, code in on_a.errors), on_a.samples
    url = farm.sts(farm.b)
    # Node B's clients finished every cycle they began: each token's status is exactly what they were told.
    superseded, cancelled = {old for old, _ in on_b.renewed}, set(on_b.cancelled)
    for token_id in on_b.token_ids():
        assert _status(url, token_id) == ("invalid" if token_id in superseded | cancelled else "valid"), token_id
    # Node A died mid-cycle: an operation cut by the kill may or may not have happened, but every acknowledged one
    # did, and B (same database) sees it.
    for token_id in {old for old, _ in on_a.renewed} | set(on_a.cancelled):
        assert _status(url, token_id) == "invalid", token_id
    for token_id in on_a.issued:
        assert _status(url, token_id) in ("valid", "invalid"), token_id  # known to B: recorded before acknowledged
    assert farm.node_b.poll() is None


