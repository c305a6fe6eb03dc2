"""Users, registered X.509 clients and, when configured, an LDAP directory seen as one directory of subjects.

Local first, then the directory (setting ``user_store``): a name the STS's own store knows (``sts user add``) is
that user, whatever the directory holds, so service accounts stay local and a directory cannot take them over;
a registered client comes next; only then is the directory asked. Passwords are users' only: a client proves
itself with its certificate, never with a UsernameToken.

PasswordDigest needs the password itself (or a sealed copy, as the local store keeps); a directory holds only
hashes, so its users must send PasswordText over TLS. With a directory configured, a digest that does not verify
is refused with :class:`PasswordTextRequired` (``wsse:FailedAuthentication`` saying so), for every name alike:
telling a directory user apart from an unknown name would tell which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sts import ns
from sts.errors import FailedAuthentication
from sts.interfaces import ClientLookup, UserDirectory
from sts.model import Principal, RequestContext, UserRecord
from sts.protocol.wsse.header import SecurityHeader
from sts.service.auth import UsernameTokenAuthenticator


class SubjectDirectory:
    """``get`` finds a local user, else a registered client, else a directory user; password checks go to the
    local users for a local name and to the directory for any other."""

    def __init__(self, users: UserDirectory, clients: ClientLookup, directory: UserDirectory | None = None) -> None:
        self._users = users
        self._clients = clients
        self._directory = directory

    def get(self, name: str) -> UserRecord | None:
        user = self._users.get(name)
        if user is not None:
            return user
        client = self._clients.get(name)
        as_user = getattr(client, "as_user", None)
        if callable(as_user):
            record: UserRecord = as_user()
            return record
        return self._directory.get(name) if self._directory is not None else None

    def check_password(self, name: str, password: str) -> bool:
        if self._directory is None or self._users.get(name) is not None:
            return self._users.check_password(name, password)
        return self._directory.check_password(name, password)

    def digest_secret(self, name: str) -> str | None:
        # Local users only: the directory never has one (sts.store.ldap_directory).
        return self._users.digest_secret(name)


class PasswordTextRequired(FailedAuthentication):
    """A PasswordDigest that did not verify while a directory is configured (WSS 1.0 §12's wsse code)."""

    code_ns = ns.WSSE
    reason = ("The security token could not be authenticated: PasswordDigest works for the STS's own users only; "
              "users of the directory must send PasswordText over TLS")


@dataclass(frozen=True)
class DirectoryUsernameAuthenticator(UsernameTokenAuthenticator):
    """The UsernameToken authenticator when a directory is configured: a refused digest says PasswordText is
    needed (the throttle has counted it like any failed password)."""

    def authenticate(self, header: SecurityHeader, ctx: RequestContext) -> Principal:
        try:
            return super().authenticate(header, ctx)
        except FailedAuthentication as exc:
            token = header.username_token
            if token is not None and token.digest and type(exc) is FailedAuthentication:
                raise PasswordTextRequired(str(exc)) from None
            raise


__all__ = ["DirectoryUsernameAuthenticator", "PasswordTextRequired", "SubjectDirectory"]
