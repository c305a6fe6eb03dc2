"""``sts init``, ``sts serve`` and ``sts demo-service``: setting up and running the STS (``sts explain`` is in
``sts.cli.explain``)."""

from __future__ import annotations

import ipaddress
import os
import shlex
import signal
import socket
import ssl
import sys
from datetime import timedelta
from pathlib import Path
import click
import uvicorn
from uvicorn.supervisors import Multiprocess, multiprocess

from sts.cli.context import _build_runtime, _Context, _database_errors, _keyring, _os_problem, pass_ctx
from sts.config import Settings
from sts.model import RelyingParty


@click.command()
@click.option("--no-demo", is_flag=True, help="Do not add the demo user and relying party.")
@pass_ctx
def init(ctx: _Context, no_demo: bool) -> None:
    """Create the home directory, keys, database and demo data (never overwrites keys)."""
    from sts.config import load_settings
    from sts.home import init_home

    try:
        with _database_errors(load_settings(ctx.home)):
            report = init_home(ctx.home, demo=not no_demo)
    except ValueError as exc:  # sts.toml: unreadable TOML, an unknown setting, a bad value
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot initialise {ctx.home}: {_os_problem(exc)}") from None
    if report.created:
        for what in report.created:
            click.echo(f"created {what}")
    else:
        click.echo(f"{ctx.home} is already initialised")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="Serve TLS with this certificate.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="Private key for --ssl-certfile.")
@click.option("--ssl-client-ca", type=click.Path(exists=True, dir_okay=False),
              help="Ask TLS clients for a certificate issued by (or equal to) one in this PEM bundle; registered "
                   "clients then authenticate by it on /adfs/services/trust/{13,2005}/certificatetransport.")
@click.option("--allow-insecure-key-permissions", is_flag=True,
              help="Start even when a private key can be read by other users (a warning instead of a refusal).")
@pass_ctx
def serve(ctx: _Context, host: str, port: int, workers: int, ssl_certfile: str | None,
          ssl_keyfile: str | None, ssl_client_ca: str | None, allow_insecure_key_permissions: bool) -> None:
    """Serve the STS over HTTP (or HTTPS with --ssl-certfile/--ssl-keyfile); SIGTERM drains, then exits 0."""
    from sts.home import demo_banner
    from sts.web.metrics import worker_directory
    from sts.web.request_log import logging_config
    from sts.web.tls import http_protocol, ssl_options

    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise click.ClickException("--ssl-certfile and --ssl-keyfile go together")
    if ssl_client_ca and not ssl_certfile:
        raise click.ClickException("--ssl-client-ca needs --ssl-certfile and --ssl-keyfile")
    settings = ctx.settings().with_bind(host, port, tls=bool(ssl_certfile))
    if not settings.signing_key_path.exists():
        raise ctx.not_initialised()
    if ssl_certfile and ssl_keyfile:
        _check_tls_files(ssl_certfile, ssl_keyfile, ssl_client_ca)
    _check_key_permissions(settings, ssl_keyfile, allowed=allow_insecure_key_permissions)
    _check_key_source(settings)
    base = settings.public_base_url.rstrip("/")
    click.echo(f"sts serving {base}/services/sts (WSDL {base}/services/sts?wsdl, MEX {base}/adfs/services/trust/mex,"
               f" metadata {base}/FederationMetadata/2007-06/FederationMetadata.xml)")
    banner = demo_banner(ctx.home)
    if banner:
        click.echo(banner.rstrip())
    for line in _console_banner(ctx, base):
        click.echo(line)
    loopback = _is_loopback(host)
    client_certificates = bool(ssl_client_ca)
    os.environ.update(STS_HOME=str(ctx.home.resolve()), STS_PUBLIC_BASE_URL=settings.public_base_url,
                      STS_LOOPBACK_BIND="1" if loopback else "0",
                      STS_TLS_CLIENT_CERTS="1" if client_certificates else "0")
    # httptools (or h11), each handing the TLS client certificate to the app (sts.web.tls); uvloop when installed.
    options = dict(host=host, port=port, log_level=settings.log_level, proxy_headers=False,
                   log_config=logging_config(settings.log_format, settings.log_level), http=http_protocol(),
                   loop="auto",
                   timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
                   **ssl_options(ssl_certfile, ssl_keyfile, ssl_client_ca))
    if workers > 1:
        config = uvicorn.Config("sts.web.asgi:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]
    else:
        from sts.web.asgi import create_app

        app = create_app(_build_runtime(settings), loopback_bind=loopback, client_certificates=client_certificates)
        config = uvicorn.Config(app, **options)  # type: ignore[arg-type]
    with worker_directory(workers):  # STS_METRICS_DIR: the workers' counters add up (sts.web.metrics)
        _serve_until_stopped(config)


def _check_key_source(settings: Settings) -> None:
    """Refuse to start when the keys cannot be loaded from where key_source says (before any worker starts)."""
    from sts.tokens.key_store import KeySourceError, check_key_source

    with _database_errors(settings):
        try:
            check_key_source(settings)
        except KeySourceError as exc:
            raise click.ClickException(f"refusing to start: {exc}") from None


def _check_key_permissions(settings: Settings, ssl_keyfile: str | None, *, allowed: bool) -> None:
    """Refuse to start with a private key other users can read (``sts check-config`` reports the same)."""
    from sts.admin.config_check import key_permission_findings

    findings = key_permission_findings(settings, [Path(ssl_keyfile)] if ssl_keyfile else [], keys_only=True)
    if not findings:
        return
    problems = "; ".join(f"{finding.problem} (fix: {finding.fix})" for finding in findings)
    if not allowed:
        raise click.ClickException(f"refusing to start: {problems}; or start with --allow-insecure-key-permissions")
    click.echo(f"warning: {problems}", err=True)


class _Stopped(Exception):
    """SIGTERM, once uvicorn has drained (it raises the signal again after its graceful shutdown)."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def _serve_until_stopped(config: uvicorn.Config) -> None:
    """Serve until SIGTERM or SIGINT, then drain and exit 0.

    On the signal the listening socket closes at once (new connections are refused), every request in flight gets
    its complete answer, and whatever still runs after ``graceful_shutdown_seconds`` is cancelled. uvicorn drains,
    then raises SIGTERM again so that the default action would kill the process (exit status 143): a service
    manager would count that as a failure, so the signal ends the command here instead, with status 0.
    """
    from uvicorn.config import STARTUP_FAILURE

    from sts.web.draining import DrainingServer

    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        if config.workers > 1:
            _DrainingSupervisor(config, sockets=[config.bind_socket()]).run()
            return
        server = DrainingServer(config)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)  # as uvicorn.run: the port is taken, the app failed to load, ...
    except (_Stopped, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


class _DrainingSupervisor(Multiprocess):
    """uvicorn's supervisor of ``--workers`` processes, stopping at once on SIGTERM/SIGINT.

    uvicorn's own one notices the signal within half a second and keeps the shared listening socket open until every
    worker has drained, so a client that connects meanwhile is queued and then reset. This one closes its copy of
    the socket and passes SIGTERM to the workers inside the signal handler; each worker closes its copy as it
    starts to drain, so new connections are refused while the requests in flight finish. Each worker runs a
    ``sts.web.draining.DrainingServer``, which first takes over the connections still in the accept queue.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        from sts.web.draining import DrainingProcess

        # uvicorn has no hook for the worker's server class: its supervisor builds workers from this module name.
        multiprocess.Process = DrainingProcess  # type: ignore[misc]
        super().__init__(config, sockets)
        self._stopping = False
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)

    def _stop(self, signum: int, frame: object) -> None:
        self._stopping = True
        for sock in self.sockets:
            sock.close()
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except ProcessLookupError:  # already gone
                    pass
        self.signal_queue.append(signum)  # the supervisor's loop then stops and joins the workers

    def keep_subprocess_alive(self) -> None:
        if not self._stopping:  # a worker that drained and exited is not to be replaced (its socket is closed)
            super().keep_subprocess_alive()


def _console_banner(ctx: _Context, base: str) -> list[str]:
    """Where the console is and the exact command that adds an administrator, runnable as printed."""
    command = f"{_self_command()} --home {shlex.quote(str(ctx.home))} admin add root"
    stores = ctx.stores()
    try:
        has_admin = any(user.admin and not user.disabled for user in stores.users.list())
    finally:
        stores.close()
    if has_admin:
        return [f"console {base}/console/ (add an administrator: {command})"]
    return [f"console {base}/console/", f"no administrator yet: create the first one with  {command}"]


def _self_command() -> str:
    """How this ``sts`` was started (``.venv/bin/sts`` after ``make run``), so the printed command runs as is."""
    program = sys.argv[0] if sys.argv else ""
    if not program or program.endswith("__main__.py") or program == "-c":
        return f"{_runnable(sys.executable)} -m sts"
    return _runnable(program)


def _runnable(program: str) -> str:
    """``program`` as typed from the current directory: relative below it, absolute elsewhere, quoted."""
    path = Path(program)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return shlex.quote(program)
    text = str(path)
    # A file in the current directory needs "./" to run (the shell would look for a bare name on PATH).
    return shlex.quote(text if "/" in text else f"./{text}")


def _check_tls_files(certfile: str, keyfile: str, client_ca: str | None) -> None:
    """Load the TLS files as uvicorn will, so that a bad one is one line before any server (or worker) starts.

    An encrypted key is left to uvicorn, which asks for its password as before.
    """
    asked: list[bool] = []

    def no_password() -> bytes:
        asked.append(True)
        return b""

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile, password=no_password)
    except ssl.SSLError as exc:
        if not asked:
            raise click.ClickException(_tls_problem(certfile, keyfile, exc)) from None
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except ssl.SSLError as exc:
            raise click.ClickException(f"--ssl-client-ca {client_ca}: not a PEM certificate bundle "
                                       f"({exc.reason or exc})") from None


def _tls_problem(certfile: str, keyfile: str, exc: ssl.SSLError) -> str:
    """Which TLS file is wrong, in words (OpenSSL often says only "PEM lib")."""
    from sts.tokens.crypto.keys import load_certificate, load_private_key, public_keys_match

    try:
        certificate = load_certificate(Path(certfile).read_bytes())
    except ValueError as problem:
        return f"--ssl-certfile {certfile}: {problem}"
    try:
        key = load_private_key(Path(keyfile).read_bytes())
    except ValueError as problem:
        return f"--ssl-keyfile {keyfile}: {problem}"
    if not public_keys_match(key, certificate):
        return f"--ssl-keyfile {keyfile} is not the private key of --ssl-certfile {certfile}"
    return f"--ssl-certfile {certfile} and --ssl-keyfile {keyfile} (both PEM): {exc.reason or exc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("demo-service")
@click.option("--sts", "sts_url", metavar="URL", help="The STS the WSDL points to (default: this home's STS).")
@click.option("--sts-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate whose signatures are trusted, pinned (default: the signing certificates of the "
                   "STS's federation metadata, read again every --metadata-refresh and when a token names an "
                   "unknown key, so a key rollover needs no restart).")
@click.option("--metadata-refresh", type=click.IntRange(1), default=3600, show_default=True, metavar="SECONDS",
              help="How often the STS's federation metadata is read again (without --sts-cert).")
@click.option("--rp-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The service's private key, to decrypt tokens (default: the home's demo/rp.key).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
@click.option("--audience", default=None, metavar="URL",
              help="The audience tokens must name (default: the demo relying party https://service-a.example/ "
                   "or the service's own endpoint).")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Register the service's endpoint at this home's STS (with the demo certificate) if missing, so "
                   "that a client following the WSDL policy gets a token for it.")
@pass_ctx
def demo_service(ctx: _Context, sts_url: str | None, sts_cert: Path | None, metadata_refresh: int,
                 rp_key: Path | None, host: str, port: int, audience: str | None, register: bool) -> None:
    """Serve Service A, a demo relying party: SOAP Hello at /service-a (WSDL at /service-a?wsdl)."""
    import uvicorn

    from sts.tokens.crypto.keys import load_certificate, load_private_key
    from sts.rp.demo_service import (DEFAULT_AUDIENCE, PATH, create_service_app, federation_metadata_url_for,
                                     verifier_following)
    from sts.rp.verifier import TokenVerifier

    cert_path = sts_cert or ctx.settings().signing_cert_path
    key_path = rp_key or ctx.home / "demo" / "rp.key"
    for what, path in (("STS certificate", cert_path), ("relying party key", key_path)):
        if not path.exists():
            raise click.ClickException(f"{what} {path} not found: give it, or run `sts --home {ctx.home} init`")
    try:
        certificates = [load_certificate(cert_path.read_bytes())]
        private_key = load_private_key(key_path.read_bytes())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if sts_cert is None:
        from sts.xmltime import utcnow

        certificates = _keyring(ctx).published(utcnow())  # every signing key the STS publishes (rollover)
    sts = sts_url or ctx.settings().with_bind("127.0.0.1", 8080, tls=False).public_base_url + "/services/sts"
    base = f"http://{host}:{port}"
    endpoint = f"{base}{PATH}"
    if register and audience is None and rp_key is None:
        _register_demo_endpoint(ctx, endpoint)
    audiences = [audience] if audience else [DEFAULT_AUDIENCE, endpoint]
    metadata_url = federation_metadata_url_for(sts) if sts_cert is None else None
    if metadata_url is not None:  # follow the STS's signing-key rollover; the home's keys until it answers
        verifier = verifier_following(metadata_url, fallback=certificates, rp_private_key=private_key,
                                      audience=audiences, refresh_interval=timedelta(seconds=metadata_refresh))
    else:
        verifier = TokenVerifier(certificates, rp_private_key=private_key, audience=audiences)
    click.echo(f"Service A serving {base}{PATH} (WSDL {base}{PATH}?wsdl), tokens from {sts}")
    if metadata_url is not None:
        click.echo(f"trusting the signing keys of {metadata_url}, read again every {metadata_refresh} s")
    uvicorn.run(create_service_app(verifier, base_url=base, sts_url=sts), host=host, port=port, log_level="warning")


def _register_demo_endpoint(ctx: _Context, endpoint: str) -> None:
    """Service A's own URL as a relying party of this home's STS, encrypted for the demo certificate."""
    cert = ctx.home / "demo" / "rp.crt"
    stores = ctx.stores()
    try:
        if stores.relying_parties.lookup(endpoint) is None and cert.exists():
            stores.relying_parties.add(RelyingParty(endpoint=endpoint, cert_pem=cert.read_bytes()))
            click.echo(f"registered relying party {endpoint} at the STS in {ctx.home}")
    finally:
        stores.close()
