"""The limits: raw RSA-2048 (PKCS#1 v1.5, SHA-256) and ECDSA P-256 (SHA-256) signatures per second on one core.

The STS cannot issue a signed token faster than it can sign, so its figures are read as a ratio to these. The rate
is signatures per CPU-second of this (single-threaded) process, the unit the server's figures use; the wall rate is
kept beside it (on a quiet core the two agree; on a busy VM the wall rate drops, the CPU rate much less).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


@dataclass(frozen=True)
class SignRate:
    """Signatures made in a timed loop: per CPU-second (the figure ratios use) and per wall second."""

    algorithm: str
    count: int
    per_cpu_second: float
    per_wall_second: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


_RSA_KEY: rsa.RSAPrivateKey | None = None
_EC_KEY: ec.EllipticCurvePrivateKey | None = None


def _rsa_key() -> rsa.RSAPrivateKey:
    global _RSA_KEY  # noqa: PLW0603 -- made once per process: key generation is not what is measured
    if _RSA_KEY is None:
        _RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _RSA_KEY


def _ec_key() -> ec.EllipticCurvePrivateKey:
    global _EC_KEY  # noqa: PLW0603
    if _EC_KEY is None:
        _EC_KEY = ec.generate_private_key(ec.SECP256R1())
    return _EC_KEY


def rsa2048_rate(seconds: float) -> SignRate:
    """RSA-2048 PKCS#1 v1.5 SHA-256 signatures (what an RSA-SHA256 XML signature costs at its core)."""
    key = _rsa_key()
    return _timed("RSA-2048 PKCS#1 v1.5 SHA-256",
                  lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()), seconds)


def ecdsa_p256_rate(seconds: float) -> SignRate:
    """ECDSA P-256 SHA-256 signatures."""
    key = _ec_key()
    return _timed("ECDSA P-256 SHA-256", lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())), seconds)


def _timed(name: str, sign: object, seconds: float) -> SignRate:
    sign(b"warm-up")  # type: ignore[operator]
    count = 0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        for _ in range(16):  # the clock is read once per 16 signatures
            sign(count.to_bytes(8, "big") * 4)  # type: ignore[operator]
            count += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return SignRate(name, count, count / max(cpu, 1e-9), count / wall)


def mean_rate(rates: list[SignRate]) -> float:
    """The mean per-CPU-second rate of several measurements (before and after a server session)."""
    return sum(rate.per_cpu_second for rate in rates) / len(rates)
