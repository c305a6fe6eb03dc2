"""Authenticators: turn the verified credentials of a request into a ``Principal``.

Only WS-Security UsernameToken for now (X.509-signed requests and delegation come with the lifecycle work).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .errors import FailedAuthentication
from .interfaces import ReplayCache, UserDirectory
from .model import Principal, RequestContext
from .uris import AuthnMethod
from .wsse.header import SecurityHeader
from .wsse.timestamp import check_timestamp
from .wsse.username import verify_username_token


@dataclass(frozen=True)
class UsernameTokenAuthenticator:
    users: UserDirectory
    replay: ReplayCache
    skew: timedelta = timedelta(minutes=5)
    freshness: timedelta = timedelta(minutes=5)
    allow_text_over_http: bool = False

    def authenticate(self, header: SecurityHeader, ctx: RequestContext) -> Principal:
        now = ctx.received_at
        check_timestamp(header.timestamp, now, self.skew)
        token = header.username_token
        if token is None:
            raise FailedAuthentication("no UsernameToken in the request")
        name = verify_username_token(
            token,
            self.users,
            self.replay,
            now=now,
            window=self.freshness,
            skew=self.skew,
            text_allowed=ctx.tls or ctx.loopback_bind or self.allow_text_over_http,
        )
        return Principal(name=name, authn_method=AuthnMethod.PASSWORD, authn_instant=now)
