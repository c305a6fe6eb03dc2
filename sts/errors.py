"""The one exception hierarchy of the STS; every class maps to a SOAP fault code and a fixed public reason.

::

    StsError                      fault code + fixed public reason (+ at most one value from the request)
    ├─ InvalidRequest             wst:InvalidRequest             malformed XML/SOAP/RST, an XML limit passed
    │  ├─ UnsupportedClaimsDialect wst:InvalidRequest            wst:Claims in a dialect this STS does not read
    │  └─ ActionMismatch          wst:InvalidRequest             two actions (or action and RequestType) disagree
    ├─ BadRequest                 wst:BadRequest                 unsupported TokenType/RequestType/element
    ├─ FailedAuthentication       wst:FailedAuthentication       unknown user or wrong password (same reason)
    ├─ AuthenticationBadElements  wst:AuthenticationBadElements  required parts not signed
    ├─ InvalidSecurityToken       wst:InvalidSecurityToken       Validate/Renew/Cancel/ActAs targets: altered
    │  ├─ UnknownSecurityToken    wst:InvalidSecurityToken       not issued (recorded) by this STS
    │  └─ RevokedSecurityToken    wst:InvalidSecurityToken       cancelled or superseded by its renewal
    ├─ ExpiredData                wst:ExpiredData
    │  └─ ExpiredSecurityToken    wst:ExpiredData                an expired ActAs/OnBehalfOf token
    ├─ InvalidTimeRange           wst:InvalidTimeRange
    ├─ InvalidScope               wst:InvalidScope               AppliesTo not a trusted relying party
    ├─ RenewNeeded                wst:RenewNeeded
    ├─ UnableToRenew              wst:UnableToRenew
    ├─ RequestFailed              wst:RequestFailed              claims refused/missing, anything unexpected
    ├─ SecurityHeaderError        wsse:InvalidSecurity
    │  ├─ UnsupportedAlgorithm    wsse:UnsupportedAlgorithm
    │  ├─ FailedCheck             wsse:FailedCheck               broken or wrapped signature
    │  ├─ MessageExpired          wsse:MessageExpired            stale/future Timestamp or Created
    │  │  └─ ReplayedMessage      wsse:MessageExpired            replayed nonce or signed request
    │  └─ UnsupportedSecurityToken wsse:UnsupportedSecurityToken
    ├─ ActionNotSupported         wsa:ActionNotSupported         an action this endpoint does not serve
    └─ SoapError                  env:Sender (client) faults of SOAP itself
       ├─ VersionMismatch         env:VersionMismatch
       └─ MustUnderstand          env:MustUnderstand

``str(err)`` is internal detail for the log; ``public_reason`` is what goes on the wire. The WS-Trust codes are
qualified by the namespace of the request's WS-Trust version (1.3 when the version is unknown).
"""

from __future__ import annotations

from typing import ClassVar

from sts import ns


class StsError(Exception):
    """Base of every error that becomes a SOAP fault."""

    code: ClassVar[str] = "RequestFailed"
    code_ns: ClassVar[str | None] = None  # None: the request's WS-Trust namespace
    reason: ClassVar[str] = "The specified request failed"
    sender: ClassVar[bool] = True  # env:Sender (client's fault) vs env:Receiver
    http_status: ClassVar[int] = 500

    def __init__(self, internal: str = "", *, detail: str | None = None) -> None:
        super().__init__(internal or self.reason)
        self.detail = detail

    @property
    def public_reason(self) -> str:
        """The fixed reason text, naming at most one value taken from the request."""
        if self.detail is None:
            return self.reason
        return f"{self.reason}: {_clip(self.detail)}"

    def fault_qname(self, trust_ns: str | None) -> tuple[str, str]:
        """(namespace, local name) of the fault code for a request of the given WS-Trust namespace."""
        return (self.code_ns or trust_ns or ns.WST13, self.code)


def _clip(value: str, limit: int = 200) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


class InvalidRequest(StsError):
    code = "InvalidRequest"
    reason = "The request was invalid or malformed"


class UnsupportedClaimsDialect(InvalidRequest):
    """wst:Claims in a Dialect this STS does not read (the public reason names it)."""

    reason = "The claims dialect is not supported"


class ActionMismatch(InvalidRequest):
    """Two parts of one request name different operations: wsa:Action, the SOAPAction header, the content type's
    action parameter, or the RST's RequestType. The public reason names both values (each clipped)."""

    def __init__(self, first: tuple[str, str], second: tuple[str, str]) -> None:
        (self.first_source, self.first), (self.second_source, self.second) = first, second
        super().__init__(f"{self.first_source} {self.first!r} contradicts {self.second_source} {self.second!r}")

    @property
    def public_reason(self) -> str:
        return (f"{self.reason}: {self.first_source} {_clip(self.first, 120)} contradicts "
                f"{self.second_source} {_clip(self.second, 120)}")


class BadRequest(StsError):
    code = "BadRequest"
    reason = "The specified RequestSecurityToken is not understood"


class FailedAuthentication(StsError):
    code = "FailedAuthentication"
    reason = "Authentication failed"


class AuthenticationBadElements(StsError):
    code = "AuthenticationBadElements"
    reason = "Insufficient Digest Elements"


class InvalidSecurityToken(StsError):
    """A Validate/Renew/Cancel/ActAs/OnBehalfOf target this STS will not act on; the subclasses say why."""

    code = "InvalidSecurityToken"
    reason = "The security token is invalid or was altered"


class UnknownSecurityToken(InvalidSecurityToken):
    """Well formed (and, if signed, signed by this STS) but not a token this STS recorded."""

    reason = "The security token was not issued by this STS"


class RevokedSecurityToken(InvalidSecurityToken):
    """Cancelled, or superseded by its renewal (WS-Trust 1.3 Table 1's text for this code)."""

    reason = "Security token has been revoked"


class ExpiredData(StsError):
    code = "ExpiredData"
    reason = "The request data is out-of-date"


class ExpiredSecurityToken(ExpiredData):
    """A token the request relies on (ActAs, OnBehalfOf) is past its NotOnOrAfter."""

    reason = "The security token has expired"


class InvalidTimeRange(StsError):
    code = "InvalidTimeRange"
    reason = "The requested time range is invalid or unsupported"


class InvalidScope(StsError):
    code = "InvalidScope"
    reason = "The request scope is invalid or unsupported"


class RenewNeeded(StsError):
    code = "RenewNeeded"
    reason = "A renewable security token has expired"


class UnableToRenew(StsError):
    code = "UnableToRenew"
    reason = "The requested renewal failed"


class RequestFailed(StsError):
    code = "RequestFailed"
    reason = "The specified request failed"
    sender = False


class SecurityHeaderError(StsError):
    code = "InvalidSecurity"
    code_ns = ns.WSSE
    reason = "An error was discovered processing the <wsse:Security> header"


class UnsupportedSecurityToken(SecurityHeaderError):
    code = "UnsupportedSecurityToken"
    reason = "An unsupported token was provided"


class UnsupportedAlgorithm(SecurityHeaderError):
    code = "UnsupportedAlgorithm"
    reason = "An unsupported signature or encryption algorithm was used"


class FailedCheck(SecurityHeaderError):
    code = "FailedCheck"
    reason = "The signature or decryption was invalid"


class MessageExpired(SecurityHeaderError):
    code = "MessageExpired"
    reason = "The message has expired"


class ReplayedMessage(MessageExpired):
    """A nonce or signed request seen before within its freshness window (same code: WSS 1.1 §13.1 has no other)."""

    reason = "The message was already received"


class ActionNotSupported(StsError):
    """WS-Addressing 1.0 SOAP Binding §6.4.4: the action is not one this endpoint serves (a Sender fault)."""

    code = "ActionNotSupported"
    code_ns = ns.WSA
    reason = "The [action] cannot be processed at the receiver"


class SoapError(StsError):
    """Faults of SOAP itself: their code is in the envelope's namespace, set when rendered."""

    code = "Sender"
    code_ns = ""
    reason = "The message could not be processed"


class VersionMismatch(SoapError):
    code = "VersionMismatch"
    reason = "The envelope namespace is not a supported SOAP version"


class MustUnderstand(SoapError):
    code = "MustUnderstand"
    reason = "A mandatory header block was not understood"


#: Every WS-Trust fault class, by local name (the client maps received faults back through this).
TRUST_FAULTS: dict[str, type[StsError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest, BadRequest, FailedAuthentication, AuthenticationBadElements, InvalidSecurityToken,
        ExpiredData, InvalidTimeRange, InvalidScope, RenewNeeded, UnableToRenew, RequestFailed,
    )
}
SECURITY_FAULTS: dict[str, type[StsError]] = {
    cls.code: cls
    for cls in (SecurityHeaderError, UnsupportedSecurityToken, UnsupportedAlgorithm, FailedCheck, MessageExpired)
}


class InsecureTransport(SecurityHeaderError):
    """A clear-text password over plain HTTP on a non-loopback bind (unless the config allows it)."""

    reason = "A clear-text password requires a secure transport"


class InsecureProofDelivery(RequestFailed):
    """A symmetric proof key would go back in clear over plain HTTP (no TLS, no requester certificate)."""

    reason = "A proof key is returned only over TLS or encrypted for the requester's certificate"
