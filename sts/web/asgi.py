"""The HTTP face of the STS: one Starlette app for the SOAP endpoints, WSDL, MEX, federation metadata and health.

Paths (a contract): ``POST /services/sts`` and AD FS's ``/adfs/services/trust/{13,2005}/usernamemixed``;
``POST /adfs/services/trust/{13,2005}/certificatetransport`` (the TLS client certificate authenticates, see
:mod:`sts.web.tls`);
``GET /services/sts?wsdl`` and ``?xsd=NAME``; ``GET|POST /services/sts/mex`` and ``/adfs/services/trust/mex``;
``GET /FederationMetadata/2007-06/FederationMetadata.xml``; ``GET /healthz``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from sts.config import load_settings, resolve_home
from sts.web.console import create_console
from sts.tokens.crypto.signing import XmlSigner, default_algorithm
from sts.web.metadata import load_xsd_for_serving
from sts.web.metadata.federation import render_federation_metadata
from sts.web.metadata.mex import MetadataExchange
from sts.web.metadata.wsdl import render_wsdl
from sts.web.metrics import Metrics, MetricsEndpoint
from sts.web.request_log import RequestObserver
from sts.web.pipeline import SoapResponse
from sts.web.soap_http import (SoapEndpoint, SoapPostsFirst, fault, read_limited, request_context, soap_version,
                               too_large)
from sts.web.proxies import BehindProxies, TrustedProxies
from sts.uris import SoapVersion
from sts.runtime import Runtime, build_runtime
from sts.xmltime import utcnow

if TYPE_CHECKING:  # ldap3 is imported only when a directory is configured
    from sts.store.ldap_directory import LdapUserStore

_log = logging.getLogger(__name__)

#: What ``GET /healthz?checks=...`` may name (the database is always checked: nothing works without it).
HEALTH_CHECKS = ("database", "directory")

SOAP_PATHS = (
    "/services/sts",
    "/adfs/services/trust/13/usernamemixed",
    "/adfs/services/trust/2005/usernamemixed",
)
CERTIFICATE_TRANSPORT_PATHS = (
    "/adfs/services/trust/13/certificatetransport",
    "/adfs/services/trust/2005/certificatetransport",
)
MEX_PATHS = ("/services/sts/mex", "/adfs/services/trust/mex")
FEDERATION_METADATA_PATH = "/FederationMetadata/2007-06/FederationMetadata.xml"
XML = "application/xml; charset=utf-8"


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


class _Documents:
    """Metadata documents, rendered (and signed) once per process."""

    def __init__(self, runtime: Runtime, client_certificates: bool) -> None:
        self._runtime = runtime
        self._client_certificates = client_certificates
        self.base = runtime.settings.public_base_url.rstrip("/")
        self._federation: tuple[tuple[str, ...], bytes] | None = None

    @cached_property
    def wsdl(self) -> bytes:
        settings = self._runtime.settings
        return render_wsdl(self.base, settings.client_proof, directory=bool(settings.user_store))

    @cached_property
    def exchange(self) -> MetadataExchange:
        """The endpoint's MEX answer (one object behind every MEX route); a fresh one if it serves none."""
        exchange = self._runtime.endpoint.metadata_exchange
        return exchange or MetadataExchange(self.base, self._runtime.settings.client_proof)

    @property
    def mex(self) -> bytes:
        # A plain GET gets the bare wsdl:definitions, as AD FS answers (msal looks for wsdl:binding at the root).
        return self.exchange.wsdl(certificate_transport=self._client_certificates)

    @property
    def federation_metadata(self) -> bytes:
        """Signed by the current key, listing every published signing certificate (active first); rendered again
        only when the keyring's current or published set changes (a scheduled rollover time passed)."""
        runtime = self._runtime
        now = utcnow()
        if runtime.keyring is None:
            current, published = runtime.signing_key, [runtime.signing_key.certificate]
        else:
            current, published = runtime.keyring.current(now), runtime.keyring.published(now)
        certs = [current.cert_b64] + [_b64(c) for c in published if c != current.certificate]
        stamp = tuple(certs)
        cached = self._federation
        if cached is not None and cached[0] == stamp:
            return cached[1]
        signer = runtime.signer if current is runtime.signer.key else XmlSigner(current, default_algorithm(current))
        encryption = runtime.encryption_key
        document = render_federation_metadata(
            self.base, runtime.settings.effective_issuer, certs, signer.sign,
            encryption_cert_b64=encryption.cert_b64 if encryption is not None else None,
        )
        self._federation = (stamp, document)
        return document


async def _probe(check: Callable[[], str | None], timeout: float, name: str) -> str | None:
    """``check()`` in a worker thread, bounded by ``timeout``: its problem, or None when healthy."""
    problem: str | None = f"{name} did not answer in time"
    with anyio.move_on_after(timeout):
        try:
            problem = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
        except Exception:  # noqa: BLE001 - health is a yes/no answer
            problem = f"{name} unavailable"
    return problem


def _directory_health(directory: LdapUserStore) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            directory.ping()
        except Exception as exc:  # noqa: BLE001 - any failure is "unavailable"; the reason goes to the log
            _log.warning("health: the directory did not answer: %s", exc)
            return "directory unavailable"
        return None

    return check


def create_app(runtime: Runtime, *, loopback_bind: bool, client_certificates: bool = False) -> Starlette:
    """The ASGI app of one STS node.

    ``loopback_bind`` tells whether clear-text passwords may pass over HTTP; ``client_certificates`` whether the
    TLS layer asks clients for a certificate (``sts serve --ssl-client-ca``), which MEX then advertises as the
    certificatetransport endpoints. Those endpoints are routed either way and refuse requests without one.
    """
    settings = runtime.settings
    proxies = TrustedProxies(settings.trusted_proxies, cert_header=settings.client_cert_header,
                             cert_format=settings.client_cert_header_format)
    # A trusted proxy that forwards client certificates makes the certificatetransport endpoints usable (MEX).
    client_certificates = client_certificates or bool(settings.client_cert_header and settings.trusted_proxies)
    documents = _Documents(runtime, client_certificates)

    async def service_get(request: Request) -> Response:
        if "xsd" in request.query_params:
            document = load_xsd_for_serving(request.query_params["xsd"], documents.base)
            if document is None:
                return Response("unknown schema\n", 404, media_type="text/plain")
            return Response(document, media_type=XML)
        if "wsdl" in request.query_params or "WSDL" in request.query_params:
            return Response(documents.wsdl, media_type=XML)
        return Response(f"WS-Trust STS. WSDL: {documents.base}/services/sts?wsdl\n", media_type="text/plain")

    # One MEX answer behind every MEX route (and behind a WS-Transfer Get posted to the SOAP endpoints).
    async def mex_get(request: Request) -> Response:
        return Response(documents.mex, media_type=XML)

    async def mex_post(request: Request) -> Response:
        # Tolerant: a MEX Get with another content type is answered in SOAP 1.2 (whatever its envelope says).
        announced = soap_version(request.headers.get("content-type", ""))
        version = announced or SoapVersion.SOAP12
        ctx = request_context(request.scope, version, loopback_bind=loopback_bind,
                              client_certificates=client_certificates, certificate_transport=False,
                              announced=announced is not None)
        body = await read_limited(request.receive, request.headers.get("content-length", ""),
                                  settings.max_request_bytes)
        if body is None:
            return _as_response(fault(too_large(settings.max_request_bytes), version))
        return _as_response(await run_in_threadpool(runtime.endpoint.handle_metadata, body, ctx))

    async def federation_metadata(request: Request) -> Response:
        return Response(documents.federation_metadata, media_type="application/samlmetadata+xml")

    async def healthz(request: Request) -> Response:
        # Red when the database does not answer a cheap query within database_timeout_seconds, or the directory
        # (user_store) a search within ldap_timeout_seconds (the thread of a hung probe is abandoned, not waited
        # for); the reason is generic, its detail is in the log. ?checks=database leaves the directory out: a load
        # balancer that should keep nodes in during a directory outage (local users and certificates still work).
        checks = request.query_params.get("checks", ",".join(HEALTH_CHECKS)).split(",")
        unknown = [name for name in checks if name not in HEALTH_CHECKS]
        if unknown:  # a typo in a load balancer's probe must not quietly leave a check out
            reason = f"unknown check {unknown[0]!r} in ?checks= (known: {', '.join(HEALTH_CHECKS)})"
            return Response(json.dumps({"status": "bad request", "reason": reason}), 400,
                            media_type="application/json")
        problem = await _probe(runtime.stores.health, settings.database_timeout_seconds, "database")
        if problem is None and runtime.directory is not None and "directory" in checks:
            # A second beyond the directory's own timeout, so that a hung directory is reported by the store.
            bound = settings.ldap_timeout_seconds + 1
            problem = await _probe(_directory_health(runtime.directory), bound, "directory")
        if problem is not None:
            return Response(json.dumps({"status": "unavailable", "reason": problem}), 503,
                            media_type="application/json")
        return Response(json.dumps({"status": "ok"}), media_type="application/json")

    async def root(request: Request) -> Response:
        # A person who opens the server's bare URL wants the console (which lists the endpoints once signed in).
        return RedirectResponse(f"{request.scope.get('root_path', '')}/console/", 302)

    # The SOAP routes are plain ASGI apps (sts.web.soap_http): no Request/Response objects, no thread hop.
    def soap_endpoint(certificate_transport: bool) -> SoapEndpoint:
        return SoapEndpoint(runtime, loopback_bind=loopback_bind, client_certificates=client_certificates,
                            certificate_transport=certificate_transport)

    usernamemixed, certificatetransport = soap_endpoint(False), soap_endpoint(True)
    routes = [Route(path, usernamemixed, methods=["POST"]) for path in SOAP_PATHS]
    routes.extend(Route(path, certificatetransport, methods=["POST"]) for path in CERTIFICATE_TRANSPORT_PATHS)
    routes.append(Route("/services/sts", service_get, methods=["GET"]))
    for path in MEX_PATHS:
        routes.append(Route(path, mex_get, methods=["GET"]))
        routes.append(Route(path, mex_post, methods=["POST"]))
    routes.append(Route(FEDERATION_METADATA_PATH, federation_metadata, methods=["GET"]))
    routes.append(Route("/healthz", healthz, methods=["GET"]))
    routes.append(Route("/", root, methods=["GET"]))
    metrics = Metrics.from_environment()
    scrape = MetricsEndpoint(metrics, settings, runtime.stores.engine, runtime.stores.relying_parties)
    routes.append(Route("/metrics", scrape.serve, methods=["GET"]))
    console = create_console(runtime, secure_cookies=settings.public_base_url.startswith("https:"))
    # The SOAP POSTs skip the router (≈ 40 µs of route matching and exception wrapping per token request).
    soap_posts = {**dict.fromkeys(SOAP_PATHS, usernamemixed),
                  **dict.fromkeys(CERTIFICATE_TRANSPORT_PATHS, certificatetransport)}
    # Outermost: every request gets its correlation id; the SOAP ones are counted and (json) logged.
    labels = {path: "sts" if path == "/services/sts" else "usernamemixed" for path in SOAP_PATHS}
    labels.update(dict.fromkeys(CERTIFICATE_TRANSPORT_PATHS, "certificatetransport"))
    observer = Middleware(RequestObserver, endpoints=labels,
                          observe=metrics.observe_request if settings.metrics_enabled else None,
                          log_requests=settings.log_format == "json", access_lines=settings.log_format == "text")
    app = Starlette(routes=[*routes, Mount("/console", app=console)],
                    middleware=[Middleware(BehindProxies, proxies=proxies), observer,
                                Middleware(SoapPostsFirst, endpoints=soap_posts)])
    app.state.runtime = runtime
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and worker processes: the home and bind come from the environment.

    ``STS_LOOPBACK_BIND=1``: bound to loopback; ``STS_TLS_CLIENT_CERTS=1``: the TLS layer asks for client
    certificates (``sts serve`` sets both). Serve it with ``http=sts.web.tls.TlsH11Protocol`` so the certificate
    reaches the app.
    """
    settings = load_settings(resolve_home(os.environ.get("STS_HOME")))
    return create_app(build_runtime(settings), loopback_bind=os.environ.get("STS_LOOPBACK_BIND") == "1",
                      client_certificates=os.environ.get("STS_TLS_CLIENT_CERTS") == "1")


def _as_response(result: SoapResponse) -> Response:
    return Response(result.body, result.status, headers={"content-type": result.content_type})
