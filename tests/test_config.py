"""Settings that name a choice or an address are checked when they are read, with a message saying what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from sts.config import load_settings


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("STS_KEY_SOURCE", "vault", "setting key_source must be one of files, database, pkcs11, not 'vault'"),
    ("STS_CLIENT_CERT_HEADER_FORMAT", "pem", "setting client_cert_header_format must be one of escaped-pem, xfcc"),
    ("STS_TRUSTED_PROXIES", "10.0.0.1,lb.example", "setting trusted_proxies: 'lb.example' is not an IP address"),
    ("STS_TRUSTED_PROXIES", "10.0.0.0/33", "setting trusted_proxies: '10.0.0.0/33' is not an IP address"),
])
def test_a_bad_farm_setting_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str,
                                                 value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(tmp_path)


def test_the_farm_settings_come_from_the_environment_as_a_node_gets_them(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STS_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")
    monkeypatch.setenv("STS_KEY_SOURCE", "pkcs11")
    monkeypatch.setenv("STS_LDAP_CLAIMS", "givenname=givenName,emailaddress=mail")
    settings = load_settings(tmp_path)
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.7")
    assert settings.key_source == "pkcs11"
    assert settings.ldap_claims == ("givenname=givenName", "emailaddress=mail")
