"""The brute-force throttle: one rule for every place a password is checked (SOAP UsernameToken, the console's
sign-in form, the JSON API's HTTP Basic).

The rule
--------
* Failed password checks are counted per user name and per client address (IPv4 address; IPv6 /64 network,
  since one host gets a whole /64) in the database (``sts.store.throttle``), so the count holds across worker
  processes and nodes. A count starts again after ``auth_throttle_window_seconds`` without a failure. A correct
  password resets the user's count and takes one failure off the address's: an address whose users mostly
  succeed (NAT, a busy client) does not drift into delays, while a sprayer would have to pay a valid sign-in
  of some account per guess, in the audit trail, to stay free of the address's delay (and each targeted user
  still has its own count).
* After ``free`` failures (``auth_throttle_free_failures`` for a user; ``ADDRESS_FACTOR`` times that for an
  address, which many users may share behind NAT), the next check waits ``base * 2**(failures - free)``,
  capped at ``auth_throttle_max_delay_ms``. The larger of the two delays applies. NEVER a lock-out: the right
  password always works, at worst after the capped delay, so an attacker cannot lock the real user out.
* The delay comes BEFORE the password is checked and is measured from the request's arrival, so an attacker
  learns nothing from a fast answer and the total wait stays capped however many failures arrive meanwhile.
* What counts: a password (text or digest) that was checked and was wrong, for an unknown user alike (the
  same fault, the same time). Requests refused before the check (stale Created, PasswordText over HTTP, a
  digest without Nonce) are not password checks and count nothing.

Waiting without blocking a worker thread
----------------------------------------
The SOAP pipeline runs in Starlette's thread pool; 40 attackers sleeping 2 s there would starve everyone.
Under ``await run_throttled(fn)`` (asgi's ``_soap``, the console) a due delay raises :class:`Throttled` out of
the worker thread before anything is checked; ``run_throttled`` awaits ``asyncio.sleep`` and calls ``fn``
again, which then finds the delay served. Direct in-process callers (tests, benchmarks) just sleep.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from anyio import to_thread

from sts.interfaces import AuditSink, Clock, ThrottleStore, UserDirectory
from sts.offload import MoveToThread, on_event_loop, run_inline
from sts.model import UserRecord
from sts.xmltime import utcnow

if TYPE_CHECKING:
    from sts.config import Settings

log = logging.getLogger("sts.service.throttle")

#: An address (shared by many users behind NAT or a proxy) gets this many times a user's free failures.
ADDRESS_FACTOR = 5
#: Keys longer than this are stored as a digest (the column is 255 characters; the name is attacker-chosen).
MAX_KEY = 200
EVENT = "auth.throttled"
OUTCOME = "throttled"

T = TypeVar("T")

#: Bounds ``run_throttled``'s loop even if the clock stands still.
_MAX_WAITS = 8

_deferring: contextvars.ContextVar[bool] = contextvars.ContextVar("sts_throttle_deferring", default=False)
#: The client address and arrival time of the request being run (set by ``run_throttled``), for the checks that
#: are not handed them (``ThrottledUsers``).
_origin: contextvars.ContextVar[tuple[str, datetime] | None] = contextvars.ContextVar("sts_throttle_origin",
                                                                                     default=None)


class Throttled(BaseException):
    """A password check must first wait ``seconds``: raised out of the worker thread under ``run_throttled``.

    A BaseException, like ``asyncio.CancelledError``: it is a control-flow signal, not an error, and must pass
    the pipeline's ``except Exception`` (which turns errors into ``wst:RequestFailed``) untouched.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"wait {seconds:.3f} s")
        self.seconds = seconds


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 3
    base_delay: timedelta = timedelta(milliseconds=100)
    max_delay: timedelta = timedelta(seconds=2)
    window: timedelta = timedelta(seconds=900)

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            free_failures=max(0, settings.auth_throttle_free_failures),
            base_delay=timedelta(milliseconds=max(0, settings.auth_throttle_base_delay_ms)),
            max_delay=timedelta(milliseconds=max(0, settings.auth_throttle_max_delay_ms)),
            window=timedelta(seconds=max(1, settings.auth_throttle_window_seconds)),
        )

    def delay(self, failures: int, free: int | None = None) -> timedelta:
        """The wait before the next check after ``failures`` failures: 0, then doubling, capped."""
        free = self.free_failures if free is None else free
        if failures < free or failures <= 0:
            return timedelta(0)
        # The exponent is bounded first: 2**n for a huge count would be a huge integer for nothing.
        doubled: timedelta = self.base_delay * (2 ** min(failures - free, 40))
        return min(doubled, self.max_delay)

    def delay_for(self, user_failures: int, address_failures: int) -> timedelta:
        return max(self.delay(user_failures), self.delay(address_failures, self.free_failures * ADDRESS_FACTOR))


@dataclass(frozen=True)
class Admission:
    """One password check let through: its keys and the counts read before it."""

    user: str
    address: str
    user_failures: int
    address_failures: int
    delay: timedelta


class AuthThrottle:
    """The rule over a ``ThrottleStore``; built once per process."""

    def __init__(self, store: ThrottleStore, policy: ThrottlePolicy, *, audit: AuditSink | None = None,
                 clock: Clock = utcnow) -> None:
        self._store = store
        self.policy = policy
        self._audit = audit
        self._clock = clock

    def check(self, name: str, remote: str, received_at: datetime, verify: Callable[[], bool]) -> bool:
        """``verify()`` (the password check) under the throttle: wait first if due, then count the outcome."""
        admission = self.admit(name, remote, received_at)
        ok = verify()
        self.settle(admission, ok)
        return ok

    def admit(self, name: str, remote: str, received_at: datetime) -> Admission:
        """Read both counts (one statement); when a delay is due and not yet served since ``received_at``, raise
        ``Throttled`` (under ``run_throttled``) or sleep it out (direct callers)."""
        user, address = user_key(name), address_key(remote)
        now = self._clock()
        users, addresses = self._store.counts(user, address, now - self.policy.window)
        delay = self.policy.delay_for(users, addresses)
        admission = Admission(user, address, users, addresses, delay)
        # Never more than the cap from now, whatever clock ``received_at`` came from.
        wait = min((received_at + delay - now).total_seconds(), self.policy.max_delay.total_seconds())
        if wait > 0:
            self._report(name, remote, admission)
            if _deferring.get():
                raise Throttled(wait)
            time.sleep(wait)
        return admission

    def settle(self, admission: Admission, ok: bool) -> None:
        """Count a failure; after a success that followed failures, clear the user's and forgive one of the
        address's (a success with nothing to clear writes nothing)."""
        if not ok:
            now = self._clock()
            self._store.failed(admission.user, admission.address, now, now - self.policy.window)
            return
        if admission.user_failures:
            self._store.reset(admission.user)
        if admission.address_failures:
            self._store.forgive(admission.address)

    def _report(self, name: str, remote: str, admission: Admission) -> None:
        # The user name as tried and the address; never the password.
        millis = int(admission.delay.total_seconds() * 1000)
        log.warning("throttled password check for %r from %s: %d ms after %d failures of the user, %d from "
                    "the address", name[:MAX_KEY], remote or "-", millis, admission.user_failures,
                    admission.address_failures)
        if self._audit is not None:
            self._audit.record(EVENT, actor=name[:MAX_KEY], outcome=OUTCOME,
                               detail={"remote": remote, "delay_ms": millis,
                                       "user_failures": admission.user_failures,
                                       "address_failures": admission.address_failures})


class ThrottledUsers:
    """A ``UserDirectory`` whose ``check_password`` goes through the throttle, for the password checks made deep
    in the service: a UsernameToken with a password inside ActAs/OnBehalfOf (``sts.service.delegation``).

    Keyed by the request's origin (``run_throttled(..., origin=...)``). Its wait blocks the worker thread: by
    then the request's nonce and signature are recorded, so it could not be run again; only an authenticated,
    trusted delegate gets this far, so the few threads it may hold are not an anonymous attacker's to take.
    """

    def __init__(self, users: UserDirectory, throttle: AuthThrottle) -> None:
        self._users = users
        self._throttle = throttle

    def get(self, name: str) -> UserRecord | None:
        return self._users.get(name)

    def digest_secret(self, name: str) -> str | None:
        return self._users.digest_secret(name)

    def check_password(self, name: str, password: str) -> bool:
        remote, received_at = _origin.get() or ("", utcnow())
        token = _deferring.set(False)
        try:
            return self._throttle.check(name, remote, received_at,
                                        lambda: self._users.check_password(name, password))
        finally:
            _deferring.reset(token)


def user_key(name: str) -> str:
    """The user's key: the name as sent (names are exact), a digest when too long for the column."""
    if len(name) <= MAX_KEY:
        return name
    return "sha256:" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


@functools.lru_cache(maxsize=4096)  # parsing an address costs ≈ 30 µs, and clients come back
def address_key(remote: str) -> str:
    """The client's key: an IPv4 address, or the /64 network of an IPv6 one (IPv4-mapped ones as IPv4);
    anything else (a Unix socket, an in-process caller's empty string) as given, bounded."""
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote[:MAX_KEY]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


async def run_throttled(fn: Callable[[], T], *, origin: tuple[str, datetime] | None = None,
                        inline: bool = False) -> T:
    """Run ``fn`` in the thread pool; when the throttle says wait, wait here (no thread held) and run it again.
    ``origin`` is the request's (client address, arrival time), for ``ThrottledUsers``.

    ``inline``: run ``fn`` on the event loop itself (``sts.offload``); a step that turns out heavy before anything
    was committed (``MoveToThread``) makes it run again in the thread pool.

    The wait ends at ``received_at + delay`` and the delay is capped, so the loop ends: the next run finds it
    served (or a longer one, still bounded by the cap from ``received_at``, if more failures arrived meanwhile).
    """
    token = _deferring.set(True)  # copied into the worker thread's context by anyio
    origin_token = _origin.set(origin)
    try:
        for _ in range(_MAX_WAITS):
            try:
                if inline:
                    with on_event_loop():
                        return await run_inline(fn)
                return await to_thread.run_sync(fn)
            except MoveToThread:
                inline = False
            except Throttled as throttled:
                await asyncio.sleep(throttled.seconds)
    finally:
        _deferring.reset(token)
        _origin.reset(origin_token)
    # Only a clock that does not move (a test's) gets here: the blocking form sleeps at most the cap once more.
    origin_token = _origin.set(origin)
    try:
        return await to_thread.run_sync(fn)
    finally:
        _origin.reset(origin_token)
