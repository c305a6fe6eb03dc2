"""Who the client is behind trusted proxies (load balancers, TLS-terminating proxies): one decision per request.

The TCP peer is the client unless it is one of ``trusted_proxies`` (addresses or CIDR networks). Then:

* the client address is read from ``X-Forwarded-For``, walked from the right: trusted proxies are skipped and the
  first untrusted address is the client. A client cannot spoof its address by sending its own X-Forwarded-For
  through the proxy: the proxy appends the address it saw, which is the first one met from the right. A
  malformed list is not guessed at: the peer stays the client (logged once, no error to the client);
* the client certificate is read from ``client_cert_header`` (nginx's escaped PEM or Envoy's XFCC, parsed by
  :func:`sts.web.tls.certificate_from_header`) and goes through the very check a handshake's certificate goes
  through (``RequestContext.tls_client_cert_der``). From an untrusted peer that header is ignored (logged).

A request that carries any forwarding header (``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``), from whoever,
is never a loopback request: a proxy on the same host must not open what only a local client may do (clear-text
passwords on a loopback bind; ``/metrics`` applies the same rule, ``sts.web.metrics.may_scrape``).

:class:`BehindProxies` is the app's outermost ASGI middleware: it decides once, puts the :class:`Origin` in the
scope (``origin_of``) and the client address in ``scope["client"]``, so that the request log, the metrics, the
console's throttle and audit, and the SOAP endpoints all see the same client. uvicorn's own ``proxy_headers``
stays off (``sts serve``): this is the only place forwarding headers are believed.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

from sts.web.tls import certificate_from_header, client_cert_der

log = logging.getLogger("sts.web.proxies")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Headers a reverse proxy adds: a request carrying one came from somewhere else than its TCP peer.
FORWARDING_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})
_XFF = b"x-forwarded-for"
_SCOPE_KEY = "sts.origin"
#: More addresses than any real chain of proxies: a longer list is refused rather than walked.
_MAX_HOPS = 32

_warned: set[str] = set()


def _warn_once(kind: str, message: str, *args: object) -> None:
    """A warning the first time per kind, then debug: a client can send such headers on every request."""
    level = logging.DEBUG if kind in _warned else logging.WARNING
    _warned.add(kind)
    log.log(level, message, *args)


class Origin:
    """Where one request came from: its TCP peer, the client, and the certificate a trusted proxy vouches for."""

    __slots__ = ("_cert_format", "_cert_header", "client", "forwarded", "peer", "trusted_peer")

    def __init__(self, peer: str, client: str, *, forwarded: bool, trusted_peer: bool,
                 cert_header: str | None = None, cert_format: str = "escaped-pem") -> None:
        self.peer = peer
        self.client = client
        #: The request carries a forwarding header (whoever sent it): it is not a loopback request.
        self.forwarded = forwarded
        self.trusted_peer = trusted_peer
        # The certificate header's value, only when a trusted proxy sent it and one is configured; parsed on
        # demand (only certificatetransport requests need it).
        self._cert_header = cert_header
        self._cert_format = cert_format

    def certificate(self, scope: Scope) -> bytes | None:
        """The DER of the client certificate that authenticates this request, or None.

        Behind a trusted proxy with a configured header, the header alone speaks for the client (an mTLS hop
        from the proxy would otherwise pass the proxy's own certificate off as the client's); otherwise the
        certificate of this connection's TLS handshake.
        """
        if self._cert_header is not None:
            if not self._cert_header.strip():
                return None  # nginx sends the variable empty when the client presented no certificate
            try:
                return certificate_from_header(self._cert_header, self._cert_format)
            except ValueError as exc:
                log.warning("client certificate header from trusted proxy %s is malformed (%s): the request has "
                            "no client certificate", self.peer, exc)
                return None
        return client_cert_der(scope) if scope.get("scheme") == "https" else None


class TrustedProxies:
    """The ``trusted_proxies`` setting, parsed once, and the decision it drives."""

    def __init__(self, entries: Sequence[str] = (), *, cert_header: str = "",
                 cert_format: str = "escaped-pem") -> None:
        networks: list[_Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"setting trusted_proxies: {entry!r} is not an address or a CIDR network "
                                 "(e.g. 10.0.0.5 or 10.0.0.0/8)") from None
        self._networks = tuple(networks)
        self._cert_header = cert_header.strip().lower().encode("latin-1")
        self._cert_format = cert_format

    def trusts(self, address: str) -> bool:
        if not self._networks:
            return False  # the usual single node: no address to parse
        parsed = _address(address)
        return parsed is not None and self._trusts(parsed)

    def _trusts(self, address: _Address) -> bool:
        return any(address in network for network in self._networks)

    def origin(self, peer: str, headers: Iterable[tuple[bytes, bytes]]) -> Origin:
        """The :class:`Origin` of a request from ``peer`` with these (lower-cased, ASGI) headers."""
        forwarded_for: list[bytes] = []
        certificate: bytes | None = None
        forwarded = False
        for name, value in headers:
            if name in FORWARDING_HEADERS:
                forwarded = True
                if name == _XFF:
                    forwarded_for.append(value)
            elif name == self._cert_header and self._cert_header:
                certificate = value
        trusted = self.trusts(peer)
        if certificate is not None and not trusted:
            _warn_once("untrusted-cert-header", "client certificate header %s from %s ignored: the peer is not "
                       "in trusted_proxies", self._cert_header.decode("latin-1"), peer)
        client = self.client_address(peer, forwarded_for) if trusted and forwarded_for else peer
        header_value = certificate.decode("latin-1") if certificate is not None else ""
        return Origin(peer, client, forwarded=forwarded, trusted_peer=trusted,
                      cert_header=header_value if trusted and self._cert_header else None,
                      cert_format=self._cert_format)

    def client_address(self, peer: str, forwarded_for: Sequence[bytes]) -> str:
        """The client by the X-Forwarded-For headers a trusted ``peer`` passed on (see the module docstring)."""
        items = b",".join(forwarded_for).decode("latin-1").split(",")
        if len(items) > _MAX_HOPS:
            _warn_once("xff", "X-Forwarded-For from %s names more than %d addresses: the peer is taken as the "
                       "client", peer, _MAX_HOPS)
            return peer
        leftmost = peer
        for item in reversed(items):
            address = _forwarded_address(item)
            if address is None:
                _warn_once("xff", "malformed X-Forwarded-For from %s (%r): the peer is taken as the client",
                           peer, item.strip()[:64])
                return peer
            if not self._trusts(address):
                return str(address)
            leftmost = str(address)
        return leftmost  # every hop is a trusted proxy: the first one is where the request began


class BehindProxies:
    """ASGI middleware: decides each request's :class:`Origin` once (see the module docstring)."""

    def __init__(self, app: Any, proxies: TrustedProxies) -> None:
        self._app = app
        self._proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            origin = self._proxies.origin(client[0] if client else "", scope["headers"])
            scope[_SCOPE_KEY] = origin
            if origin.client != origin.peer:
                scope["client"] = (origin.client, 0)  # the client's port is not known
        await self._app(scope, receive, send)


def origin_of(scope: Scope) -> Origin:
    """The request's :class:`Origin`: the middleware's decision, or (an app served without it) the peer."""
    origin = scope.get(_SCOPE_KEY)
    if isinstance(origin, Origin):
        return origin
    client = scope.get("client")
    peer = client[0] if client else ""
    forwarded = any(name in FORWARDING_HEADERS for name, _ in scope.get("headers", ()))
    return Origin(peer, peer, forwarded=forwarded, trusted_peer=False)


@functools.lru_cache(maxsize=4096)  # parsing an address costs microseconds, and peers and clients come back
def _address(text: str) -> _Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _forwarded_address(item: str) -> _Address | None:
    """One X-Forwarded-For hop: an address, optionally with a port (``1.2.3.4:80``, ``[2001:db8::1]:80``)."""
    text = item.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return _address(host)
    if text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has at least two colons
        host, _, port = text.partition(":")
        return _address(host) if port.isdigit() and "." in host else None
    return _address(text)


__all__ = ["FORWARDING_HEADERS", "BehindProxies", "Origin", "TrustedProxies", "origin_of"]
