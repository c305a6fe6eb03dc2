"""The relying party's side: `sts.rp.TokenVerifier` in this process, verifying tokens the STS issued.

Signed-only SAML 2.0 (the signature check with the pinned certificate, the conditions) and signed and encrypted
(RSA-OAEP key unwrap with the relying party's key, AES-256-GCM, then the same). Figures are tokens per CPU-second
of this single-threaded process; a rejected token is an error.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from itertools import cycle

from cryptography import x509

from bench.issued import IssuedToken
from bench.scenarios import percentile
from sts.rp import TokenRejected, TokenVerifier
from sts.tokens.crypto.keys import PrivateKey


@dataclass
class VerifierRate:
    name: str
    tokens: int  # distinct tokens, verified in turn
    verified: int
    errors: int
    per_cpu_second: float
    per_wall_second: float
    p50_ms: float
    p99_ms: float
    error_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def measure_verifier(name: str, tokens: list[IssuedToken], sts_cert: x509.Certificate, audience: str,
                     rp_key: PrivateKey | None, seconds: float) -> VerifierRate:
    """Verify ``tokens`` in turn for ``seconds`` (after one warm-up pass)."""
    verifier = TokenVerifier([sts_cert], rp_private_key=rp_key, audience=audience)
    errors: list[str] = []

    def verify(token: bytes) -> bool:
        try:
            verifier.verify(token)
        except TokenRejected as rejected:
            errors.append(str(rejected))
            return False
        return True

    for issued in tokens:
        verify(issued.token)
    latencies: list[float] = []
    verified = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for issued in cycle(tokens):
        started = time.perf_counter()
        verified += verify(issued.token)
        latencies.append(time.perf_counter() - started)
        if started - wall >= seconds:
            break
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return VerifierRate(name, len(tokens), verified, len(errors), verified / max(cpu, 1e-9), verified / wall,
                        percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3, errors[:3])
