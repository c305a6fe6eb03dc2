"""The algorithm tables and the one legacy-algorithm rule."""

from __future__ import annotations

import pytest

from sts.admin.algorithms import (DATA_ENCRYPTIONS, KEY_TRANSPORTS, KEY_TYPES, LEGACY, SIGNATURES, AlgorithmChoice,
                                  check_legacy, check_legacy_names, choose, legacy_warning, short_name)
from sts.admin.base import ConfirmationRequired, InvalidInput
from sts.uris import DataEncryption, KeyTransport, KeyType, SignatureAlgorithm

SAFE = AlgorithmChoice()
SHA1 = AlgorithmChoice(signature=SignatureAlgorithm.RSA_SHA1)
ALL_LEGACY = AlgorithmChoice(SignatureAlgorithm.RSA_SHA1, DataEncryption.AES128_CBC, KeyTransport.RSA_1_5)


def test_the_defaults_are_not_legacy() -> None:
    assert SAFE.named() == {"signature": "rsa-sha256", "data_encryption": "aes256-gcm",
                            "key_transport": "rsa-oaep-mgf1p"}
    assert SAFE.legacy() == {} and check_legacy(SAFE, subject="x", opted_in=False) == ()


def test_every_legacy_name_is_in_a_table_and_has_its_risk() -> None:
    known = {*SIGNATURES, *DATA_ENCRYPTIONS, *KEY_TRANSPORTS}
    assert set(LEGACY) == {"rsa-sha1", "rsa-1_5", "aes256-cbc", "aes128-cbc"} and set(LEGACY) <= known
    assert all(len(risk) > 40 for risk in LEGACY.values())


def test_without_the_opt_in_a_legacy_choice_needs_confirmation() -> None:
    with pytest.raises(ConfirmationRequired) as refused:
        check_legacy(ALL_LEGACY, subject="urn:rp", opted_in=False)
    assert refused.value.field == "signature" and refused.value.risk == LEGACY["rsa-sha1"]
    assert "rsa-sha1 is a legacy algorithm" in refused.value.message


def test_with_the_opt_in_each_legacy_choice_is_one_warning() -> None:
    warnings = check_legacy(ALL_LEGACY, subject="urn:rp", opted_in=True)
    assert warnings == tuple(legacy_warning(n, "urn:rp") for n in ("rsa-sha1", "aes128-cbc", "rsa-1_5"))
    assert warnings[0] == f"legacy algorithm rsa-sha1 for urn:rp: {LEGACY['rsa-sha1']}"


def test_only_what_a_change_introduces_needs_the_opt_in() -> None:
    assert check_legacy(SHA1, subject="x", opted_in=False, before=SHA1) == ()
    with pytest.raises(ConfirmationRequired) as refused:
        check_legacy(ALL_LEGACY, subject="x", opted_in=False, before=SHA1)
    assert refused.value.field == "data_encryption"


def test_check_legacy_names_ignores_modern_names() -> None:
    assert check_legacy_names([("signature", "rsa-sha256")], subject="x", opted_in=False) == ()
    assert len(check_legacy_names([("allow_sha1", "rsa-sha1")], subject="client c", opted_in=True)) == 1


def test_choose_and_short_name() -> None:
    assert choose(SIGNATURES, " RSA-SHA256 ", field="signature", what="signature") is SignatureAlgorithm.RSA_SHA256
    with pytest.raises(InvalidInput) as refused:
        choose(KEY_TRANSPORTS, "rsa-oaep-256", field="key_transport", what="key transport")
    assert refused.value.field == "key_transport"
    assert refused.value.message == "unknown key transport 'rsa-oaep-256': use one of rsa-oaep-mgf1p, rsa-1_5"
    assert short_name(KEY_TYPES, KeyType.PUBLIC_KEY) == "public-key" and KEY_TYPES["public"] is KeyType.PUBLIC_KEY
