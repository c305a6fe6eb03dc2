"""No secret reaches the log: passwords (text and digest), the STS's private keys, the secrets key.

Every logger of the package at DEBUG while requests succeed and fail (wrong password, unknown user, digest,
a request that fails inside the service), then the captured text is searched for each secret.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from sts.config import load_settings
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, encryption_key_path, init_home
from sts.model import RequestContext
from sts.runtime import build_runtime
from sts.xmltime import utcnow
from trust_client import rst_envelope


def _secrets(home: Path) -> list[str]:
    settings = load_settings(home)
    found = [DEMO_PASSWORD, "a-wrong-password-123"]
    for path in (settings.signing_key_path, encryption_key_path(settings)):
        body = "".join(line for line in path.read_text().splitlines() if not line.startswith("-----"))
        found.extend(body[i:i + 40] for i in range(0, len(body) - 40, 200))  # any stretch of the key
    found.append(base64.b64encode(settings.secrets_key_path.read_bytes()).decode())
    found.append(settings.secrets_key_path.read_bytes().hex())
    return found


def test_requests_good_and_bad_log_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "home"
    init_home(home)
    runtime = build_runtime(load_settings(home).with_bind("127.0.0.1", 8080, tls=False))
    requests = [
        dict(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT),
        dict(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT, digest=True),
        dict(user=DEMO_USER, password="a-wrong-password-123", applies_to=DEMO_RP_ENDPOINT),
        dict(user="nobody", password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT, digest=True),
        dict(user=DEMO_USER, password=DEMO_PASSWORD, applies_to="https://unknown.example/"),
    ]
    with caplog.at_level(logging.DEBUG):
        statuses = []
        for request in requests:
            ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=utcnow())
            statuses.append(runtime.endpoint.handle(rst_envelope(**request), ctx).status)  # type: ignore[arg-type]
    assert statuses[:2] == [200, 200] and all(status >= 400 for status in statuses[2:])
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert "FailedAuthentication" in logged  # the failures were logged ...
    for secret in _secrets(home):
        assert secret not in logged  # ... and no secret with them
