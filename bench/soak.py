"""`make soak`: N concurrent clients issue, validate, renew and cancel against `sts serve --workers 2`.

Each client repeats one token's life until the time is up: Issue (a SAML 2.0 token for the demo relying party,
Renewing Allow), Validate it (expects status/valid), Renew it, Cancel the renewal. The clients are coroutines
sharing one keep-alive httpx connection pool, so 64 of them need no 64 threads. Without ``--url`` the script
starts `sts serve --workers 2` on a fresh temporary home (``sts init``: the demo user and relying party) and stops
it with SIGTERM at the end (it must exit 0 after draining). It prints throughput (ops/s per kind and total),
p50/p99 latency per kind and the errors (count by kind and fault code, with one sample each), and exits 1 on any
error. The clients and the server share the machine's cores: the figures are for the whole machine.

Authentication is a UsernameToken with PasswordDigest (the demo user's digest secret, sealed in the store), so no
request pays for scrypt; a PasswordText soak would measure ``password_hash_n`` instead of the STS.

The same pieces drive the tests: tests/web/test_soak.py (a short soak, zero errors) and
tests/store/test_crash_safety.py (SIGKILL during a soak, restart, check what the clients saw acknowledged).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/soak.py` from any directory

# httpcore imports sniffio (an optional package) again for every lock it makes, paying a failed import each time
# when it is absent; None in sys.modules makes that import fail at once, which is what it would do anyway.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

import httpx  # noqa: E402
from lxml import etree  # noqa: E402

from sts import ns  # noqa: E402
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home  # noqa: E402
from sts.protocol.addressing import render_request_headers  # noqa: E402
from sts.protocol.soap import build_envelope  # noqa: E402
from sts.protocol.wsse.build import build_security_header  # noqa: E402
from sts.protocol.wstrust.render import render_rst  # noqa: E402
from sts.protocol.xmlsafe import parse  # noqa: E402
from sts.uris import RequestType, SoapVersion, TokenType, TrustVersion  # noqa: E402
from sts.web.loopback import free_port  # noqa: E402

KINDS = ("issue", "validate", "renew", "cancel")
VERSION = TrustVersion.WST13
SOAP = SoapVersion.SOAP12
STATUS_VALID = VERSION.uri("status/valid")


# --- what the clients saw ----------------------------------------------------------------------------------------


@dataclass
class Journal:
    """Every operation the clients saw acknowledged (a 200 with the expected content), timings and errors."""

    issued: list[str] = field(default_factory=list)  # token IDs from Issue answers
    renewed: list[tuple[str, str]] = field(default_factory=list)  # (renewed token, its successor)
    cancelled: list[str] = field(default_factory=list)
    validated: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, fault code or failure)
    samples: dict[tuple[str, str], str] = field(default_factory=dict)  # one message per (kind, code)

    def error(self, kind: str, code: str, sample: str) -> None:
        self.errors[kind, code] += 1
        self.samples.setdefault((kind, code), sample[:300])

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def token_ids(self) -> list[str]:
        """Every token ID an answer carried: issued and renewal successors (each must be unique)."""
        return self.issued + [new for _, new in self.renewed]


class OperationFailed(Exception):
    """An answer that is not the acknowledgement asked for: ``code`` is the fault code or what went wrong."""

    def __init__(self, code: str, sample: str) -> None:
        super().__init__(sample)
        self.code = code


# --- one client ----------------------------------------------------------------------------------------------------


def envelope(request_type: str, **rst_options: object) -> bytes:
    """A WS-Trust 1.3 RST in SOAP 1.2 with WS-Addressing and a PasswordDigest UsernameToken (fresh nonce)."""
    rst = render_rst(VERSION, request_type=request_type, **rst_options)  # type: ignore[arg-type]
    headers = render_request_headers(RequestType(request_type).request_action(VERSION))
    headers.append(build_security_header(DEMO_USER, DEMO_PASSWORD, digest=True, soap_ns=SOAP.value))
    return build_envelope(SOAP, rst, headers)


def fault_code(root: etree._Element) -> str:
    """The most specific fault code's local name (``wst:InvalidRequest`` -> ``InvalidRequest``), or ``no-fault``."""
    values = root.findall(f".//{{{ns.SOAP12}}}Fault//{{{ns.SOAP12}}}Value")
    if values and values[-1].text:
        return str(values[-1].text).rpartition(":")[2]
    return "no-fault"


def fault_reason(root: etree._Element) -> str:
    return root.findtext(f".//{{{ns.SOAP12}}}Reason/{{{ns.SOAP12}}}Text") or ""


async def call(client: httpx.AsyncClient, url: str, body: bytes) -> etree._Element:
    """POST one RST; the parsed RSTR, or OperationFailed (transport error, fault, or not XML)."""
    try:
        response = await client.post(url, content=body)
    except httpx.HTTPError as exc:
        raise OperationFailed(type(exc).__name__, str(exc) or type(exc).__name__) from None
    try:
        root = parse(response.content)
    except Exception as exc:  # noqa: BLE001 -- any unparsable answer is one error to count, never a crash
        raise OperationFailed(f"HTTP {response.status_code} not XML", f"{exc}: {response.text[:200]}") from None
    if response.status_code != 200:
        raise OperationFailed(fault_code(root), f"HTTP {response.status_code}: {fault_reason(root)}")
    return root


def token_id_of(root: etree._Element) -> str:
    """The issued token's ID: the KeyIdentifier of RequestedAttachedReference (the token itself may be encrypted)."""
    token_id = root.findtext(f".//{{{ns.WSSE}}}KeyIdentifier")
    if not token_id:
        raise OperationFailed("no token", etree.tostring(root)[:300].decode(errors="replace"))
    return str(token_id)


async def one_cycle(client: httpx.AsyncClient, url: str, journal: Journal) -> None:
    """Issue, Validate, Renew, Cancel one token; each acknowledged step is journalled as soon as it is seen."""
    kind = "issue"
    try:
        root = await timed(journal, kind, call(client, url, envelope(
            "Issue", applies_to=DEMO_RP_ENDPOINT, token_type_uri=TokenType.SAML20.value, renewing=(True, False))))
        token_id = token_id_of(root)
        journal.issued.append(token_id)
        kind = "validate"
        root = await timed(journal, kind, call(client, url, envelope(
            "Validate", applies_to=None, targets={"ValidateTarget": token_id},
            token_type_uri=VERSION.uri("RSTR/Status"))))
        status = root.findtext(f".//{{{VERSION.value}}}Status/{{{VERSION.value}}}Code")
        if status != STATUS_VALID:
            raise OperationFailed("not valid", f"{token_id}: {status}")
        journal.validated += 1
        kind = "renew"
        root = await timed(journal, kind, call(client, url, envelope(
            "Renew", applies_to=None, targets={"RenewTarget": token_id})))
        successor = token_id_of(root)
        journal.renewed.append((token_id, successor))
        kind = "cancel"
        await timed(journal, kind, call(client, url, envelope(
            "Cancel", applies_to=None, targets={"CancelTarget": successor})))
        journal.cancelled.append(successor)
    except OperationFailed as failure:
        journal.error(kind, failure.code, str(failure))


async def timed(journal: Journal, kind: str, operation: Awaitable[etree._Element]) -> etree._Element:
    """Await ``operation`` and record its latency under ``kind`` (only for acknowledged answers)."""
    start = time.perf_counter()
    root = await operation
    journal.latencies[kind].append(time.perf_counter() - start)
    return root


async def run_clients(url: str, clients: int, seconds: float, stop: asyncio.Event | None = None,
                      journal: Journal | None = None) -> Journal:
    """``clients`` concurrent clients cycling until ``seconds`` have passed (or ``stop`` is set), journalling into
    ``journal`` (default: a new one) as they go."""
    journal = journal if journal is not None else Journal()
    deadline = time.monotonic() + seconds
    stop = stop or asyncio.Event()
    tls = ssl.create_default_context()  # one for all clients: each would load the CA bundle again (0.1 s each)

    async def worker() -> None:
        # One keep-alive connection per client, as real clients have: httpcore's shared pool costs O(connections)
        # per request, which at 64 connections took more CPU than the requests themselves.
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=60, verify=tls,
                                     headers={"content-type": SOAP.content_type}) as client:
            while time.monotonic() < deadline and not stop.is_set():
                await one_cycle(client, url, journal)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return journal


# --- the server ----------------------------------------------------------------------------------------------------


def new_home(directory: Path) -> Path:
    """A fresh home as ``sts init`` makes it (keys, database, the demo user and relying party)."""
    init_home(directory)
    return directory


def start_server(home: Path, port: int, workers: int = 2, log: Path | None = None,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``sts serve --workers N`` in a new session (its own process group: the master and its workers); its output
    goes to ``log`` (default: serve.log in the home), ``env`` is added to the environment."""
    out = open(log or home / "serve.log", "ab")  # noqa: SIM115 -- the child keeps its copy; ours closes below
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port), "--workers", str(workers)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT, env={**os.environ, **(env or {})})
    finally:
        out.close()


def wait_until_answering(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until /healthz answers 200; RuntimeError if the server exits or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"`sts serve` exited with {process.returncode}")
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"`sts serve` did not answer {base_url}/healthz within {timeout:.0f} s")


def stop_server(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM (the graceful way); the exit status. A server that does not exit in time is killed, and says so."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise RuntimeError(f"`sts serve` did not exit within {timeout:.0f} s of SIGTERM") from None


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group (the uvicorn master and its workers): no shutdown code runs."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


@contextmanager
def serving(home: Path, workers: int = 2, env: dict[str, str] | None = None,
            ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``sts serve --workers N`` on a free loopback port for the block; yields (base URL, process)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = start_server(home, port, workers, env=env)
    try:
        wait_until_answering(base_url, process)
        yield base_url, process
    finally:
        if process.poll() is None:
            kill_group(process)


# --- the report ------------------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def report(journal: Journal, elapsed: float) -> str:
    lines = [f"{'kind':<9} {'ops':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"]
    errors_by_kind = Counter(kind for kind, _ in journal.errors.elements())
    total = 0
    for kind in KINDS:
        latencies = journal.latencies[kind]
        total += len(latencies)
        lines.append(f"{kind:<9} {len(latencies):>7} {len(latencies) / elapsed:>8.1f} "
                     f"{percentile(latencies, 0.5) * 1e3:>8.1f} {percentile(latencies, 0.99) * 1e3:>8.1f} "
                     f"{errors_by_kind[kind]:>7}")
    every = [value for kind in KINDS for value in journal.latencies[kind]]
    lines.append(f"{'total':<9} {total:>7} {total / elapsed:>8.1f} {percentile(every, 0.5) * 1e3:>8.1f} "
                 f"{percentile(every, 0.99) * 1e3:>8.1f} {journal.error_count:>7}")
    lines.append(f"tokens issued {len(journal.token_ids())} (Issue {len(journal.issued)}, "
                 f"Renew {len(journal.renewed)}), errors {journal.error_count}")
    for (kind, code), count in journal.errors.most_common():
        lines.append(f"  {kind} {code}: {count}  e.g. {journal.samples[kind, code]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    parser.add_argument("--seconds", type=float, default=30, help="how long the load runs (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="`sts serve --workers` (default 2)")
    parser.add_argument("--url", help="the STS endpoint of a running STS (its demo user and relying party), "
                                      "e.g. http://127.0.0.1:8080/services/sts; default: start one")
    args = parser.parse_args(argv)
    cores = f"{os.cpu_count() or 1} cores (load average {os.getloadavg()[0]:.1f} before the soak)"
    if args.url:
        print(f"soak: {args.clients} clients for {args.seconds:g} s against {args.url}; {cores} here")
        return _soak(args.url, args.clients, args.seconds)
    with tempfile.TemporaryDirectory(prefix="sts-soak-") as directory:
        home = new_home(Path(directory) / "home")
        with serving(home, args.workers) as (base_url, process):
            print(f"soak: {args.clients} clients for {args.seconds:g} s against `sts serve --workers {args.workers}` "
                  f"at {base_url} (fresh home); {cores} shared by the clients and the server; "
                  f"UsernameToken PasswordDigest (no scrypt per request)")
            status = _soak(f"{base_url}/services/sts", args.clients, args.seconds)
            started = time.monotonic()
            code = stop_server(process)
            print(f"SIGTERM: `sts serve` exited {code} after {time.monotonic() - started:.1f} s")
            if code != 0:
                status = 1
    return status


def _soak(url: str, clients: int, seconds: float) -> int:
    started, cpu = time.monotonic(), time.process_time()
    journal = asyncio.run(run_clients(url, clients, seconds))
    elapsed = time.monotonic() - started
    print(report(journal, elapsed))
    # The clients' own share of the machine: what the server did not get of the cores they share.
    print(f"the clients used {time.process_time() - cpu:.1f} CPU seconds in {elapsed:.1f} s "
          f"(the last cycles end after --seconds)")
    duplicates = len(journal.token_ids()) - len(set(journal.token_ids()))
    if duplicates:
        print(f"{duplicates} token IDs were issued twice")
    return 1 if journal.error_count or duplicates else 0


if __name__ == "__main__":
    sys.exit(main())
