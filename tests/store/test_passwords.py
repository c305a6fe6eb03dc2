"""scrypt password hashes, the AES-GCM secret box and the key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sts.store.passwords import PasswordHasher, SecretBox, load_or_create_key

CHEAP = PasswordHasher(n=2**4)


def test_hash_format_and_verify() -> None:
    encoded = CHEAP.hash("s3cret")
    parts = encoded.split("$")
    assert parts[:4] == ["scrypt", "16", "8", "1"] and len(parts) == 6
    assert CHEAP.verify("s3cret", encoded)
    assert not CHEAP.verify("s3cret ", encoded)
    assert not CHEAP.verify("", encoded)


def test_salts_differ() -> None:
    assert CHEAP.hash("same") != CHEAP.hash("same")


def test_verify_uses_the_parameters_in_the_encoding() -> None:
    other = PasswordHasher(n=2**5, r=4, p=2)
    encoded = other.hash("pw")
    assert CHEAP.verify("pw", encoded)
    assert CHEAP.needs_rehash(encoded) and not other.needs_rehash(encoded)


@pytest.mark.parametrize("encoded", ["", "plain", "bcrypt$16$8$1$AAAA$AAAA", "scrypt$16$8$1$!!$AAAA",
                                     "scrypt$x$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
                                     "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44])
def test_malformed_encodings_never_match(encoded: str) -> None:
    assert CHEAP.verify("pw", encoded) is False
    assert CHEAP.needs_rehash(encoded)


def test_default_parameters_work() -> None:
    # OpenSSL's default memory cap refuses n=2**15, r=8 unless maxmem is raised.
    hasher = PasswordHasher()
    assert hasher.verify("pw", hasher.hash("pw"))


def test_dummy_verify_runs_a_real_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    from sts.store import passwords

    calls: list[int] = []
    real = passwords._scrypt

    def counting(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = 32) -> bytes:
        calls.append(n)
        return real(password, salt, n, r, p, dklen)

    monkeypatch.setattr(passwords, "_scrypt", counting)
    CHEAP.dummy_verify("guess")
    assert calls == [CHEAP.n]


@pytest.mark.parametrize("n", [0, 1, 3, 100])
def test_bad_parameters(n: int) -> None:
    with pytest.raises(ValueError):
        PasswordHasher(n=n)


def test_secret_box_round_trip_and_tamper() -> None:
    box = SecretBox(b"\x07" * 32)
    blob = box.seal("pässword")
    assert b"p\xc3\xa4ssword" not in blob and len(blob) == 12 + len("pässword".encode()) + 16
    assert box.open(blob) == "pässword"
    assert box.seal("x") != box.seal("x")  # fresh nonce each time
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ValueError):
        box.open(tampered)
    with pytest.raises(ValueError):
        SecretBox(b"\x08" * 32).open(blob)


def test_secret_box_associated_data() -> None:
    box = SecretBox(b"\x07" * 32)
    blob = box.seal("pw", b"alice")
    assert box.open(blob, b"alice") == "pw"
    with pytest.raises(ValueError):
        box.open(blob, b"bob")


def test_secret_box_key_length() -> None:
    with pytest.raises(ValueError):
        SecretBox(b"short")


def test_load_or_create_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key  # never overwritten
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_load_refuses_a_wrong_sized_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"too short")
    with pytest.raises(ValueError, match="32-byte"):
        load_or_create_key(path)
    assert path.read_bytes() == b"too short"
