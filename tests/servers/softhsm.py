"""A throwaway SoftHSM2 token in a temporary directory, with signing keys generated inside it.

Usage (or ``shared_softhsm(directory)``: one token for the whole test process)::

    with SoftHsm(tmp_path) as hsm:                    # SOFTHSM2_CONF points at hsm.conf while open
        cert_pem = hsm.generate_key("sts-signing")    # RSA-2048 (or ec=True: P-256), non-extractable
        settings = replace(settings, **hsm.settings("sts-signing"))
        os.environ[hsm.pin_env] = hsm.pin             # or monkeypatch.setenv(...)

The key pair is made by the token (``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``); its self-signed certificate is
made by ``cryptography``'s CertificateBuilder signing through the token and stored on the token as a
CKO_CERTIFICATE object under the key's label (``HsmToken.generate_key_pair``, what ``sts keys rollover`` uses with
key_source "pkcs11"). SoftHSM2 missing: the test fails, saying that
``make deps`` installs it (CI must not pass without it).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

import pytest
from cryptography.hazmat.primitives import serialization

from sts.tokens.crypto.pkcs11 import HsmConfig, HsmToken, open_token

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
UTIL = "softhsm2-util"


def require_softhsm() -> None:
    """Fail (never skip) when SoftHSM2 is not installed."""
    if not os.path.exists(MODULE) or shutil.which(UTIL) is None:
        pytest.fail(f"SoftHSM2 is not installed ({MODULE}, {UTIL}): `make deps` installs softhsm2")


class SoftHsm:
    """One initialised token (label ``token_label``, user PIN ``pin``) in ``directory``; a context manager.

    SoftHSM2 reads its configuration file once per process, when the module is first initialised: every
    SoftHsm of a test process therefore shares one token directory (the first one's), and tokens differ by
    label. Each instance gets a fresh label."""

    _conf: Path | None = None  # the process's one softhsm2.conf
    _count = 0

    def __init__(self, directory: Path, *, pin: str = "1234", so_pin: str = "5678",
                 pin_env: str = "STS_PKCS11_PIN") -> None:
        require_softhsm()
        SoftHsm._count += 1
        self.directory = directory
        self.token_label = f"sts-test-{os.getpid()}-{SoftHsm._count}"
        self.pin, self.so_pin, self.pin_env = pin, so_pin, pin_env
        self.module = MODULE

    def __enter__(self) -> SoftHsm:
        if SoftHsm._conf is None:
            tokens = self.directory / "softhsm-tokens"
            tokens.mkdir(parents=True, exist_ok=True)
            conf = self.directory / "softhsm2.conf"
            conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
            SoftHsm._conf = conf
        os.environ["SOFTHSM2_CONF"] = str(SoftHsm._conf)
        self._util("--init-token", "--free", "--label", self.token_label, "--pin", self.pin, "--so-pin",
                   self.so_pin)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # The module stays initialised in this process (and keeps the token): only other processes see it gone.
        self._util("--delete-token", "--token", self.token_label, check=False)

    @property
    def conf(self) -> Path:
        assert SoftHsm._conf is not None, "enter the SoftHsm first"
        return SoftHsm._conf

    def environment(self) -> dict[str, str]:
        """What a child process (``sts serve``) needs in its environment to use the token."""
        return {"SOFTHSM2_CONF": str(self.conf), self.pin_env: self.pin}

    def settings(self, key_label: str) -> dict[str, object]:
        """The sts settings that name this token and key (the PIN goes in the environment)."""
        return {"key_source": "pkcs11", "pkcs11_module": self.module, "pkcs11_token_label": self.token_label,
                "pkcs11_pin_env": self.pin_env, "pkcs11_key_label": key_label}

    def generate_key(self, label: str, *, ec: bool = False) -> bytes:
        """A key pair made inside the token plus its self-signed certificate (stored on the token); the PEM."""
        cert = self.token().generate_key_pair(label, use_ec=ec, common_name=f"sts signing ({label}, HSM)")
        return cert.public_bytes(serialization.Encoding.PEM)

    def token(self) -> HsmToken:
        """This process's logged-in handle on the token (``sts.tokens.crypto.pkcs11``)."""
        return open_token(HsmConfig(self.module, self.token_label, self.pin))

    def _util(self, *args: str, check: bool = True) -> None:
        result = subprocess.run([UTIL, *args], env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
                                capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{UTIL} {' '.join(args[:2])}: {result.stderr.strip() or result.stdout.strip()}")


_shared: SoftHsm | None = None


def shared_softhsm(directory: Path) -> SoftHsm:
    """The test process's one token (made in ``directory`` the first time, deleted when the process exits).

    One per process because SoftHSM2 lists its tokens when this process first initialises it: a token made later
    by ``softhsm2-util`` may not be seen. Tests tell their keys apart by label."""
    global _shared
    if _shared is None:
        hsm = SoftHsm(directory)
        _shared = hsm.__enter__()
        atexit.register(hsm.__exit__, None, None, None)
    return _shared


__all__ = ["MODULE", "SoftHsm", "require_softhsm", "shared_softhsm"]
