"""``sts init`` creates the STS encryption key pair: separate from the signing key, idempotent, never replaced."""

from __future__ import annotations

import stat
from pathlib import Path

from sts.config import load_settings
from sts.tokens.crypto.keys import SigningKey
from sts.home import encryption_cert_path, encryption_key_path, init_home


def test_init_creates_a_separate_encryption_key_pair(tmp_path: Path) -> None:
    init_home(tmp_path, demo=False)
    settings = load_settings(tmp_path)
    key_path, cert_path = encryption_key_path(settings), encryption_cert_path(settings)
    assert key_path == tmp_path / "keys" / "sts-encryption.key"
    assert cert_path == tmp_path / "keys" / "sts-encryption.crt"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    encryption = SigningKey.load(key_path, cert_path)
    signing = SigningKey.load(settings.signing_key_path, settings.signing_cert_path)
    assert encryption.cert_der != signing.cert_der and not encryption.is_ec


def test_existing_home_gets_the_pair_and_keeps_it(tmp_path: Path) -> None:
    init_home(tmp_path, demo=False)
    settings = load_settings(tmp_path)
    encryption_key_path(settings).unlink()
    encryption_cert_path(settings).unlink()
    signing_before = settings.signing_key_path.read_bytes()
    report = init_home(tmp_path, demo=False)  # a home from before the encryption key existed
    assert str(encryption_cert_path(settings)) in report.created
    key_before = encryption_key_path(settings).read_bytes()
    report = init_home(tmp_path, demo=False)
    assert encryption_key_path(settings).read_bytes() == key_before
    assert settings.signing_key_path.read_bytes() == signing_before
    assert str(encryption_cert_path(settings)) not in report.created
