"""sts: a WS-Trust Security Token Service (WS-Trust 2005/02, 1.3 and 1.4; SAML 1.1 and 2.0 tokens)."""

from sts.errors import StsError
from sts.model import (
    Claim,
    ClaimRequest,
    IssuedToken,
    Lifetime,
    Principal,
    RelyingParty,
    RequestSecurityToken,
    RequestSecurityTokenResponse,
)
from sts.service.token_service import IssuePolicy, SecurityTokenService
from sts.uris import KeyType, RequestType, SoapVersion, TokenType, TrustVersion

__version__ = "0.1.0"

__all__ = [
    "Claim",
    "ClaimRequest",
    "IssuePolicy",
    "IssuedToken",
    "KeyType",
    "Lifetime",
    "Principal",
    "RelyingParty",
    "RequestSecurityToken",
    "RequestSecurityTokenResponse",
    "RequestType",
    "SecurityTokenService",
    "SoapVersion",
    "StsError",
    "TokenType",
    "TrustVersion",
    "__version__",
]
