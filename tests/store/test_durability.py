"""State survives a crash: issue, cancel, SIGKILL the server, restart it, and the token still validates invalid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


from live import free_port, wait_healthy
from sts.home import init_home
from sts.uris import TrustVersion
from trust_client import post, rst_envelope

RP = "https://service-a.example/"


@contextmanager
def sts_process(home: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "STS_PASSWORD_HASH_N": "16"}
    process = subprocess.Popen([sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=20)


def _call(url: str, request_type: str, **options: object):
    body = rst_envelope(user="alice", password="wonderland", digest=True, request_type=request_type, **options)
    return post(url, body)


def test_cancel_survives_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home)
    port = free_port()
    url = f"http://127.0.0.1:{port}/services/sts"
    with sts_process(home, port) as process:
        issued = _call(url, "Issue", applies_to=RP)
        token_id = issued.findtext(".//wsse:KeyIdentifier")
        assert _call(url, "Cancel", applies_to=None, targets={"CancelTarget": token_id}).status == 200
        os.kill(process.pid, signal.SIGKILL)  # no shutdown hook runs: only what was committed remains
        process.wait(timeout=20)
    with sts_process(home, port):
        reply = _call(url, "Validate", applies_to=None, targets={"ValidateTarget": token_id},
                      token_type_uri=TrustVersion.WST13.uri("RSTR/Status"))
        assert reply.status == 200
        assert reply.root.findtext(f".//{{{TrustVersion.WST13.value}}}Code").endswith("/status/invalid")
        assert reply.root.findtext(f".//{{{TrustVersion.WST13.value}}}Reason") == "The token was cancelled"
