"""``GET /metrics``: the counters, the exposition (read back by prometheus_client's parser), bounded labels, the
access rule, the workers' snapshots adding up, and the figures over real HTTP after real requests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bench.soak import serving
from live import running
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.uris import SoapVersion, TrustVersion
from sts.web.proxies import origin_of
from sts.web.metrics import (BUCKETS, DIRECTORY_ENV, MAX_FAULT_CODES, Metrics, Snapshot, StoreSizes, may_scrape, render,
                             worker_directory)
from trust_client import post, rst_envelope

UNREGISTERED_RP = "https://elsewhere.example/app"


def _parse(text: str) -> dict[str, list[Sample]]:
    """Every sample by metric family, through prometheus_client's parser (which rejects malformed text)."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, (name, labels, samples)
    return matching[0]


def _issue(metrics: Metrics, seconds: float, *, outcome: str = "ok", rp: str | None = DEMO_RP_ENDPOINT,
           endpoint: str = "usernamemixed") -> None:
    metrics.observe(endpoint=endpoint, binding="soap12", trust="1.3", request_type="issue", outcome=outcome,
                    relying_party=rp if outcome == "ok" else None, seconds=seconds)


def _registered(applies_to: str) -> str | None:
    return DEMO_RP_ENDPOINT if applies_to.rstrip("/") == DEMO_RP_ENDPOINT.rstrip("/") else None


def _rendered(metrics: Metrics, sizes: StoreSizes | None = None) -> dict[str, list[Sample]]:
    snapshot, processes = metrics.node_snapshot()
    return _parse(render(snapshot, sizes=sizes, processes=processes, relying_party_of=_registered))


def test_requests_faults_and_tokens_are_counted() -> None:
    metrics = Metrics()
    _issue(metrics, 0.0015)
    _issue(metrics, 0.003)
    _issue(metrics, 0.0004, outcome="wst:FailedAuthentication")
    families = _rendered(metrics, StoreSizes(tokens=7, nonces=3))
    requests = families["sts_requests"]
    labels = dict(endpoint="usernamemixed", binding="soap12", trust="1.3", request_type="issue")
    assert _value(requests, "sts_requests_total", **labels, outcome="ok") == 2
    assert _value(requests, "sts_requests_total", **labels, outcome="fault") == 1
    assert _value(families["sts_faults"], "sts_faults_total", code="wst:FailedAuthentication") == 1
    assert _value(families["sts_tokens_issued"], "sts_tokens_issued_total", relying_party=DEMO_RP_ENDPOINT) == 2
    assert _value(families["sts_tokens_stored"], "sts_tokens_stored") == 7
    assert _value(families["sts_replay_cache_entries"], "sts_replay_cache_entries") == 3
    assert _value(families["sts_metrics_processes"], "sts_metrics_processes") == 1


def test_the_histogram_is_cumulative_and_sums_the_seconds() -> None:
    metrics = Metrics()
    for seconds in (0.0004, 0.001, 0.0015, 0.2, 30.0):
        _issue(metrics, seconds)
    latency = _rendered(metrics)["sts_request_duration_seconds"]
    buckets = {float(s.labels["le"]): s.value for s in latency if s.name.endswith("_bucket")}
    assert sorted(buckets) == [*BUCKETS, float("inf")]
    # "le" is inclusive: 1 ms is in the 0.001 bucket; 30 s only in +Inf.
    assert (buckets[0.0005], buckets[0.001], buckets[0.0025], buckets[0.25], buckets[10.0]) == (1, 2, 3, 4, 4)
    assert buckets[float("inf")] == _value(latency, "sts_request_duration_seconds_count") == 5
    assert _value(latency, "sts_request_duration_seconds_sum") == pytest.approx(30.2029)


def test_label_values_are_bounded() -> None:
    metrics = Metrics(max_applies_to=3)
    metrics.observe(endpoint="/evil\n", binding="soap9", trust="1.9", request_type="Steal", outcome="ok",
                    relying_party=None, seconds=0.001)
    for n in range(MAX_FAULT_CODES + 5):
        _issue(metrics, 0.001, outcome=f"wst:Code{n}")
    for n in range(10):
        _issue(metrics, 0.001, rp=f"https://junk{n}.example/")
    families = _rendered(metrics)
    assert _value(families["sts_requests"], "sts_requests_total", endpoint="other", binding="other", trust="other",
                  request_type="other", outcome="ok") == 1
    faults = families["sts_faults"]
    assert len(faults) == MAX_FAULT_CODES + 1 and _value(faults, "sts_faults_total", code="other") == 5
    # Three distinct AppliesTo values are remembered (all unregistered), the seven after them count as "other".
    issued = families["sts_tokens_issued"]
    assert _value(issued, "sts_tokens_issued_total", relying_party="unregistered") == 3
    assert _value(issued, "sts_tokens_issued_total", relying_party="other") == 7


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    odd = 'https://odd.example/"quoted"\\back\nline'
    _issue(metrics, 0.001, rp=odd)
    snapshot, _ = metrics.node_snapshot()
    text = render(snapshot, sizes=None, processes=1, relying_party_of=lambda applies_to: applies_to)
    assert _value(_parse(text)["sts_tokens_issued"], "sts_tokens_issued_total", relying_party=odd) == 1


def test_worker_snapshots_add_up(tmp_path: Path) -> None:
    """Two workers of one node: each scrape answers the node's totals, whichever worker it reaches."""
    first, second = Metrics(tmp_path, flush_seconds=3600), Metrics(tmp_path, flush_seconds=3600)
    try:
        for _ in range(3):
            _issue(first, 0.002)
        _issue(second, 0.004)
        _issue(second, 0.004, outcome="wst:InvalidScope")
        first.flush()
        second.flush()
        for scraped in (first, second):
            families = _rendered(scraped)
            labels = dict(endpoint="usernamemixed", binding="soap12", trust="1.3", request_type="issue")
            assert _value(families["sts_requests"], "sts_requests_total", **labels, outcome="ok") == 4
            assert _value(families["sts_request_duration_seconds"], "sts_request_duration_seconds_count",
                          **labels) == 5
            assert _value(families["sts_faults"], "sts_faults_total", code="wst:InvalidScope") == 1
            assert _value(families["sts_metrics_processes"], "sts_metrics_processes") == 2
    finally:
        first.close()
        second.close()


def test_a_snapshot_survives_the_round_trip() -> None:
    metrics = Metrics()
    _issue(metrics, 0.002)
    _issue(metrics, 0.7, outcome="wsse:FailedAuthentication")
    snapshot = metrics.snapshot()
    assert Snapshot.from_json(snapshot.to_json()) == snapshot


def test_a_foreign_snapshot_file_is_left_out(tmp_path: Path) -> None:
    metrics = Metrics(tmp_path, flush_seconds=3600)
    try:
        (tmp_path / "worker-1-aa.json").write_text('{"requests": [["too", "few", 1]], "latency": [], '
                                                   '"faults": {}, "issued": {}}')
        (tmp_path / "worker-2-bb.json").write_text("{not json")
        _issue(metrics, 0.001)
        snapshot, processes = metrics.node_snapshot()
        assert processes == 1 and sum(snapshot.requests.values()) == 1
    finally:
        metrics.close()


@pytest.mark.parametrize(("client", "headers", "public", "token", "allowed"), [
    ("127.0.0.1", {}, False, "", True),
    ("::1", {}, False, "", True),
    ("192.0.2.7", {}, False, "", False),
    ("192.0.2.7", {}, True, "", True),
    ("192.0.2.7", {"authorization": "Bearer s3cret-token"}, False, "s3cret-token", True),
    ("192.0.2.7", {"authorization": "Bearer wrong"}, False, "s3cret-token", False),
    ("192.0.2.7", {"authorization": "Bearer "}, False, "", False),
    # A reverse proxy on the same host: the client is not local.
    ("127.0.0.1", {"x-forwarded-for": "198.51.100.4"}, False, "", False),
    ("127.0.0.1", {"forwarded": "for=198.51.100.4"}, False, "", False),
    ("", {}, False, "", False),
])
def test_who_may_scrape(client: str, headers: dict[str, str], public: bool, token: str, allowed: bool) -> None:
    scope = {"client": (client, 40000) if client else None,
             "headers": [(name.encode(), value.encode()) for name, value in headers.items()]}
    assert may_scrape(origin_of(scope), headers.get("authorization", ""), public=public, token=token) is allowed


def test_observe_is_cheap() -> None:
    """Cheap enough to leave on: ≈ 3 µs of CPU a request on this machine class. The bound is loose (a shared, busy
    machine slows every loop), so it catches a regression by an order of magnitude: a lock wait, a query, a write."""
    metrics = Metrics()
    rounds = []
    for _ in range(5):
        start = time.thread_time()  # this thread's CPU time: a test process's server threads do not count
        for _ in range(20_000):
            _issue(metrics, 0.0015)
        rounds.append((time.thread_time() - start) / 20_000)
    assert min(rounds) < 20e-6, rounds


# --- over real HTTP -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("metrics-home")
    init_home(path)
    return path


@pytest.fixture(scope="module")
def base_url(home: Path) -> Iterator[str]:
    with running(home, metrics_token="scrape-me", allow_unregistered_audiences=True) as live:
        yield live.base_url


def _scrape(base_url: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{base_url}/metrics", headers=headers, timeout=30)


def test_real_requests_show_in_the_figures(base_url: str) -> None:
    before = _parse(_scrape(base_url).text)
    url = f"{base_url}/adfs/services/trust/13/usernamemixed"
    assert post(url, rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT)).status == 200
    assert post(url, rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=UNREGISTERED_RP)).status == 200
    refused = post(url, rst_envelope(user=DEMO_USER, password="not-the-password", applies_to=DEMO_RP_ENDPOINT))
    assert refused.status >= 400
    old_soap = post(f"{base_url}/services/sts", rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD,
                                                             applies_to=DEMO_RP_ENDPOINT, soap=SoapVersion.SOAP11,
                                                             version=TrustVersion.WST2005), SoapVersion.SOAP11)
    assert old_soap.status == 200
    assert httpx.post(f"{base_url}/services/sts", content=b"<x/>", headers={"content-type": "text/plain"}).status_code \
        == 415

    response = _scrape(base_url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    after = _parse(response.text)

    def grew(family: str, name: str, **labels: str) -> float:
        old = [s for s in before.get(family, []) if s.name == name and s.labels == labels]
        return _value(after[family], name, **labels) - (old[0].value if old else 0)

    issue = dict(binding="soap12", trust="1.3", request_type="issue")
    assert grew("sts_requests", "sts_requests_total", endpoint="usernamemixed", **issue, outcome="ok") == 2
    # A refused password check fails before the RST is read: its request type is not known yet.
    assert grew("sts_requests", "sts_requests_total", endpoint="usernamemixed", binding="soap12", trust="1.3",
                request_type="unknown", outcome="fault") == 1
    assert grew("sts_requests", "sts_requests_total", endpoint="sts", binding="soap11", trust="2005",
                request_type="issue", outcome="ok") == 1
    assert grew("sts_faults", "sts_faults_total", code="wst:FailedAuthentication") == 1
    assert grew("sts_faults", "sts_faults_total", code="http:415") == 1
    assert grew("sts_tokens_issued", "sts_tokens_issued_total", relying_party=DEMO_RP_ENDPOINT) == 2
    assert grew("sts_tokens_issued", "sts_tokens_issued_total", relying_party="unregistered") == 1
    assert grew("sts_request_duration_seconds", "sts_request_duration_seconds_count", endpoint="usernamemixed",
                **issue) == 2
    assert _value(after["sts_tokens_stored"], "sts_tokens_stored") >= 3
    assert _value(after["sts_replay_cache_entries"], "sts_replay_cache_entries") >= 0


def test_a_forwarded_request_needs_the_token(base_url: str) -> None:
    forwarded = {"x-forwarded-for": "198.51.100.4"}
    assert _scrape(base_url, **forwarded).status_code == 403
    assert _scrape(base_url, **forwarded, authorization="Bearer wrong").status_code == 403
    assert _scrape(base_url, **forwarded, authorization="Bearer scrape-me").status_code == 200


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home)
    with running(home, metrics_enabled=False) as live:
        assert _scrape(live.base_url).status_code == 404
        reply = post(live.sts_url, rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT))
        assert reply.status == 200


def test_the_workers_of_sts_serve_add_up(tmp_path: Path) -> None:
    """``sts serve --workers 2``: whichever worker a scrape reaches, it counts every worker's requests."""
    home = tmp_path / "home"
    init_home(home)
    with serving(home, workers=2) as (base, process):
        url = f"{base}/adfs/services/trust/13/usernamemixed"
        sent = 8
        for _ in range(sent):  # a new connection each: the kernel spreads them over the workers
            body = rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT, digest=True)
            assert post(url, body).status == 200
        time.sleep(1.5)  # a worker writes its snapshot within a second of a change
        for _ in range(6):
            families = _parse(_scrape(base).text)
            assert _value(families["sts_tokens_issued"], "sts_tokens_issued_total",
                          relying_party=DEMO_RP_ENDPOINT) == sent
            assert sum(s.value for s in families["sts_requests"]) == sent
            assert _value(families["sts_metrics_processes"], "sts_metrics_processes") in (1, 2)
        process.terminate()  # a graceful stop removes the node's snapshot directory
        assert process.wait(timeout=60) == 0


def test_sts_serve_names_a_fresh_directory_for_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DIRECTORY_ENV, raising=False)
    with worker_directory(1) as none:
        assert none is None and DIRECTORY_ENV not in os.environ
    with worker_directory(4) as directory:
        assert directory is not None and directory.is_dir() and not any(directory.iterdir())
        assert os.environ[DIRECTORY_ENV] == str(directory)
        metrics = Metrics.from_environment()
        metrics.close()
        assert metrics.directory == directory
    assert DIRECTORY_ENV not in os.environ and not directory.exists()
