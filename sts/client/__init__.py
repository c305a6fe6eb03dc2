"""The WS-Trust client: ``TrustClient`` (zeep), service-policy reading, MEX reading and presenting tokens."""

from sts.client.presenting import IssuedTokenPlugin, authorization_header
from sts.client.trust import (
    IssuedTokenResult,
    ResponseError,
    TokenReference,
    TransportError,
    TrustClient,
    TrustClientError,
    TrustFault,
    UsernameCredentials,
    ValidationResult,
    X509Credentials,
    fault_error,
    parse_fault,
    parse_response,
    read_reply,
)

__all__ = [
    "IssuedTokenPlugin", "IssuedTokenResult", "ResponseError", "TokenReference", "TransportError", "TrustClient",
    "TrustClientError", "TrustFault", "UsernameCredentials", "ValidationResult", "X509Credentials",
    "authorization_header", "fault_error", "parse_fault", "parse_response", "read_reply",
]
