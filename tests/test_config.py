"""Settings that name a choice or an address are checked when they are read, with a message saying what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from sts.config import _CHOICES, environment_for, load_settings


@pytest.mark.parametrize("name", sorted(_CHOICES))
def test_a_setting_that_names_a_choice_refuses_any_other_naming_the_choices(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    allowed = _CHOICES[name]
    for choice in allowed:  # every choice is accepted
        monkeypatch.setenv(f"STS_{name.upper()}", choice)
        assert getattr(load_settings(tmp_path), name) == choice
    monkeypatch.setenv(f"STS_{name.upper()}", "no-such-choice")
    expected = f"setting {name} must be one of {', '.join(allowed)}, not 'no-such-choice'"
    with pytest.raises(ValueError) as refused:
        load_settings(tmp_path)
    assert str(refused.value) == expected


@pytest.mark.parametrize("value", ["lb.example", "10.0.0.0/33", "10.0.0.1/8/8", "::g"])
def test_a_trusted_proxy_that_is_no_address_or_network_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STS_TRUSTED_PROXIES", f"10.0.0.1,{value}")
    with pytest.raises(ValueError, match=r"^setting trusted_proxies: .* is not an IP address or network"):
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


def test_settings_written_as_environment_variables_read_back_the_same(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"trusted_proxies": ("10.0.0.0/8", "192.0.2.7"), "ldap_start_tls": True, "ldap_pool_size": 7,
              "user_store": "ldaps://ldap.example", "ldap_claims": ("givenname=givenName", "emailaddress=mail")}
    for variable, value in environment_for(values).items():
        monkeypatch.setenv(variable, value)
    settings = load_settings(tmp_path)
    assert {name: getattr(settings, name) for name in values} == values
