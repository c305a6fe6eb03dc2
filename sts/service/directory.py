"""Users and registered X.509 clients seen as one directory of subjects (claims come from either).

Passwords are users' only: a client proves itself with its certificate, never with a UsernameToken.
"""

from __future__ import annotations

from sts.interfaces import ClientLookup, UserDirectory
from sts.model import UserRecord


class SubjectDirectory:
    """``get`` finds a user, else a registered client; password checks go to the users alone."""

    def __init__(self, users: UserDirectory, clients: ClientLookup) -> None:
        self._users = users
        self._clients = clients

    def get(self, name: str) -> UserRecord | None:
        user = self._users.get(name)
        if user is not None:
            return user
        client = self._clients.get(name)
        as_user = getattr(client, "as_user", None)
        return as_user() if callable(as_user) else None

    def check_password(self, name: str, password: str) -> bool:
        return self._users.check_password(name, password)

    def digest_secret(self, name: str) -> str | None:
        return self._users.digest_secret(name)
