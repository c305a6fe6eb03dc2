"""Store cost per WS-Trust Issue request: each store call in isolation, then the whole pipeline.

    .venv/bin/python bench/store_bench.py [--n 400] [--rounds 5] [--url sqlite:///...|postgresql+psycopg://...]

Every figure is the median over ``--rounds`` of the mean per call (ms), wall clock in a tight loop on one
thread; the machine is shared and noisy, so compare runs made minutes apart, not across days. With ``--url``
only the isolated store calls run, against that database (the pipeline always uses a fresh SQLite home).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("STS_PASSWORD_HASH_N", "16")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sts.model import RelyingParty, TokenRecord  # noqa: E402
from sts.store.passwords import PasswordHasher, SecretBox  # noqa: E402
from sts.store.database import Database, open_database  # noqa: E402
from sts.store.schema import utcnow  # noqa: E402
from sts.uris import TokenType  # noqa: E402

EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def per_call(fn: Callable[[int], object], n: int, rounds: int) -> float:
    """Median over rounds of the mean wall time of ``fn(i)`` in ms; ``i`` never repeats across rounds."""
    counter = itertools.count()
    fn(next(counter))  # warm: statement caches, pool, page cache
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn(next(counter))
        means.append((time.perf_counter() - start) / n * 1e3)
    return statistics.median(means)


def isolated(db: Database, n: int, rounds: int) -> dict[str, float]:
    db.users.add("alice", "wonderland", [(EMAIL, "alice@example.org"), (ROLE, "reader"), (ROLE, "writer")])
    db.relying_parties.add(RelyingParty("https://service-a.example/", match_prefix=True))
    db.relying_parties.add(RelyingParty("https://service-b.example/"))
    run = f"{time.time_ns():x}"
    until = utcnow() + timedelta(minutes=10)

    def token(i: int) -> TokenRecord:
        now = utcnow()
        return TokenRecord(
            token_id=f"_{run}-{i}", token_type=TokenType.SAML20, subject="alice",
            applies_to="https://service-a.example/", issued=now, expires=now + timedelta(hours=1),
            status="valid", token_hash="sha256:abc", requester="127.0.0.1",
            details={"claims": [EMAIL, ROLE]},
        )

    results = {
        "pool checkout (engine.connect)": per_call(lambda i: db.engine.connect().close(), n, rounds),
        "users.digest_secret": per_call(lambda i: db.users.digest_secret("alice"), n, rounds),
        "users.get": per_call(lambda i: db.users.get("alice"), n, rounds),
    }
    if hasattr(db.users, "get_with_secret"):
        results["users.get_with_secret"] = per_call(lambda i: db.users.get_with_secret("alice"), n, rounds)
    results["relying_parties.lookup"] = per_call(
        lambda i: db.relying_parties.lookup("https://service-a.example/"), n, rounds)
    results["nonces.first_seen (new key)"] = per_call(
        lambda i: db.nonces.first_seen(f"{run}-{i}".encode(), until), n, rounds)
    results["nonces.first_seen (replay)"] = per_call(
        lambda i: db.nonces.first_seen(f"{run}-0".encode(), until), n, rounds)
    results["tokens.put"] = per_call(lambda i: db.tokens.put(token(i)), n, rounds)
    return results


def pipeline(n: int, rounds: int) -> tuple[float, float, dict[str, float]]:
    """(ms/token, ms/RSA signature, ms per token spent in each store method) through TrustEndpoint.handle."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from sts.config import load_settings
    from sts.home import init_home
    from sts.model import RequestContext
    from sts.runtime import build_runtime
    from sts.xmltime import utcnow as xml_utcnow
    from trust_client import rst_envelope

    home = Path(tempfile.mkdtemp(prefix="sts-bench-"))
    init_home(home)
    rt = build_runtime(load_settings(home).with_bind("127.0.0.1", 8080, False))

    spent: dict[str, float] = {}
    stores = {"users": rt.stores.users, "relying_parties": rt.stores.relying_parties,
              "nonces": rt.stores.nonces, "tokens": rt.stores.tokens}
    names = {"users": ("digest_secret", "get", "get_with_secret", "check_password"),
             "relying_parties": ("lookup",), "nonces": ("first_seen",), "tokens": ("put",)}
    for store_name, store in stores.items():
        for method in names[store_name]:
            real = getattr(store, method, None)
            if real is None:
                continue
            label = f"{store_name}.{method}"

            def timed(*args: object, _real: Callable[..., object] = real, _label: str = label) -> object:
                t0 = time.perf_counter()
                try:
                    return _real(*args)
                finally:
                    spent[_label] = spent.get(_label, 0.0) + time.perf_counter() - t0

            setattr(store, method, timed)  # instance attribute shadows the method

    def batch() -> list[bytes]:
        return [rst_envelope(user="alice", password="wonderland", applies_to="https://service-a.example/",
                             digest=True) for _ in range(n)]

    def run(bodies: list[bytes]) -> float:
        ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=xml_utcnow())
        start = time.perf_counter()
        for body in bodies:
            assert rt.endpoint.handle(body, ctx).status == 200
        return (time.perf_counter() - start) / len(bodies) * 1e3

    run(batch()[:20])
    spent.clear()
    per_token = statistics.median(run(batch()) for _ in range(rounds))
    breakdown = {k: v / (n * rounds) * 1e3 for k, v in sorted(spent.items())}

    key = rt.signing_key.private_key if hasattr(rt.signing_key, "private_key") else None
    sign_ms = float("nan")
    if key is not None:
        sign_ms = per_call(lambda i: key.sign(b"x" * 64, padding.PKCS1v15(), hashes.SHA256()), 200, rounds)
    rt.stores.close()
    return per_token, sign_ms, breakdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", help="database URL for the isolated calls (default: a fresh SQLite file)")
    parser.add_argument("--no-pipeline", action="store_true")
    args = parser.parse_args()

    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='sts-bench-')) / 'sts.db'}"
    db = open_database(url, hasher=PasswordHasher(n=16), secret_box=SecretBox(os.urandom(32)))
    try:
        print(f"isolated store calls on {db.engine.dialect.name}, ms per call (median of {args.rounds}x{args.n})")
        for label, ms in isolated(db, args.n, args.rounds).items():
            print(f"  {label:34s} {ms:8.4f}")
    finally:
        if args.url:  # leave a shared database as found
            from sqlalchemy import delete

            from sts.store.schema import counters, metadata

            with db.engine.begin() as conn:
                for table in reversed(metadata.sorted_tables):
                    if table is not counters and table.name != "schema_version":
                        conn.execute(delete(table))
        db.close()
    if args.no_pipeline:
        return
    per_token, sign_ms, breakdown = pipeline(args.n, args.rounds)
    print(f"pipeline (TrustEndpoint.handle, SAML 2.0 signed + encrypted, digest UT): {per_token:.3f} ms/token")
    print(f"  raw RSA-2048 PKCS#1 v1.5 sign: {sign_ms:.3f} ms")
    total = 0.0
    for label, ms in breakdown.items():
        total += ms
        print(f"  in {label:31s} {ms:8.4f} ms/token")
    print(f"  in the stores, total             {total:8.4f} ms/token")


if __name__ == "__main__":
    main()
