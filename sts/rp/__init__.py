"""The relying party: ``TokenVerifier`` (returns only what the signature covers), its ASGI middleware, Service A."""

from sts.rp.asgi import TokenVerifierMiddleware
from sts.rp.verified_token import TokenRejected, VerifiedToken
from sts.rp.verifier import InMemoryReplayCache, TokenVerifier, extract_token

__all__ = ["InMemoryReplayCache", "TokenRejected", "TokenVerifier", "TokenVerifierMiddleware", "VerifiedToken",
           "extract_token"]
