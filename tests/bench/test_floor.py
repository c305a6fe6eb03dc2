"""The floor (bench/floor.py) does the real work it stands for: its tokens verify at the relying party (RSA and
ECDSA), it refuses what the STS would refuse on its narrow path (a replayed nonce, a wrong password, an unknown
relying party), and every answer is sent only after the commit that holds its token and audit rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from bench.floor import Floor, FloorApp, Refused
from bench.homes import PASSWORD, BenchHome, make_home
from bench.messages import issue_with_password
from bench.server import STS_PATH
from sts.home import DEMO_CLAIMS, DEMO_RP_ENDPOINT, DEMO_USER
from sts.rp import TokenVerifier
from sts.uris import TokenType

RSTS = "{http://docs.oasis-open.org/ws-sx/ws-trust/200512}RequestedSecurityToken"


@pytest.fixture(scope="module", params=["rsa", "ecdsa"])
def home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BenchHome:
    return make_home(tmp_path_factory.mktemp("floor") / "home", signing=request.param)


@pytest.fixture
def floor(home: BenchHome, tmp_path: Path) -> Floor:
    return Floor(home.path, tmp_path / "floor.db")


def _request(password: str = PASSWORD, applies_to: str = DEMO_RP_ENDPOINT) -> bytes:
    return issue_with_password(DEMO_USER, password, applies_to, TokenType.SAML20).make()


def test_its_token_verifies_at_the_relying_party(home: BenchHome, floor: Floor) -> None:
    answer = floor.handle(_request())
    token = etree.fromstring(answer.body).find(f".//{RSTS}")
    assert token is not None and etree.QName(token[0]).localname == "EncryptedAssertion"
    verified = TokenVerifier([floor.signing_cert], rp_private_key=home.rp_key,
                             audience=DEMO_RP_ENDPOINT).verify(etree.tostring(token[0]))
    assert verified.subject == DEMO_USER and verified.token_id == answer.token_row[0]
    assert {uri: values[0] for uri, values in verified.claims.items()} == dict(DEMO_CLAIMS)
    # The signature method is inside the ciphertext; the verifier accepted it, so the key's own algorithm it is.
    assert floor.method.endswith("#ecdsa-sha256" if home.signing == "ecdsa" else "#rsa-sha256")


@pytest.mark.parametrize(("request_body", "reason"), [
    (lambda: _request(password="not the password"), "wrong password"),
    (lambda: _request(applies_to="https://unknown.example/"), "unknown relying party"),
    (lambda: b"<not-closed", "not XML"),
])
def test_it_refuses_what_it_cannot_issue(floor: Floor, request_body: Any, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        floor.handle(request_body())


def test_a_replayed_nonce_is_refused(floor: Floor) -> None:
    body = _request()
    floor.handle(body)
    with pytest.raises(Refused, match="replayed nonce"):
        floor.handle(body)


def test_every_answer_waits_for_the_commit_of_its_rows(floor: Floor, tmp_path: Path) -> None:
    """20 concurrent requests (more than one batch): when each answer starts, its token row is readable from
    another connection, i.e. committed."""
    app = FloorApp(floor)
    reader = sqlite3.connect(tmp_path / "floor.db")
    seen: list[tuple[int, bool]] = []

    async def one(body: bytes) -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop()

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started["status"] = message["status"]
            if message["type"] == "http.response.body":
                token_id = etree.fromstring(message["body"]).findtext(
                    ".//{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}"
                    "KeyIdentifier")
                committed = reader.execute("SELECT count(*) FROM token WHERE id = ?", (token_id,)).fetchone()[0]
                seen.append((started["status"], committed == 1))

        started: dict[str, int] = {}
        await app({"type": "http", "path": STS_PATH, "method": "POST"}, receive, send)

    async def all_of_them() -> None:
        await asyncio.gather(*(one(_request()) for _ in range(20)))

    asyncio.run(all_of_them())
    assert seen == [(200, True)] * 20
    assert reader.execute("SELECT count(*) FROM audit").fetchone()[0] == 20
