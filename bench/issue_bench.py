"""Issue path throughput against the machine's raw RSA-2048 signature rate (one core, in process and over HTTP).

A quick look (`python bench/issue_bench.py`); the full benchmark is `make bench` (bench/run.py). Numbers go in
closing notes, not in tests. The in-process figure is the pipeline alone
(parse, authenticate with a digest UsernameToken, claims, SAML 2.0 build, sign, encrypt, record, RSTRC); the HTTP
figure adds uvicorn (`sts serve`, one worker process) and a keep-alive client in the benchmark's process (the
client's CPU competes for the machine's cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("STS_PASSWORD_HASH_N", "16")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project (interop) first, then the test helpers

import httpx  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from live import free_port, wait_healthy  # noqa: E402
from sts.config import load_settings  # noqa: E402
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home  # noqa: E402
from sts.model import RequestContext  # noqa: E402
from sts.runtime import build_runtime  # noqa: E402
from sts.xmltime import utcnow  # noqa: E402
from trust_client import rst_envelope  # noqa: E402


def raw_rsa_rate(runtime: object, seconds: float) -> float:
    key = runtime.signing_key.private_key  # type: ignore[attr-defined]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key.sign(count.to_bytes(8, "big") * 4, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - start)


def bodies(n: int) -> list[bytes]:
    return [rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT, digest=True)
            for _ in range(n)]


def loopback_context() -> RequestContext:
    """What an in-process request knows of its transport: a plain-HTTP client on a loopback bind."""
    return RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=utcnow())


def issue_each(endpoint: object, requests: list[bytes], ctx: RequestContext) -> None:
    """Handle each request in process; RuntimeError at the first answer that is not HTTP 200 (timing faults
    would measure nothing)."""
    for body in requests:
        status = endpoint.handle(body, ctx).status  # type: ignore[attr-defined]
        if status != 200:
            raise RuntimeError(f"an Issue request was answered with HTTP {status}")


def in_process_rate(runtime: object, n: int) -> float:
    endpoint = runtime.endpoint  # type: ignore[attr-defined]
    requests = bodies(n)
    ctx = loopback_context()
    for body in requests[: n // 10]:
        assert endpoint.handle(body, ctx).status == 200
    start = time.perf_counter()
    for body in requests[n // 10:]:
        assert endpoint.handle(body, ctx).status == 200
    return (n - n // 10) / (time.perf_counter() - start)


def http_rate(home: Path, n: int) -> float:
    """`sts serve` in its own process (one worker), a keep-alive client in this one."""
    port = free_port()
    env = {**os.environ, "STS_PASSWORD_HASH_N": "16"}
    process = subprocess.Popen([sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    requests = bodies(n)
    headers = {"content-type": "application/soap+xml; charset=utf-8"}
    url = f"http://127.0.0.1:{port}/services/sts"
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        with httpx.Client(headers=headers, timeout=30) as client:
            for body in requests[: n // 10]:
                assert client.post(url, content=body).status_code == 200
            start = time.perf_counter()
            for body in requests[n // 10:]:
                assert client.post(url, content=body).status_code == 200
            return (n - n // 10) / (time.perf_counter() - start)
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1000, help="requests per measurement")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sts-bench-"))
    init_home(home)
    runtime = build_runtime(load_settings(home).with_bind("127.0.0.1", 8080, tls=False))
    rsa = raw_rsa_rate(runtime, 2.0)
    local = in_process_rate(runtime, args.n)
    remote = http_rate(home, args.n)
    print(f"raw RSA-2048 sign          {rsa:8.0f}/s  {1e3 / rsa:6.3f} ms")
    print(f"Issue, in process          {local:8.0f}/s  {1e3 / local:6.3f} ms  ({local / rsa:5.1%} of raw RSA)")
    print(f"Issue, HTTP (keep-alive)   {remote:8.0f}/s  {1e3 / remote:6.3f} ms  ({remote / rsa:5.1%} of raw RSA)")


if __name__ == "__main__":
    main()
