"""The decisions of the STS: typed requests in, typed results out; no XML parsing, no HTTP."""

from sts.service.token_service import IssuePolicy, SecurityTokenService

__all__ = ["IssuePolicy", "SecurityTokenService"]
