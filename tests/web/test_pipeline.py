"""The transport-free pipeline: unexpected failures become a fixed RequestFailed fault, never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

from lxml import etree

from sts import ns
from sts.config import load_settings
from sts.model import RequestContext
from sts.runtime import build_runtime
from sts.xmltime import utcnow
from trust_client import Reply, rst_envelope


class ExplodingProvider:
    def issue(self, *args: object) -> object:
        raise RuntimeError("internal secret: disk on fire at /var/lib/x")


def test_unexpected_error_is_request_failed_with_correlation_id(sts_home: Path, demo, caplog) -> None:
    runtime = build_runtime(load_settings(sts_home).with_bind("127.0.0.1", 8080, tls=False))
    runtime.service._provider = ExplodingProvider()  # type: ignore[attr-defined]
    ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=utcnow())
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], digest=True)
    with caplog.at_level(logging.ERROR, logger="sts.web.pipeline"):
        response = runtime.endpoint.handle(body, ctx)
    reply = Reply(response.status, response.content_type, etree.fromstring(response.body))
    assert reply.fault_code == (ns.WST13, "RequestFailed")
    assert reply.fault_reason == "The specified request failed"
    assert response.status == 500
    assert b"disk on fire" not in response.body and b"Traceback" not in response.body
    assert "correlation id" in caplog.text


def test_empty_body_is_invalid_request(sts_home: Path) -> None:
    runtime = build_runtime(load_settings(sts_home).with_bind("127.0.0.1", 8080, tls=False))
    ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=utcnow())
    body = f"<s:Envelope xmlns:s='{ns.SOAP12}'><s:Body/></s:Envelope>".encode()
    response = runtime.endpoint.handle(body, ctx)
    reply = Reply(response.status, response.content_type, etree.fromstring(response.body))
    assert reply.fault_code == (ns.WST13, "InvalidRequest")
