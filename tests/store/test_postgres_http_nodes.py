"""Two STS nodes over real HTTP on one PostgreSQL database (one home: the same keys; each node its own runtime,
engine and caches): the lifecycle and replay cases of a farm, request by request."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from live import LiveServer, running
from servers.postgres import PostgresServer
from sts import ns
from sts.config import load_settings
from sts.home import DEMO_PASSWORD, DEMO_USER, init_home, open_stores
from sts.model import RelyingParty
from sts.store.schema import tokens
from trust_client import Reply, post, rst_envelope

PLAIN_RP = "https://plain-farm.example/app"
ROUNDS = 5


@pytest.fixture(scope="module")
def farm(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[LiveServer, LiveServer]]:
    home = tmp_path_factory.mktemp("pg-farm")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STS_DATABASE_URL", postgres_server.fresh_url())
        init_home(home)
        stores = open_stores(load_settings(home))
        stores.relying_parties.add(RelyingParty(PLAIN_RP, encrypt=False))
        stores.close()
        with running(home) as a, running(home) as b:
            yield a, b


def request(node: LiveServer, request_type: str, **options: object) -> Reply:
    body = rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, digest=True, request_type=request_type, **options)
    return post(node.sts_url, body)


def issue(node: LiveServer) -> str:
    reply = request(node, "Issue", applies_to=PLAIN_RP)
    assert reply.status == 200, reply.fault_reason
    token_id = reply.findtext(f".//{{{ns.WSSE}}}KeyIdentifier")
    assert token_id
    return token_id


def validation(node: LiveServer, token_id: str) -> str:
    reply = request(node, "Validate", applies_to=None, targets={"ValidateTarget": token_id},
                    token_type_uri=f"{ns.WST13}/RSTR/Status")
    assert reply.status == 200, reply.fault_reason
    code = reply.root.findtext(f".//{{{ns.WST13}}}Status/{{{ns.WST13}}}Code") or ""
    return code.rsplit("/", 1)[1]


def statuses(home: Path) -> dict[str, int]:
    stores = open_stores(load_settings(home))
    try:
        with stores.engine.connect() as conn:
            rows = conn.execute(select(tokens.c.status)).scalars().all()
    finally:
        stores.close()
    return {status: rows.count(status) for status in set(rows)}


def test_issued_on_a_cancelled_on_b_invalid_on_a(farm: tuple[LiveServer, LiveServer]) -> None:
    a, b = farm
    token_id = issue(a)
    assert validation(b, token_id) == "valid"
    cancelled = request(b, "Cancel", applies_to=None, targets={"CancelTarget": token_id})
    assert cancelled.status == 200, cancelled.fault_reason
    assert validation(a, token_id) == "invalid"


def test_a_request_replayed_to_the_other_node_is_refused(farm: tuple[LiveServer, LiveServer]) -> None:
    a, b = farm
    body = rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=PLAIN_RP, digest=True)
    assert post(a.sts_url, body).status == 200
    assert post(b.sts_url, body).fault_code == (ns.WSSE, "MessageExpired")


def test_a_token_renewed_on_both_nodes_at_once_is_renewed_once(farm: tuple[LiveServer, LiveServer]) -> None:
    a, b = farm
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for _ in range(ROUNDS):
            token_id = issue(a)
            replies = list(pool.map(
                lambda node: request(node, "Renew", applies_to=None, targets={"RenewTarget": token_id}), (a, b)))
            assert sorted(reply.status for reply in replies) == [200, 400], [r.fault_reason for r in replies]
            loser = next(reply for reply in replies if reply.status != 200)
            assert loser.fault_code == (ns.WST13, "UnableToRenew")
            winner = next(reply for reply in replies if reply.status == 200)
            renewed_id = winner.findtext(f".//{{{ns.WSSE}}}KeyIdentifier")
            assert renewed_id and renewed_id != token_id
            assert validation(a, token_id) == "invalid" and validation(b, renewed_id) == "valid"
    assert statuses(a.home)["renewed"] == ROUNDS  # each issued token renewed once, by one node
