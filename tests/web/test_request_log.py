"""The correlation id and the JSON-lines log: honoured or made, answered in X-Request-ID, on every log record of
the request (the pipeline's "unexpected error" too), one JSON object a line from ``sts serve``, no secret in it."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.soak import kill_group, wait_until_answering
from live import running
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.web.loopback import free_port
from sts.web.request_log import (ACCESS_FORMAT, ACCESS_MESSAGE, AccessLineFormatter, JsonFormatter, RequestFacts,
                                 RequestObserver, request_id)
from uvicorn.logging import AccessFormatter
from trust_client import rst_envelope

ROOT = Path(__file__).resolve().parents[2]
SOAP12 = "application/soap+xml; charset=utf-8"
HEX_ID = r"[0-9a-f]{16}"


@pytest.mark.parametrize("given", [b"abc-123", b"A.b_C-9", b"x" * 64])
def test_a_sane_request_id_is_honoured(given: bytes) -> None:
    assert request_id([(b"x-request-id", given)]) == given.decode()
    assert request_id([(b"x-correlation-id", given)]) == given.decode()


@pytest.mark.parametrize("given", [b"", b"x" * 65, b"a b", b"a\r\nSet-Cookie: x=1", b"caf\xc3\xa9", b"<script>"])
def test_another_request_id_is_replaced(given: bytes) -> None:
    made = request_id([(b"x-request-id", given)])
    assert made != given.decode("latin-1")
    assert len(made) == 16 and int(made, 16) >= 0


def test_a_request_without_one_gets_a_fresh_id_each_time() -> None:
    assert request_id([]) != request_id([])


def test_a_json_line_is_one_object_with_the_request_fields() -> None:
    facts = RequestFacts("cid-1", "POST", "/services/sts", "127.0.0.1", 0.0, status=200, endpoint="sts",
                         binding="soap12", trust="1.3", request_type="issue", outcome="ok",
                         relying_party=DEMO_RP_ENDPOINT, user="alice")
    record = logging.LogRecord("sts.request", logging.INFO, __file__, 1, "POST %s\n200", ("/services/sts",), None)
    record.request = facts.fields(0.0015)
    record.correlation_id = facts.correlation_id
    line = JsonFormatter().format(record)
    assert "\n" not in line  # a message's newline cannot start a forged line
    entry = json.loads(line)
    assert entry["message"] == "POST /services/sts\n200" and entry["level"] == "info"
    assert entry["logger"] == "sts.request" and entry["correlation_id"] == "cid-1"
    assert entry["ts"].endswith("Z")
    assert {k: entry[k] for k in ("path", "status", "duration_ms", "binding", "trust", "request_type", "outcome",
                                  "relying_party", "user")} == {
        "path": "/services/sts", "status": 200, "duration_ms": 1.5, "binding": "soap12", "trust": "1.3",
        "request_type": "issue", "outcome": "ok", "relying_party": DEMO_RP_ENDPOINT, "user": "alice"}


@pytest.mark.parametrize(("noted", "status", "settled"), [
    ("ok", 200, "ok"),
    ("wst:InvalidScope", 500, "wst:InvalidScope"),
    ("", 415, "http:415"),  # refused before the pipeline (Content-Type)
    ("", 0, "http:500"),  # the application raised before it answered
    ("ok", 500, "http:500"),  # decided, then its rows could not be committed
])
def test_the_outcome_is_what_the_client_got(noted: str, status: int, settled: str) -> None:
    facts = RequestFacts("cid", "POST", "/services/sts", "127.0.0.1", 0.0, status=status, endpoint="sts",
                         outcome=noted)
    facts.settle()
    assert facts.outcome == settled
    assert (facts.binding, facts.trust, facts.request_type) == ("unknown", "unknown", "unknown")


def test_a_json_line_carries_the_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("sts.web.pipeline", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: boom" in entry["exception"] and entry["correlation_id"] is None


# --- the text access line -------------------------------------------------------------------------------------------


def _access_record(arguments: tuple[object, ...], level: int = logging.INFO, msg: str = ACCESS_MESSAGE
                   ) -> logging.LogRecord:
    record = logging.LogRecord("sts.access", level, __file__, 0, msg, arguments, None)
    record.correlation_id = "cid-7"
    return record


@pytest.mark.parametrize("arguments", [
    ("127.0.0.1:53996", "POST", "/services/sts", "1.1", 200),
    ("192.0.2.10:0", "POST", "/adfs/services/trust/13/usernamemixed", "1.1", 400),
    ("", "GET", "/console/api/audit?actor=alice&limit=5", "1.0", 500),  # no client address, a query string
    ("[2001:db8::1]:443", "GET", "/metrics", "2", 304),
    ("10.0.0.1:1", "GET", "/x", "1.1", 599),  # a status without a phrase
])
@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING, logging.CRITICAL])
def test_the_access_line_reads_as_uvicorns(arguments: tuple[object, ...], level: int) -> None:
    """The fast path writes what uvicorn's own formatter, with the same format, writes from the same record."""
    uvicorns = AccessFormatter(ACCESS_FORMAT, use_colors=False).format(_access_record(arguments, level))
    assert AccessLineFormatter(use_colors=False).format(_access_record(arguments, level)) == uvicorns
    assert uvicorns.endswith(" [cid-7]") and f'"{arguments[1]} {arguments[2]} HTTP/{arguments[3]}"' in uvicorns


def test_the_access_line_in_colour_and_other_records_are_uvicorns() -> None:
    arguments = ("127.0.0.1:1", "POST", "/services/sts", "1.1", 200)
    coloured = AccessLineFormatter(use_colors=True).format(_access_record(arguments))
    assert coloured == AccessFormatter(ACCESS_FORMAT, use_colors=True).format(_access_record(arguments))
    assert "\x1b[" in coloured
    try:
        raise RuntimeError("while answering")
    except RuntimeError:
        failed = _access_record(arguments)
        failed.exc_info = sys.exc_info()
    assert "RuntimeError: while answering" in AccessLineFormatter(use_colors=False).format(failed)


def _observed(app: object, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    import asyncio

    observer = RequestObserver(app, endpoints={}, access_lines=True)  # type: ignore[arg-type]
    scope = {"type": "http", "method": "GET", "path": "/healthz", "query_string": b"a=1", "root_path": "",
             "headers": [(b"x-request-id", b"line-1")], "client": ("192.0.2.1", 4321), "http_version": "1.1"}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: object) -> None:
        return None

    with caplog.at_level(logging.INFO, logger="sts.access"):
        try:
            asyncio.run(observer(scope, receive, send))
        except (RuntimeError, asyncio.CancelledError):
            pass
    return [record for record in caplog.records if record.name == "sts.access"]


def test_the_observer_writes_one_access_line_per_answer(caplog: pytest.LogCaptureFixture) -> None:
    async def answers(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    (record,) = _observed(answers, caplog)
    assert record.args == ("192.0.2.1:4321", "GET", "/healthz?a=1", "1.1", 204)
    assert AccessLineFormatter(use_colors=False).format(record) == (
        'INFO:     192.0.2.1:4321 - "GET /healthz?a=1 HTTP/1.1" 204 No Content [line-1]')


def test_a_request_that_raised_is_logged_as_the_500_it_gets(caplog: pytest.LogCaptureFixture) -> None:
    async def raises(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("a bug")

    (record,) = _observed(raises, caplog)
    assert record.args[-1] == 500  # type: ignore[index]


def test_a_request_that_ended_without_an_answer_has_no_access_line(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    async def cancelled(scope: object, receive: object, send: object) -> None:
        raise asyncio.CancelledError  # the client went away: nothing was sent, nothing is answered

    assert _observed(cancelled, caplog) == []


# --- over real HTTP (in process) ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("request-log-home")
    init_home(path)
    return path


def _issue(url: str, password: str = DEMO_PASSWORD, **headers: str) -> httpx.Response:
    body = rst_envelope(user=DEMO_USER, password=password, applies_to=DEMO_RP_ENDPOINT)
    return httpx.post(url, content=body, headers={"content-type": SOAP12, **headers}, timeout=30)


def test_the_id_is_answered_and_on_the_request_line(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    with running(home, log_format="json") as live, caplog.at_level(logging.DEBUG):
        given = _issue(live.sts_url, **{"x-request-id": "client-chosen.1"})
        made = _issue(live.sts_url, password="a-wrong-password-456")
        other = httpx.get(f"{live.base_url}/healthz", headers={"x-request-id": "bad id!"}, timeout=30)
    assert given.headers["x-request-id"] == "client-chosen.1"
    assert made.status_code >= 400 and len(made.headers["x-request-id"]) == 16
    assert other.headers["x-request-id"] != "bad id!"
    requests = [r for r in caplog.records if r.name == "sts.request"]
    assert [r.correlation_id for r in requests] == [  # type: ignore[attr-defined]
        "client-chosen.1", made.headers["x-request-id"], other.headers["x-request-id"]]
    ok, refused, health = (r.request for r in requests)  # type: ignore[attr-defined]
    assert ok["outcome"] == "ok" and ok["request_type"] == "issue" and ok["user"] == DEMO_USER
    assert ok["relying_party"] == DEMO_RP_ENDPOINT and ok["endpoint"] == "sts" and ok["status"] == 200
    assert ok["duration_ms"] > 0
    assert refused["outcome"] == "wst:FailedAuthentication" and refused["user"] == DEMO_USER
    assert "outcome" not in health and health["path"] == "/healthz"
    logged = caplog.text + "".join(json.dumps(r.request, default=str) for r in requests)  # type: ignore[attr-defined]
    assert DEMO_PASSWORD not in logged and "a-wrong-password-456" not in logged


def test_an_unexpected_error_names_the_request_id(home: Path, caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with running(home) as live:
        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(live.runtime.endpoint._service, "issue", broken)  # type: ignore[attr-defined]
        with caplog.at_level(logging.INFO, logger="sts"):
            response = _issue(live.sts_url, **{"x-correlation-id": "trace-me-42"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "trace-me-42"
    assert "unexpected error, correlation id trace-me-42" in caplog.text


# --- `sts serve` with log_format = "json" and "text" ---------------------------------------------------------------


def _serve(tmp_path: Path, log_format: str) -> tuple[str, subprocess.Popen[bytes], Path]:
    """``sts serve`` on a free loopback port, with the log format set in sts.toml; stderr (the log) to a file, and
    stdout (the banner, which shows the demo password, and uvicorn's text access lines) to ``serve.out`` beside it."""
    home = tmp_path / "home"
    init_home(home)
    config = home / "sts.toml"
    config.write_text(config.read_text().replace('log_format = "text"', f'log_format = "{log_format}"'))
    port = free_port()
    output = tmp_path / "serve.log"
    with output.open("wb") as log, output.with_suffix(".out").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sts", "--home", str(home), "serve", "--port", str(port)],
            stdout=out, stderr=log, start_new_session=True, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(base, process)
    except Exception:
        kill_group(process)
        raise
    return base, process, output


def _served(tmp_path: Path, log_format: str) -> Iterator[tuple[str, Path]]:
    base, process, output = _serve(tmp_path, log_format)
    try:
        yield base, output
    finally:
        kill_group(process)


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    yield from _served(tmp_path, "json")


@pytest.fixture
def text_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    yield from _served(tmp_path, "text")


def _wait_for(path: Path, needle: str, count: int) -> str:
    deadline = time.monotonic() + 10
    while path.read_text().count(needle) < count:  # a request's line is written once its answer is sent
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.05)
    return path.read_text()


def test_sts_serve_logs_one_json_object_a_line(json_server: tuple[str, Path]) -> None:
    base, output = json_server
    assert _issue(f"{base}/services/sts", **{"x-request-id": "json-line-1"}).status_code == 200
    assert _issue(f"{base}/services/sts", password="a-wrong-password-789").status_code >= 400
    text = _wait_for(output, '"logger":"sts.request"', 3)  # /healthz (the wait for the server), then the two
    entries = [json.loads(line) for line in text.splitlines()]  # every line is JSON (uvicorn's own lines too)
    (ok,) = [e for e in entries if e.get("correlation_id") == "json-line-1" and e["logger"] == "sts.request"]
    assert ok["outcome"] == "ok" and ok["user"] == DEMO_USER and ok["relying_party"] == DEMO_RP_ENDPOINT
    assert ok["remote"] == "127.0.0.1" and ok["path"] == "/services/sts" and ok["binding"] == "soap12"
    # The pipeline's own record of the refusal and the request line share the request's id.
    (fault,) = [e for e in entries if e["logger"] == "sts.web.pipeline" and "FailedAuthentication" in e["message"]]
    (refused,) = [e for e in entries if e["logger"] == "sts.request" and e.get("status", 200) >= 400]
    assert fault["correlation_id"] == refused["correlation_id"] and len(fault["correlation_id"]) == 16
    assert any(e["logger"].startswith("uvicorn") and e["correlation_id"] is None for e in entries)
    assert DEMO_PASSWORD not in text and "a-wrong-password-789" not in text


def test_sts_serve_text_lines_carry_the_id(text_server: tuple[str, Path]) -> None:
    base, output = text_server
    assert _issue(f"{base}/services/sts", **{"x-request-id": "text-line-1"}).status_code == 200
    refused = _issue(f"{base}/services/sts", password="a-wrong-password-789")
    access = _wait_for(output.with_suffix(".out"), '"POST /services/sts HTTP/1.1"', 2)
    text = _wait_for(output, "sts.web.pipeline: fault", 1)
    made = refused.headers["x-request-id"]
    assert re.search(r'"POST /services/sts HTTP/1.1" 200 OK \[text-line-1\]$', access, re.MULTILINE), access
    assert re.search(rf'"POST /services/sts HTTP/1.1" 400 Bad Request \[{made}\]$', access, re.MULTILINE), access
    assert access.count("[text-line-1]") == 1  # one line a request: uvicorn writes none of its own
    assert re.search(rf"\[{made}\] sts.web.pipeline: fault FailedAuthentication", text), text
    assert DEMO_PASSWORD not in text and "a-wrong-password-789" not in text + access
