"""SIGTERM drains `sts serve`: requests in flight get their whole answer, new connections are refused, exit 0.

The requests in flight are BatchIssue collections (each entry a signed and encrypted SAML 2.0 token), several at
once, sized from one measured batch so that they are still running after the signal on a fast or a busy machine;
and one whose body the client finishes sending only once new connections are refused, so that the drain is shown
to be real whatever the machine's speed.
"""

from __future__ import annotations

import math
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from lxml import etree

from bench.soak import SOAP, VERSION, new_home, serving
from sts import ns
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER
from sts.protocol.addressing import render_request_headers
from sts.protocol.soap import build_envelope
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wstrust.render import render_rst

ENTRIES = 150  # tokens per BatchIssue request (the request stays within max_xml_namespaces)
IN_FLIGHT_SECONDS = 3.0  # how long the requests in flight should take together, at least


def _batch_issue(entries: int = ENTRIES) -> bytes:
    collection = etree.Element(f"{{{ns.WST13}}}RequestSecurityTokenCollection")
    for _ in range(entries):
        collection.append(render_rst(VERSION, applies_to=DEMO_RP_ENDPOINT, request_type="BatchIssue"))
    headers = render_request_headers(VERSION.uri("RST/BatchIssue"))
    headers.append(build_security_header(DEMO_USER, DEMO_PASSWORD, digest=True))
    return build_envelope(SOAP, collection, headers)


def _tokens_in(response: httpx.Response) -> int:
    """How many tokens a complete BatchIssue answer carries (a cut answer does not parse).

    lxml's own parser, not sts.protocol.xmlsafe: the answer is ours, and its size is beyond the request limits.
    """
    assert response.status_code == 200, response.text[:500]
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    return len(etree.fromstring(response.content, parser).findall(f".//{{{ns.WST13}}}RequestedSecurityToken"))


class _InFlight:
    """``count`` BatchIssue requests posted at once from threads; each one's answer (or error) and end time."""

    def __init__(self, url: str, count: int, entries: int = ENTRIES) -> None:
        self.results: list[httpx.Response | Exception] = []
        self.finished: list[float] = []
        self._lock = threading.Lock()
        self._sending = threading.Semaphore(0)
        self._threads = [threading.Thread(target=self._post, args=(url, _batch_issue(entries))) for _ in range(count)]
        for thread in self._threads:
            thread.start()
        for _ in range(count):  # every request is on its way before the test goes on
            assert self._sending.acquire(timeout=60)
        time.sleep(0.5)  # and has reached the server

    def _post(self, url: str, body: bytes) -> None:
        outcome: httpx.Response | Exception
        try:
            with httpx.Client(timeout=120, event_hooks={"request": [lambda _: self._sending.release()]}) as client:
                outcome = client.post(url, content=body, headers={"content-type": SOAP.content_type})
        except httpx.HTTPError as exc:
            outcome = exc
        with self._lock:
            self.results.append(outcome)
            self.finished.append(time.monotonic())

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=120)


class _SlowBody:
    """A request whose headers and first half of the body are sent now, the rest when ``finish()`` is called."""

    def __init__(self, base_url: str, path: str, body: bytes) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self._socket = socket.create_connection((host, int(port)), timeout=120)
        self._rest = body[len(body) // 2:]
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {SOAP.content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self._socket.sendall(head + body[:len(body) // 2])

    def finish(self) -> tuple[int, bytes]:
        """Send the rest, read the answer to its end (the server closes after it: it is shutting down)."""
        self._socket.sendall(self._rest)
        return self.answer()

    def answer(self) -> tuple[int, bytes]:
        """Read what the server answers (with or without the rest of the body sent) to its end."""
        received = b""
        while chunk := self._socket.recv(65536):
            received += chunk
        self._socket.close()
        head, _, body = received.partition(b"\r\n\r\n")
        return int(head.split()[1]), body


def _refused(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/healthz", timeout=5)
    except httpx.ConnectError:
        return True
    return False


@pytest.mark.parametrize("workers", [2, 1])
def test_sigterm_drains_requests_in_flight_refuses_new_ones_and_exits_0(tmp_path: Path, workers: int) -> None:
    home = new_home(tmp_path / "home")
    grace = 60
    with serving(home, workers, env={"STS_GRACEFUL_SHUTDOWN_SECONDS": str(grace)}) as (base_url, process):
        url = f"{base_url}/services/sts"
        for _ in range(2):  # the second batch is timed: the first one pays for cold caches, and would make too few
            start = time.monotonic()
            assert _tokens_in(httpx.post(url, content=_batch_issue(), headers={"content-type": SOAP.content_type},
                                         timeout=120)) == ENTRIES
            one = time.monotonic() - start
        slow = _SlowBody(base_url, "/services/sts", _batch_issue(entries=1))
        in_flight = _InFlight(url, count=min(24, max(8, math.ceil(IN_FLIGHT_SECONDS * workers / one))))
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # long enough for every process to close its listening socket
        assert _refused(base_url), "a new connection was accepted after SIGTERM"
        # The drain is real: a request already in flight is still read and answered after new connections are
        # refused.
        status, answer = slow.finish()
        assert status == 200, answer[:500]
        assert answer.count(b"RequestedSecurityToken>") == 2  # the one token, opened and closed
        assert process.wait(timeout=grace + 30) == 0
        exited = time.monotonic() - signalled
        in_flight.join()
    assert all(isinstance(result, httpx.Response) for result in in_flight.results), in_flight.results
    assert [_tokens_in(result) for result in in_flight.results] == [ENTRIES] * len(in_flight.results)  # type: ignore[arg-type]
    assert exited < grace


def test_requests_longer_than_the_grace_period_are_cut_at_graceful_shutdown_seconds(tmp_path: Path) -> None:
    """A request whose body never finishes arriving outlasts any grace period, whatever the machine's speed: it is
    cut at the deadline with uvicorn's 500. The BatchIssue requests beside it, sized from a measured batch to need
    several times the grace period, are answered too: their tokens, or the 500 of a cut."""
    home = new_home(tmp_path / "home")
    grace = 1  # seconds (the setting is an integer)
    with serving(home, 2, env={"STS_GRACEFUL_SHUTDOWN_SECONDS": str(grace)}) as (base_url, process):
        url = f"{base_url}/services/sts"
        for _ in range(2):  # the second batch is timed (the first pays for cold caches)
            start = time.monotonic()
            assert _tokens_in(httpx.post(url, content=_batch_issue(200), headers={"content-type": SOAP.content_type},
                                         timeout=120)) == 200
            one = time.monotonic() - start
        never_finished = _SlowBody(base_url, "/services/sts", _batch_issue(entries=1))
        in_flight = _InFlight(url, count=min(64, max(24, math.ceil(4 * grace * 2 / one))), entries=200)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        exited = time.monotonic() - signalled
        in_flight.join()
        status, _ = never_finished.answer()
    assert grace * 0.9 <= exited < 15, f"exit took {exited:.1f} s with graceful_shutdown_seconds = {grace:g}"
    assert status == 500  # cut at the deadline: an answer, not a reset
    # Every request got an answer: the finished ones their tokens, the ones cut at the deadline uvicorn's 500.
    statuses = sorted(result.status_code for result in in_flight.results if isinstance(result, httpx.Response))
    assert len(statuses) == len(in_flight.results) and set(statuses) <= {200, 500}, in_flight.results


def test_every_worker_process_runs_the_draining_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--workers`` > 1: the supervisor's workers take over their accept queue at shutdown, as one process does."""
    import uvicorn
    from uvicorn.supervisors import multiprocess

    from sts.cli.serve import _DrainingSupervisor
    from sts.web.draining import DrainingServer

    monkeypatch.setattr(multiprocess, "Process", multiprocess.Process)  # undone after the test
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    config = uvicorn.Config("sts.web.asgi:app_from_env", factory=True, workers=2)
    with socket.socket() as listener:
        try:
            supervisor = _DrainingSupervisor(config, sockets=[listener])
            worker = multiprocess.Process(supervisor.config, supervisor.sockets)  # as the supervisor makes each one
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    assert type(worker.server) is DrainingServer
