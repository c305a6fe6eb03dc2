"""The STS under test: ours, started in a throw-away home, or another one given by URL and certificate.

A target offers *profiles*: relying parties of a known shape (SAML version, encrypted or not, cipher). Our own
STS gets one relying party per profile; another STS is described by the user (``--applies-to`` for one
relying party), and the cases that need a profile it lacks are reported as not applicable.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import httpx

from sts.web import metadata
from sts.tokens.crypto.keys import generate_key_and_cert
from sts.web.loopback import free_port

__all__ = ["PROFILES", "Profile", "Target", "USER_CLAIMS", "add_target_options", "local_sts", "target_from_options",
           "wait_healthy"]

CLAIMS: Final = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
ROLE: Final = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
USER: Final = "interop-user"
CLIENT: Final = "interop-client"      # a registered X.509 client: it authenticates by signing its requests
PASSWORD: Final = "interop-Pa55word!"
#: The claims of the local target's user (claim URI -> values): what every issued token must carry.
USER_CLAIMS: Final[dict[str, tuple[str, ...]]] = {
    f"{CLAIMS}/givenname": ("Ada",),
    f"{CLAIMS}/surname": ("Lovelace",),
    f"{CLAIMS}/emailaddress": ("ada@interop.example",),
    ROLE: ("auditor", "reader"),
}


@dataclass(frozen=True)
class Profile:
    """The shape of a relying party's tokens."""

    name: str
    saml: str                        # "1.1" | "2.0"
    encrypted: bool
    data_encryption: str | None = None
    key_transport: str | None = None

    @property
    def token_type(self) -> str:
        return "saml11" if self.saml == "1.1" else "saml20"


PROFILES: Final = {p.name: p for p in (
    Profile("saml20", "2.0", True, "aes256-gcm", "rsa-oaep-mgf1p"),
    Profile("saml11", "1.1", True, "aes256-gcm", "rsa-oaep-mgf1p"),
    Profile("saml20-plain", "2.0", False),
    Profile("saml11-plain", "1.1", False),
    Profile("saml20-cbc", "2.0", True, "aes256-cbc", "rsa-oaep-mgf1p"),
    Profile("saml11-cbc", "1.1", True, "aes256-cbc", "rsa-oaep-mgf1p"),
)}


@dataclass(frozen=True)
class RelyingParty:
    address: str
    profile: Profile
    key_pem: bytes | None            # to decrypt its tokens (None: cannot decrypt)


@dataclass(frozen=True)
class Target:
    base_url: str                    # scheme://host:port, no trailing slash
    sts_cert_pem: bytes
    username: str
    password: str
    relying_parties: dict[str, RelyingParty]
    ours: bool
    signature: str = "rsa-sha256"
    user_claims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    verify_tls: bool | str = True
    home: Path | None = None         # ours only: the home directory (for our CLI)
    client_name: str | None = None   # a registered X.509 client and its key (to sign requests), if any
    client_key_pem: bytes | None = field(default=None, repr=False)
    client_cert_pem: bytes | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def sts_url(self) -> str:
        """The WS-Trust endpoint (``sts.web.metadata.sts_url``); AD FS-style paths go through ``url``."""
        return metadata.sts_url(self.base_url)

    @property
    def wsdl_url(self) -> str:
        return metadata.wsdl_url(self.base_url)

    def rp(self, profile: str) -> RelyingParty | None:
        return self.relying_parties.get(profile)


def _rp_address(profile: str, tag: str) -> str:
    return f"https://{profile}.rp.interop.example/{tag}"


@contextmanager
def local_sts(*, ecdsa: bool = False, keep: Path | None = None) -> Iterator[Target]:
    """Our STS in a fresh home on a free loopback port, with the interop user and one RP per profile."""
    home = Path(tempfile.mkdtemp(prefix="sts-interop-")) if keep is None else keep
    try:
        target = _prepare(home, ecdsa=ecdsa)
        with _serving(home) as base_url:
            yield replace(target, base_url=base_url)
    finally:
        if keep is None:
            shutil.rmtree(home, ignore_errors=True)


def _sts(home: Path, *args: str, stdin: str | None = None) -> str:
    command = [sys.executable, "-m", "sts.cli.main", "--home", str(home), *args]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120, check=False,
                            env=_env())
    if result.returncode != 0:
        raise RuntimeError(f"`sts {' '.join(args)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def _env() -> dict[str, str]:
    # The interop home is throw-away: cheap password hashing keeps set-up fast (never in production).
    return {**os.environ, "STS_PASSWORD_HASH_N": os.environ.get("STS_PASSWORD_HASH_N", "1024")}


def _prepare(home: Path, *, ecdsa: bool) -> Target:
    _sts(home, "init", "--no-demo")
    # The X.509 client is a portal-like delegate: it may ask ActAs / OnBehalfOf the user (WS-Trust 1.4).
    config = home / "sts.toml"
    config.write_text(config.read_text().replace("delegates = []", f'delegates = ["{CLIENT}"]', 1))
    if ecdsa:
        _use_ec_signing_key(home)
    claims = [arg for uri, values in USER_CLAIMS.items() for value in values for arg in ("--claim", f"{uri}={value}")]
    _sts(home, "user", "add", USER, "--password-stdin", *claims, stdin=PASSWORD + "\n")
    client_key, client_cert = generate_key_and_cert(CLIENT)
    (home / "interop-client.crt").write_bytes(client_cert)
    _sts(home, "client", "add", CLIENT, "--cert", str(home / "interop-client.crt"), *claims)
    key_pem, cert_pem = generate_key_and_cert("interop relying party")
    (home / "interop-rp.key").write_bytes(key_pem)
    (home / "interop-rp.crt").write_bytes(cert_pem)
    tag = "ecdsa" if ecdsa else "rsa"
    parties: dict[str, RelyingParty] = {}
    for profile in PROFILES.values():
        address = _rp_address(profile.name, tag)
        args = ["rp", "add", "--endpoint", address, "--token-type", profile.token_type,
                *[arg for uri in USER_CLAIMS for arg in ("--require-claim", uri)]]
        # Plain profiles have the certificate too: a holder-of-key proof key is encrypted for it in the token.
        args += ["--cert", str(home / "interop-rp.crt")]
        if profile.encrypted:
            args += ["--data-encryption", str(profile.data_encryption), "--key-transport", str(profile.key_transport)]
        else:
            args.append("--no-encrypt")
        _sts(home, *args)
        parties[profile.name] = RelyingParty(address, profile, key_pem)
    return Target(base_url="", sts_cert_pem=_sts(home, "cert").encode(), username=USER, password=PASSWORD,
                  relying_parties=parties, ours=True, user_claims=dict(USER_CLAIMS), home=home,
                  client_name=CLIENT, client_key_pem=client_key, client_cert_pem=client_cert,
                  signature="ecdsa-sha256" if ecdsa else "rsa-sha256")


def _use_ec_signing_key(home: Path) -> None:
    """Opt in to ECDSA: an EC P-256 key takes over signing right away (a rollover due now)."""
    key_pem, cert_pem = generate_key_and_cert("sts signing (ECDSA)", ec=True)
    (home / "ec-signing.key").write_bytes(key_pem)
    (home / "ec-signing.crt").write_bytes(cert_pem)
    _sts(home, "keys", "rollover", "--import-key", str(home / "ec-signing.key"), "--import-cert",
         str(home / "ec-signing.crt"), "--now", "--overlap-days", "0")  # a fresh home: no relying party to warn


@contextmanager
def _serving(home: Path) -> Iterator[str]:
    port = free_port()
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sts.cli.main", "--home", str(home), "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=_env())
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process, log=home / "serve.log")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_healthy(base_url: str, process: subprocess.Popen[Any], *, client: Any = None, log: Path | None = None,
                 timeout: float = 30) -> None:
    """Wait until a `sts serve` process answers /healthz; RuntimeError (with its log's tail) if it dies or hangs.

    ``client``: an httpx client to ask with (a TLS server wants one that trusts its certificate).
    """
    get = client.get if client is not None else httpx.get
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-2000:] if log is not None else ""
            raise RuntimeError(f"`sts serve` exited with {process.returncode}: {tail}")
        try:
            if get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"`sts serve` did not answer {base_url}/healthz within {timeout:.0f} s")


# --- choosing the target from the command line (python -m interop, python -m interop.record) -------------------


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """--sts-url and what another STS needs; each defaults to its STS_* environment variable (make passes them)."""
    env = os.environ.get
    parser.add_argument("--sts-url", default=env("STS_URL") or None,
                        help="another STS's base URL (default: start ours in a throw-away home)")
    parser.add_argument("--sts-cert", type=Path, default=Path(env("STS_CERT", "")) if env("STS_CERT") else None,
                        help="that STS's token-signing certificate (PEM): the only key trusted")
    parser.add_argument("--user", default=env("STS_USER"), help="a user of that STS (password in $STS_PASSWORD)")
    parser.add_argument("--password", help=argparse.SUPPRESS)  # better in $STS_PASSWORD than in `ps`
    parser.add_argument("--applies-to", default=env("STS_APPLIES_TO"), help="a relying party that STS knows")
    parser.add_argument("--profile", default=env("STS_PROFILE", "saml20"), choices=sorted(PROFILES),
                        help="what that relying party's tokens are (default saml20: SAML 2.0, encrypted)")
    parser.add_argument("--rp-key", type=Path, default=Path(env("STS_RP_KEY", "")) if env("STS_RP_KEY") else None,
                        help="the relying party's private key (PEM), to decrypt its tokens")
    parser.add_argument("--insecure", action="store_true", help="do not verify the STS's TLS certificate")


@contextmanager
def target_from_options(args: argparse.Namespace, *, announce: bool = True) -> Iterator[Target]:
    """Ours (started here) unless --sts-url names another; RuntimeError says what is missing."""
    if not args.sts_url:
        with local_sts() as target:
            if announce:
                print(f"interop: our STS at {target.base_url} (home {target.home})", flush=True)
            yield target
        return
    missing = [flag for flag, value in (("--sts-cert", args.sts_cert), ("--user", args.user),
                                        ("--applies-to", args.applies_to)) if not value]
    if missing:
        raise RuntimeError(f"--sts-url needs {', '.join(missing)} (see --help)")
    password = os.environ.get("STS_PASSWORD") or args.password
    if not password:
        raise RuntimeError("give the password in $STS_PASSWORD")
    profile = PROFILES[args.profile]
    rp = RelyingParty(args.applies_to, profile, args.rp_key.read_bytes() if args.rp_key else None)
    yield Target(base_url=args.sts_url.rstrip("/"), sts_cert_pem=args.sts_cert.read_bytes(), username=args.user,
                 password=password, relying_parties={profile.name: rp}, ours=False, verify_tls=not args.insecure)
