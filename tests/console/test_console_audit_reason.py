"""The console's audit view names what failed in a refused request, while the wire fault stays generic."""

from __future__ import annotations

from starlette.testclient import TestClient

from signing import make_client  # type: ignore[import-not-found]

from sts.admin import client_test as probe_core
from sts.errors import FailedAuthentication


def test_the_audit_view_shows_the_refusal_reason(client: TestClient, admin: str) -> None:
    key, cert, _ = make_client("stranger")  # never registered
    probe = probe_core.build_probe("http://testserver/services/sts", key, cert, applies_to="https://service-a.example/")
    reply = client.post("/services/sts", content=probe.body, headers=probe.headers)
    assert reply.status_code == 400  # a SOAP 1.2 sender fault
    assert FailedAuthentication.reason in reply.text and "not registered" not in reply.text  # generic on the wire
    html = client.get("/console/audit?outcome=fault&event=auth-failed").text
    row = next(line for line in html.splitlines() if probe.message_id in line)
    assert "<td>auth-failed</td>" in row and "<td>wst:FailedAuthentication</td>" in row
    assert "reason=the signing certificate is not registered" in row
