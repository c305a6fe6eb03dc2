"""`sts serve --workers 2`: copies of one request sent at once, spread over both worker processes (each with its own
group commit on the shared SQLite database), get exactly one token; every other copy is refused as a replay."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.soak import new_home, serving
from sts import ns
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER
from trust_client import post, rst_envelope

COPIES = 16
ROUNDS = 5


def test_copies_spread_over_two_workers_get_one_token(tmp_path: Path) -> None:
    home = new_home(tmp_path / "home")
    with serving(home, 2) as (base_url, _), ThreadPoolExecutor(max_workers=COPIES) as pool:
        url = f"{base_url}/services/sts"
        for _ in range(ROUNDS):
            body = rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT, digest=True)
            # Each post is a connection of its own: the kernel hands it to either worker.
            replies = list(pool.map(lambda _: post(url, body), range(COPIES)))
            assert sorted(reply.status for reply in replies) == [200] + [400] * (COPIES - 1)
            assert {reply.fault_code for reply in replies if reply.status != 200} == {(ns.WSSE, "MessageExpired")}
