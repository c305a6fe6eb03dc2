"""walkthrough (notebooks/walkthrough.py), the notebooks' support code: the recorder, the pictures, the sandbox of live servers."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest
import requests

import walkthrough as wt
from sts.rp.demo_service import DATEOFBIRTH, GIVENNAME, SURNAME


@pytest.fixture(scope="module")
def sandbox():
    box = wt.Sandbox.start()
    yield box
    box.stop()


def test_recorder_captures_request_and_reply_pairs(sandbox) -> None:
    with sandbox.recorder.section() as calls:
        result = sandbox.client("alice", "wonderland").issue_for_service(sandbox.service_wsdl_url)
        greeting = sandbox.service_client(result).service.Hello("hi")
    assert "Alice Liddell" in greeting
    soap = [call for call in calls if call.is_soap]
    assert [(c.source, c.target) for c in soap] == [("Client", "STS"), ("Client", "Service A")]
    issue, hello = soap
    assert issue.request_label == "RST/Issue" and issue.reply_label == "200 RSTRC/IssueFinal"
    assert b"UsernameToken" in issue.request_body and b"EncryptedAssertion" in issue.response_body
    assert hello.reply_label == "200 HelloResponse" and b"EncryptedAssertion" in hello.request_body
    assert any(c.method == "GET" and c.path.endswith("?wsdl") for c in calls)  # the WSDLs zeep loaded


def test_faults_are_labelled_with_their_code(sandbox) -> None:
    sandbox.add_user("walk-noage", "pw", [(GIVENNAME, "No"), (SURNAME, "Age")])
    from sts.client.trust import TrustFault

    with sandbox.recorder.section() as calls, pytest.raises(TrustFault):
        sandbox.client("walk-noage", "pw").issue(sandbox.service_url, claims=(GIVENNAME, SURNAME, DATEOFBIRTH))
    (call,) = [c for c in calls if c.is_soap]
    assert call.status == 500 and call.fault and call.fault.endswith("RequestFailed")
    assert call.reply_label.startswith("500 Fault")


def _exchange(source: str, target: str, status: int = 200) -> wt.Exchange:
    return wt.Exchange(source=source, target=target, method="POST", url="http://127.0.0.1:1/services/sts",
                       request_headers={}, request_body=b"<x/>", status=status, response_headers={},
                       response_body=b"", elapsed_ms=1.0)


def test_sequence_diagram_has_one_arrow_per_request_and_per_reply() -> None:
    calls = [_exchange("Client", "STS"), _exchange("Client", "Service A", 500), _exchange("Client", "STS")]
    svg = wt.sequence_diagram(calls, title="three calls")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count('class="msg request"') == 3 and svg.count('class="msg reply"') == 3
    assert svg.count('class="lifeline"') == 3
    assert svg._repr_svg_() == str(svg)


def test_recorded_diagram_matches_the_recorded_calls(sandbox) -> None:
    svg = sandbox.recorder.sequence_diagram()
    assert svg.count('class="msg request"') == len(sandbox.recorder.calls())
    assert svg.count('class="msg ') == 2 * len(sandbox.recorder.calls())


def test_pretty_xml_shortens_base64_but_not_uris() -> None:
    text = wt.pretty_xml(b"<a><b>" + b"QUJD" * 40 + b"</b><c>http://docs.oasis-open.org/ws-sx/ws-trust/200512/"
                         b"RSTRC/IssueFinal</c></a>")
    assert "(160 chars)" in text and "RSTRC/IssueFinal" in text
    assert "<span" in wt.show_xml(b"<a>x</a>", "title")._repr_html_()


def test_timeline_draws_bars_segments_and_events() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    bars = [wt.TimelineBar("token 1", t0, t0 + timedelta(minutes=2),
                           [(t0, "valid"), (t0 + timedelta(seconds=30), "renewed")])]
    events = [wt.TimelineEvent(t0, "issued", "token 1"), wt.TimelineEvent(t0 + timedelta(seconds=30), "renewed",
                                                                          "token 1")]
    svg = wt.timeline(bars, events)
    assert svg.count('class="segment ') == 2 and svg.count('class="event"') == 2


def test_sandbox_starts_and_stops_cleanly() -> None:
    box = wt.Sandbox.start(service_a=False)
    home, port = box.home, box.sts.port
    assert requests.get(box.base_url + "/healthz", timeout=5).json() == {"status": "ok"}
    box.stop()
    assert not box.running and not home.exists()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # the port is free again


def test_a_busy_port_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(wt.SandboxError, match=f"port {port} .* busy"):
            wt.ServerThread(object(), port=port)
