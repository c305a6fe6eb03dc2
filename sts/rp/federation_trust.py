"""The STS signing certificates a relying party trusts, kept current from the STS's federation metadata.

WS-Federation metadata (ws-federation 1.2 §3.1) lists every signing certificate the STS publishes: the key in use
and, during a planned rollover, the next one ahead of its switch time. A relying party that reads it once at start
rejects every token after the switch; one that reads it on a schedule, and again when a token is signed by a key it
does not know, follows the rollover without a restart. The second trigger is rate-limited: a stream of forged
tokens costs at most one fetch per ``unknown_key_interval``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from cryptography import x509

from sts.rp.saml import read_federation_metadata

log = logging.getLogger(__name__)

#: How often the metadata is read again (AD FS relying parties poll about daily; a rollover gives them 24 h).
DEFAULT_REFRESH = timedelta(hours=1)
#: The least time between two fetches caused by tokens signed with an unknown key (and between failed attempts).
DEFAULT_UNKNOWN_KEY_INTERVAL = timedelta(minutes=1)


class FederationMetadataTrust:
    """The signing certificates of one metadata URL; thread-safe, fetched again when due.

    ``initial`` None: fetched now (errors propagate, as reading the metadata once always did). Given: trusted
    until the first successful fetch, which is tried at the first use (for a relying party that starts before
    its STS). ``metadata_certificate``: the document's own signature must verify with it.
    """

    def __init__(self, url: str, *, metadata_certificate: x509.Certificate | None = None,
                 refresh_interval: timedelta | None = DEFAULT_REFRESH,
                 unknown_key_interval: timedelta | None = DEFAULT_UNKNOWN_KEY_INTERVAL,
                 initial: Sequence[x509.Certificate] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self._pinned = metadata_certificate
        self._interval = refresh_interval.total_seconds() if refresh_interval is not None else None
        self._unknown_interval = unknown_key_interval.total_seconds() if unknown_key_interval is not None else None
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.fetches = 0  # successful and failed attempts, for operators and tests
        #: The metadata's entityID (the STS's issuer) once read; the verifier checks tokens against it.
        self.entity_id: str | None = None
        self._last_unknown_key_fetch: float | None = None
        if initial is None:
            self._certificates = self._fetch()
            self._next_due = self._after(self._interval)
        else:
            if not initial:
                raise ValueError("at least one STS certificate is needed")
            self._certificates = tuple(initial)
            self._next_due = self._monotonic()  # read the metadata at the first use

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        return self._certificates

    def refresh_if_due(self) -> bool:
        """Fetch again when the schedule says so; True when the trusted set changed."""
        if self._next_due is None or self._monotonic() < self._next_due:
            return False
        with self._lock:
            if self._next_due is None or self._monotonic() < self._next_due:  # another thread just did it
                return False
            return self._refresh()

    def refresh_for_unknown_key(self) -> bool:
        """A token is signed by a key not trusted: fetch again unless that was done within the rate limit."""
        if self._unknown_interval is None:
            return False
        with self._lock:
            now = self._monotonic()
            last = self._last_unknown_key_fetch
            if last is not None and now - last < self._unknown_interval:
                return False
            self._last_unknown_key_fetch = now
            return self._refresh()

    def _refresh(self) -> bool:
        """Fetch under the lock; a failure keeps the certificates trusted so far and is tried again soon."""
        try:
            fetched = self._fetch()
        except Exception as exc:  # noqa: BLE001 - network, HTTP status, XML, signature: all keep the old set
            log.warning("cannot refresh the STS signing certificates from %s: %s", self.url, exc)
            self._next_due = self._after(self._unknown_interval or self._interval)
            return False
        self._next_due = self._after(self._interval)
        changed = set(fetched) != set(self._certificates)
        if changed:
            log.info("the STS signing certificates from %s changed: %d trusted", self.url, len(fetched))
        self._certificates = fetched
        return changed

    def _fetch(self) -> tuple[x509.Certificate, ...]:
        self.fetches += 1
        certificates, entity_id = read_federation_metadata(self.url, self._pinned)
        self.entity_id = entity_id
        return certificates

    def _after(self, seconds: float | None) -> float | None:
        return None if seconds is None else self._monotonic() + seconds


__all__ = ["DEFAULT_REFRESH", "DEFAULT_UNKNOWN_KEY_INTERVAL", "FederationMetadataTrust"]
