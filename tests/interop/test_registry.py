"""A peer whose driver cannot be loaded is skipped with the reason in every cell, and --strict fails on it."""

from __future__ import annotations

from datetime import UTC, datetime

from interop.matrix import TokenRow, run_token_cases
from interop.model import Expected, Status, TokenCase
from interop.peers import registry
from interop.report import Report, render_markdown


def test_an_unloadable_peer_is_skipped_with_the_reason(monkeypatch) -> None:
    monkeypatch.setattr(registry, "VERIFIERS", (("ghost", "interop.peers.no_such_driver"),))
    (peer,) = registry.verifier_peers()
    assert peer.name == "ghost"
    assert "interop.peers.no_such_driver cannot be imported" in (peer.unavailable() or "")
    case = TokenCase(name="c", saml="2.0", encrypted=False, signature="rsa-sha256", data_encryption=None,
                     key_transport=None, token=b"<x/>", rstr=b"", sts_cert_pem=b"", rp_key_pem=None,
                     expected=Expected("u", "https://rp/"))
    (row,) = run_token_cases([case], [peer], progress=lambda line: None)
    assert isinstance(row, TokenRow) and row.cells["ghost"].status is Status.SKIP
    report = Report("http://sts", True, [(peer.name, peer.about, peer.unavailable())], [row], [], [],
                    datetime.now(UTC), 1.0)
    assert not report.failed and len(report.skipped) == 1  # never a pass, never silently dropped
    markdown = render_markdown(report)
    assert "| ghost | could not be loaded | no: interop.peers.no_such_driver cannot be imported" in markdown
    assert "token `c` × ghost: **skipped**: interop.peers.no_such_driver cannot be imported" in markdown


def test_every_registered_peer_loads_here() -> None:
    names = [p.name for p in [*registry.verifier_peers(), *registry.client_peers()]]
    assert all(not isinstance(p, registry.Missing) for p in [*registry.verifier_peers(), *registry.client_peers()])
    assert len(names) == 8
