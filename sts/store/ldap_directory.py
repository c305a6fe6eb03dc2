"""Users from an LDAP directory (setting ``user_store = "ldap://..."``): bind to authenticate, attributes as claims.

* **Authentication** by search and bind: the service account (``ldap_bind_dn``, its password in the environment
  variable ``ldap_bind_password_env``) finds the user's entry with ``ldap_user_filter`` under ``ldap_user_base``,
  then a bind as that entry's DN with the given password decides. Without a bind DN, the DN is built from the
  filter's attribute and the user base (``uid=<name>,<base>``) and bound directly.
* **No injection**: every user-supplied value is escaped where it goes, in a filter (RFC 4515, ``*)(uid=*`` is a
  literal name) or in a DN (RFC 4514). **No empty password** ever reaches a bind: LDAP treats a simple bind with
  an empty password as an anonymous one, which *succeeds* (RFC 4513 §5.1.2).
* **No enumeration**: an unknown user and a wrong password both answer False; an unknown user still costs a bind
  (to a DN that does not exist), so the time says nothing either.
* **Claims** per ``ldap_claims`` ("claim=attribute"); groups under ``ldap_group_base`` matching
  ``ldap_group_filter`` give the role claim, one value per group (its ``ldap_role_attribute``).
* **Outages**: connect and receive are bounded by ``ldap_timeout_seconds``; a directory that is down, slow or
  refuses the service account raises :class:`DirectoryUnavailable` (``wst:RequestFailed``, the reason in the log,
  never a FailedAuthentication: a user must not be told the password was wrong when it was not checked).
* **Pooling**: two bounded pools of at most ``ldap_pool_size`` open connections each, one bound as the service
  account for searches, one for user binds (a bind changes a connection's identity, so the two never mix). A
  connection is used by one thread at a time.
* **Freshness**: an entry read for a bind is kept :data:`ENTRY_SECONDS` seconds, so the token issued right after
  the bind does not search again; a directory change applies to requests after that bound.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

with warnings.catch_warnings():
    # ldap3 2.9.1 imports names pyasn1 has deprecated (tagMap, typeMap): a warning in every process, not ours.
    warnings.simplefilter("ignore", DeprecationWarning)
    from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn

from sts.errors import RequestFailed
from sts.model import Claim, UserRecord
from sts.offload import heavy
from sts.claim_dictionary import BY_NAME, UnknownClaimName, resolve_claim

if TYPE_CHECKING:
    from sts.config import Settings

log = logging.getLogger("sts.store.ldap_directory")

#: How long an entry read for a bind answers lookups of that user (the token right after the bind).
ENTRY_SECONDS = 5.0
#: Entries kept at most (oldest dropped first).
MAX_ENTRIES = 10_000
#: The role claim the STS already uses for roles (the claim dictionary's ``role``).
ROLE_CLAIM = BY_NAME["role"].uri
#: A directory search needs at least this many characters, and answers at most ``SEARCH_LIMIT`` users: the
#: console and the CLI look users up, they never list the whole directory.
MIN_SEARCH = 2
SEARCH_LIMIT = 20

#: Bind results that mean "not these credentials" (invalidCredentials, inappropriateAuthentication,
#: insufficientAccessRights, unwillingToPerform, as AD answers for some locked or expired accounts); any other
#: non-success is the directory's trouble, not the user's.
_REFUSED = frozenset({48, 49, 50, 53})
#: Search results that still carry a usable answer: success, sizeLimitExceeded (partial), noSuchObject (none).
_SEARCH_OK = frozenset({0, 4, 32})
_LOGIN_ATTRIBUTE = re.compile(r"\(([A-Za-z][A-Za-z0-9-]*)=\{username\}\)")

T = TypeVar("T")


class DirectoryUnavailable(RequestFailed):
    """The directory did not answer in time, refused the service account, or failed: ``wst:RequestFailed``."""


@dataclass(frozen=True)
class LdapConfig:
    """The ``ldap_*`` settings, checked once at start-up (ValueError saying which setting to fix)."""

    host: str
    port: int
    use_ssl: bool
    start_tls: bool
    ca_file: str
    bind_dn: str
    bind_password: str
    user_base: str
    user_filter: str
    login_attribute: str
    timeout: int  # seconds; ldap3 packs it into a socket option, so a whole number
    pool_size: int
    claims: tuple[tuple[str, str], ...]  # (claim URI, attribute)
    group_base: str
    group_filter: str
    role_attribute: str

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] = os.environ) -> LdapConfig:
        url = urlsplit(settings.user_store)
        if url.scheme not in ("ldap", "ldaps") or not url.hostname or url.path not in ("", "/") or url.query:
            raise ValueError(f"user_store = {settings.user_store!r}: give ldap://host[:port] or ldaps://host[:port]")
        use_ssl = url.scheme == "ldaps"
        if use_ssl and settings.ldap_start_tls:
            raise ValueError("ldap_start_tls is for ldap:// URLs; an ldaps:// user_store is TLS already")
        if settings.ldap_ca_file and not os.path.isfile(settings.ldap_ca_file):
            raise ValueError(f"ldap_ca_file {settings.ldap_ca_file!r} does not exist")
        match = _LOGIN_ATTRIBUTE.search(settings.ldap_user_filter)
        if match is None or not settings.ldap_user_filter.startswith("("):
            raise ValueError(f"ldap_user_filter {settings.ldap_user_filter!r} must be a filter with a term "
                             f"(attribute={{username}}), e.g. (uid={{username}})")
        if not settings.ldap_user_base:
            raise ValueError("ldap_user_base is required: the DN under which users are found")
        password = ""
        if settings.ldap_bind_dn:
            password = environ.get(settings.ldap_bind_password_env, "")
            if not password:
                raise ValueError(f"ldap_bind_dn is set but ${settings.ldap_bind_password_env} "
                                 f"(ldap_bind_password_env) is empty: export the service account's password")
        if settings.ldap_group_base and "{dn}" not in settings.ldap_group_filter:
            raise ValueError(f"ldap_group_filter {settings.ldap_group_filter!r} must contain {{dn}}")
        return cls(
            host=url.hostname, port=url.port or (636 if use_ssl else 389), use_ssl=use_ssl,
            start_tls=settings.ldap_start_tls, ca_file=settings.ldap_ca_file, bind_dn=settings.ldap_bind_dn,
            bind_password=password, user_base=settings.ldap_user_base, user_filter=settings.ldap_user_filter,
            login_attribute=match.group(1), timeout=max(1, int(settings.ldap_timeout_seconds)),
            pool_size=max(1, settings.ldap_pool_size), claims=parse_claim_mapping(settings.ldap_claims),
            group_base=settings.ldap_group_base, group_filter=settings.ldap_group_filter,
            role_attribute=settings.ldap_role_attribute,
        )

    @property
    def url(self) -> str:
        return f"{'ldaps' if self.use_ssl else 'ldap'}://{self.host}:{self.port}"

    @property
    def encrypted(self) -> bool:
        """Whether passwords travel to the directory under TLS."""
        return self.use_ssl or self.start_tls


def parse_claim_mapping(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``"claim=attribute"`` items (a short claim name or a URI) as (URI, attribute) pairs."""
    pairs = []
    for item in items:
        claim, sep, attribute = item.rpartition("=")
        if not sep or not claim.strip() or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", attribute.strip()):
            raise ValueError(f"ldap_claims item {item!r} is not CLAIM=ATTRIBUTE (e.g. emailaddress=mail)")
        try:
            uri = resolve_claim(claim.strip()).uri
        except (UnknownClaimName, ValueError) as exc:
            raise ValueError(f"ldap_claims item {item!r}: {exc}") from None
        pairs.append((uri, attribute.strip()))
    return tuple(pairs)


@dataclass(frozen=True)
class DirectorySearch:
    """Users whose login name contains the searched text, and whether there were more than were read."""

    users: tuple[UserRecord, ...]
    truncated: bool


@dataclass(frozen=True)
class _Entry:
    dn: str
    attributes: dict[str, list[Any]]


class _Pool:
    """At most ``size`` open connections, each used by one thread at a time; waits ``timeout`` for one."""

    def __init__(self, name: str, open_connection: Callable[[], Connection], size: int, timeout: float) -> None:
        self._name = name
        self._open = open_connection
        self._size = size
        self._timeout = timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        #: Connections opened so far (reuse keeps it at most ``size`` while the directory keeps them open).
        self.opened = 0

    def run(self, operation: Callable[[Connection], T]) -> T:
        """``operation`` on a connection; a reused connection the server had dropped is replaced once."""
        if not self._slots.acquire(timeout=self._timeout):
            raise _unavailable(f"directory: all {self._size} {self._name} connections busy for "
                                       f"{self._timeout:g} s")
        try:
            for attempt in (1, 2):
                with self._lock:
                    connection = self._idle.pop() if self._idle else None
                reused = connection is not None
                started = time.monotonic()
                try:
                    if connection is None:
                        connection = self._open()
                        with self._lock:
                            self.opened += 1
                    result = operation(connection)
                except LDAPException as exc:
                    _close(connection)
                    # A reused connection that failed at once was most likely dropped by the server while idle;
                    # one that failed by timing out is the directory's slowness, and waiting twice helps nobody.
                    if reused and attempt == 1 and time.monotonic() - started < self._timeout / 2:
                        continue
                    raise _unavailable(f"directory {self._name} connection: {_describe(exc)}") from None
                except DirectoryUnavailable as exc:
                    _close(connection)
                    log.warning("%s", exc)
                    raise
                except BaseException:
                    _close(connection)
                    raise
                with self._lock:
                    self._idle.append(connection)
                return result
            raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            _close(connection)


class LdapUserStore:
    """``UserDirectory`` over LDAP (read-only: users are managed in the directory); thread-safe."""

    def __init__(self, config: LdapConfig, *, entry_seconds: float = ENTRY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._entry_seconds = entry_seconds
        self._clock = clock
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file or None,
                  version=ssl.PROTOCOL_TLS_CLIENT)
        self._server = Server(config.host, port=config.port, use_ssl=config.use_ssl, tls=tls, get_info=NONE,
                              connect_timeout=config.timeout)
        self._searches = _Pool("search", self._open_search, config.pool_size, config.timeout)
        self._binds = _Pool("bind", self._open_bind, config.pool_size, config.timeout)
        self._records: dict[str, tuple[float, UserRecord]] = {}
        self._records_lock = threading.Lock()
        if not config.encrypted:
            log.warning("user_store %s: passwords go to the directory without TLS (use ldaps:// or "
                        "ldap_start_tls = true)", config.url)

    @classmethod
    def from_settings(cls, settings: Settings) -> LdapUserStore:
        return cls(LdapConfig.from_settings(settings))

    # -- UserDirectory ---------------------------------------------------------------------------------

    def get(self, name: str) -> UserRecord | None:
        """The directory user and the claims the mapping gives it; None when the directory has no such user."""
        cached = self._cached(name)
        if cached is not None:
            return cached
        if not name:
            return None
        heavy()  # network round trips: off the event loop (sts.offload)
        entry = self._searches.run(lambda connection: self._find(connection, name))
        if entry is None:
            return None
        record = self._searches.run(lambda connection: self._record(connection, name, entry))
        self._remember(name, record)
        return record

    def check_password(self, name: str, password: str) -> bool:
        """True only when the directory accepts a bind as this user with this password."""
        if not name or not password:
            return False  # never an unauthenticated bind (an empty password binds anonymously, and succeeds)
        heavy()
        if self.config.bind_dn:
            return self._search_and_bind(name, password)
        return self._direct_bind(name, password)

    def digest_secret(self, name: str) -> str | None:
        """Always None: a directory keeps password hashes, never what PasswordDigest needs."""
        return None

    # -- administration --------------------------------------------------------------------------------

    def search(self, text: str, limit: int | None = None) -> DirectorySearch:
        """Users whose login name contains ``text`` (at least :data:`MIN_SEARCH` characters), with their claims;
        at most ``limit`` (default :data:`SEARCH_LIMIT`)."""
        limit = SEARCH_LIMIT if limit is None else limit
        text = text.strip()
        if len(text) < MIN_SEARCH:
            raise ValueError(f"search the directory with at least {MIN_SEARCH} characters")
        heavy()
        pattern = "*" + escape_filter_chars(text) + "*"

        def read(connection: Connection) -> tuple[list[UserRecord], bool]:
            found = self._search_users(connection, pattern, limit + 1)
            return [self._record(connection, login, entry) for login, entry in found[:limit]], len(found) > limit

        users, truncated = self._searches.run(read)
        return DirectorySearch(tuple(users), truncated)

    @property
    def connections_opened(self) -> int:
        """How many connections the two pools have opened since the start (a measure of their reuse)."""
        return self._searches.opened + self._binds.opened

    def ping(self) -> None:
        """Raise DirectoryUnavailable unless the directory answers a search as the service account."""
        heavy()
        self._searches.run(lambda connection: _checked_search(connection, self.config.user_base, "(objectClass=*)",
                                                              BASE, [], 1))

    def close(self) -> None:
        self._searches.close()
        self._binds.close()

    # -- the steps -------------------------------------------------------------------------------------

    def _search_and_bind(self, name: str, password: str) -> bool:
        entry = self._searches.run(lambda connection: self._find(connection, name))
        # An unknown user costs a bind too, to a DN that cannot exist: the answer's time does not tell.
        dn = entry.dn if entry is not None else self._absent_dn()
        if not self._binds.run(lambda connection: _bind(connection, dn, password)) or entry is None:
            return False
        self._remember(name, self._searches.run(lambda connection: self._record(connection, name, entry)))
        return True

    def _absent_dn(self) -> str:
        return f"{self.config.login_attribute}=absent-{secrets.token_hex(8)},{self.config.user_base}"

    def _direct_bind(self, name: str, password: str) -> bool:
        dn = f"{self.config.login_attribute}={escape_rdn(name)},{self.config.user_base}"

        def bind_and_read(connection: Connection) -> UserRecord | None:
            if not _bind(connection, dn, password):
                return None
            # Read as the user itself: without a service account, nobody else may be allowed to.
            found = _checked_search(connection, dn, _user_filter(self.config, name), BASE, self._attributes(), 1)
            if not found or not self._named(found[0], name):
                return None
            return self._record(connection, name, found[0])

        record = self._binds.run(bind_and_read)
        if record is None:
            return False
        self._remember(name, record)
        return True

    def _find(self, connection: Connection, name: str) -> _Entry | None:
        found = [entry for entry in _checked_search(connection, self.config.user_base, _user_filter(self.config, name),
                                                    SUBTREE, self._attributes(), 2) if self._named(entry, name)]
        if len(found) > 1:
            log.warning("directory: %d entries match the user filter for %r; refused as ambiguous", len(found), name)
            return None
        return found[0] if found else None

    def _named(self, entry: _Entry, name: str) -> bool:
        """Whether ``name`` is exactly the entry's login name. Directory matching rules ignore case (and more), so
        "Carol" finds carol's entry; taken as carol, every spelling would get its own brute-force count and its
        own principal name. Only the spelling the directory holds signs in."""
        return name in _strings(entry.attributes.get(self.config.login_attribute, []))

    def _search_users(self, connection: Connection, pattern: str, limit: int) -> list[tuple[str, _Entry]]:
        query = self.config.user_filter.replace("{username}", pattern)
        found = _checked_search(connection, self.config.user_base, query, SUBTREE, self._attributes(), limit)
        named = []
        for entry in found:
            logins = _strings(entry.attributes.get(self.config.login_attribute, []))
            if logins:
                named.append((logins[0], entry))
        return sorted(named, key=lambda pair: pair[0].casefold())

    def _record(self, connection: Connection, name: str, entry: _Entry) -> UserRecord:
        claims: dict[str, list[str]] = {}
        for uri, attribute in self.config.claims:
            _add_values(claims, uri, _strings(entry.attributes.get(attribute, [])))
        if self.config.group_base:
            query = self.config.group_filter.replace("{dn}", escape_filter_chars(entry.dn))
            groups = _checked_search(connection, self.config.group_base, query, SUBTREE,
                                     [self.config.role_attribute], 0)
            roles = [values[0] for group in groups
                     if (values := _strings(group.attributes.get(self.config.role_attribute, [])))]
            _add_values(claims, ROLE_CLAIM, sorted(roles, key=str.casefold))
        return UserRecord(name, tuple(Claim(uri, tuple(values)) for uri, values in claims.items() if values))

    def _attributes(self) -> list[str]:
        names = [self.config.login_attribute, *(attribute for _, attribute in self.config.claims)]
        return list(dict.fromkeys(names))

    # -- connections -----------------------------------------------------------------------------------

    def _connection(self) -> Connection:
        connection = Connection(self._server, receive_timeout=self.config.timeout, raise_exceptions=False,
                                read_only=True, auto_bind=False)
        connection.open()
        if self.config.start_tls and not connection.start_tls():
            raise DirectoryUnavailable(f"directory {self.config.url}: StartTLS refused: {connection.result}")
        return connection

    def _open_search(self) -> Connection:
        connection = self._connection()
        if self.config.bind_dn and not connection.rebind(self.config.bind_dn, self.config.bind_password):
            _close(connection)
            raise DirectoryUnavailable(f"directory {self.config.url}: the service account {self.config.bind_dn} "
                                       f"cannot bind ({_result(connection)}): check ldap_bind_dn and its password")
        return connection

    def _open_bind(self) -> Connection:
        return self._connection()

    # -- entries read for a bind -----------------------------------------------------------------------

    def _cached(self, name: str) -> UserRecord | None:
        found = self._records.get(name)
        if found is None or found[0] <= self._clock():
            return None
        return found[1]

    def _remember(self, name: str, record: UserRecord) -> None:
        with self._records_lock:
            self._records.pop(name, None)
            while len(self._records) >= MAX_ENTRIES:
                self._records.pop(next(iter(self._records)))
            self._records[name] = (self._clock() + self._entry_seconds, record)

    def forget(self) -> None:
        """Drop the entries read for binds (tests; a directory change then applies at once)."""
        with self._records_lock:
            self._records.clear()


def _user_filter(config: LdapConfig, name: str) -> str:
    # str.replace, not str.format: the filter may hold other braces, and the name is escaped (RFC 4515).
    return config.user_filter.replace("{username}", escape_filter_chars(name))


def _bind(connection: Connection, dn: str, password: str) -> bool:
    """A simple bind: True when accepted, False when the credentials are refused; other trouble raises."""
    if not password:
        return False
    if connection.rebind(dn, password):
        return True
    code = (connection.result or {}).get("result")
    if code in _REFUSED:
        return False
    raise DirectoryUnavailable(f"directory bind failed: {_result(connection)}")


def _checked_search(connection: Connection, base: str, query: str, scope: str, attributes: list[str],
                    limit: int) -> list[_Entry]:
    connection.search(base, query, scope, attributes=attributes, size_limit=limit,
                      time_limit=int(connection.receive_timeout or 1))
    code = (connection.result or {}).get("result")
    if code not in _SEARCH_OK:
        raise DirectoryUnavailable(f"directory search under {base} failed: {_result(connection)}")
    return [_Entry(item["dn"], dict(item.get("attributes") or {}))
            for item in connection.response or [] if item.get("type") == "searchResEntry"]


def _strings(values: Any) -> list[str]:
    """An attribute's text values (binary ones, such as photos, are no claim values)."""
    if isinstance(values, (str, bytes)):
        values = [values]
    return [value for value in values if isinstance(value, str) and value]


def _add_values(claims: dict[str, list[str]], uri: str, values: list[str]) -> None:
    existing = claims.setdefault(uri, [])
    existing.extend(value for value in values if value not in existing)


def _result(connection: Connection) -> str:
    result = connection.result or {}
    return f"{result.get('result')} {result.get('description')} {result.get('message') or ''}".strip()


def _unavailable(message: str) -> DirectoryUnavailable:
    # The operator's reason: the log (the wire says only wst:RequestFailed).
    log.warning("%s", message)
    return DirectoryUnavailable(message)


def _describe(exc: LDAPException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _close(connection: Connection | None) -> None:
    if connection is None:
        return
    try:
        connection.unbind()
    except (LDAPException, OSError):
        pass


__all__ = ["DirectorySearch", "DirectoryUnavailable", "ENTRY_SECONDS", "LdapConfig", "LdapUserStore",
           "MIN_SEARCH", "ROLE_CLAIM", "SEARCH_LIMIT", "parse_claim_mapping"]
