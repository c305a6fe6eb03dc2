"""The ``sts`` command (a contract: names and flags are kept, options only added).

The home directory is ``--home DIR``, else ``$STS_HOME``, else ``./var``.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typing import TYPE_CHECKING

import click

from .config import Settings, load_settings, resolve_home
from .crypto.keys import fingerprint_sha256
from .store.database import Database
from .model import ANY_CLAIM, Claim, RelyingParty
from .uris import DataEncryption, KeyTransport, KeyType, SignatureAlgorithm, TokenType

if TYPE_CHECKING:
    from .keyring import Keyring
    from .wiring import Runtime

_DATA_ENCRYPTION = {"aes256-gcm": DataEncryption.AES256_GCM, "aes128-gcm": DataEncryption.AES128_GCM,
                    "aes256-cbc": DataEncryption.AES256_CBC, "aes128-cbc": DataEncryption.AES128_CBC}
_KEY_TRANSPORT = {"rsa-oaep-mgf1p": KeyTransport.RSA_OAEP_MGF1P, "rsa-1_5": KeyTransport.RSA_1_5}
_SIGNATURE = {"rsa-sha256": SignatureAlgorithm.RSA_SHA256, "rsa-sha1": SignatureAlgorithm.RSA_SHA1}


class _Context:
    def __init__(self, home: Path) -> None:
        self.home = home

    def settings(self) -> Settings:
        try:
            return load_settings(self.home)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None

    def stores(self) -> Database:
        settings = self.settings()
        if not settings.secrets_key_path.exists():
            raise click.ClickException(f"{self.home} is not initialised: run `sts --home {self.home} init` first")
        from .wiring import open_stores

        return open_stores(settings)


pass_ctx = click.make_pass_decorator(_Context)


@click.group()
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Home directory (default: $STS_HOME, else ./var).")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """sts: a WS-Trust Security Token Service."""
    ctx.obj = _Context(resolve_home(home))


@main.command()
@click.option("--no-demo", is_flag=True, help="Do not add the demo user and relying party.")
@pass_ctx
def init(ctx: _Context, no_demo: bool) -> None:
    """Create the home directory, keys, database and demo data (never overwrites keys)."""
    from .home import init_home

    report = init_home(ctx.home, demo=not no_demo)
    if report.created:
        for what in report.created:
            click.echo(f"created {what}")
    else:
        click.echo(f"{ctx.home} is already initialised")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="Serve TLS with this certificate.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="Private key for --ssl-certfile.")
@click.option("--ssl-client-ca", type=click.Path(exists=True, dir_okay=False),
              help="Ask TLS clients for a certificate issued by (or equal to) one in this PEM bundle; registered "
                   "clients then authenticate by it on /adfs/services/trust/{13,2005}/certificatetransport.")
@pass_ctx
def serve(ctx: _Context, host: str, port: int, workers: int, ssl_certfile: str | None,
          ssl_keyfile: str | None, ssl_client_ca: str | None) -> None:
    """Serve the STS over HTTP (or HTTPS with --ssl-certfile/--ssl-keyfile)."""
    import uvicorn

    from .home import demo_banner
    from .tls import TlsH11Protocol, ssl_options

    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise click.ClickException("--ssl-certfile and --ssl-keyfile go together")
    if ssl_client_ca and not ssl_certfile:
        raise click.ClickException("--ssl-client-ca needs --ssl-certfile and --ssl-keyfile")
    settings = ctx.settings().with_bind(host, port, tls=bool(ssl_certfile))
    if not settings.signing_key_path.exists():
        raise click.ClickException(f"{ctx.home} is not initialised: run `sts --home {ctx.home} init` first")
    base = settings.public_base_url.rstrip("/")
    click.echo(f"sts serving {base}/services/sts (WSDL {base}/services/sts?wsdl, MEX {base}/adfs/services/trust/mex,"
               f" metadata {base}/FederationMetadata/2007-06/FederationMetadata.xml)")
    banner = demo_banner(ctx.home)
    if banner:
        click.echo(banner.rstrip())
    loopback = _is_loopback(host)
    client_certificates = bool(ssl_client_ca)
    os.environ.update(STS_HOME=str(ctx.home.resolve()), STS_PUBLIC_BASE_URL=settings.public_base_url,
                      STS_LOOPBACK_BIND="1" if loopback else "0",
                      STS_TLS_CLIENT_CERTS="1" if client_certificates else "0")
    # TlsH11Protocol: uvicorn's h11 protocol that hands the TLS client certificate to the app (sts.tls).
    options = dict(host=host, port=port, log_level=settings.log_level, proxy_headers=False, http=TlsH11Protocol,
                   **ssl_options(ssl_certfile, ssl_keyfile, ssl_client_ca))
    if workers > 1:
        uvicorn.run("sts.asgi:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]
        return
    from .asgi import create_app
    from .wiring import build_runtime

    app = create_app(build_runtime(settings), loopback_bind=loopback, client_certificates=client_certificates)
    uvicorn.run(app, **options)  # type: ignore[arg-type]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main.command()
@pass_ctx
def cert(ctx: _Context) -> None:
    """Print the STS signing certificate in use now (PEM)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from .xmltime import utcnow

    path = ctx.settings().signing_cert_path
    if not path.exists():
        raise click.ClickException(f"no signing certificate at {path}: run `sts init` first")
    current = _keyring(ctx).current(utcnow())
    click.echo(current.certificate.public_bytes(Encoding.PEM).decode().rstrip())


# --- users -------------------------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Manage users and their claims."""


def _parse_claims(values: tuple[str, ...]) -> list[tuple[str, str]]:
    claims = []
    for item in values:
        uri, sep, value = item.partition("=")
        if not sep or not uri.strip():
            raise click.BadParameter(f"{item!r} is not URI=VALUE", param_hint="--claim")
        claims.append((uri.strip(), value))
    return claims


@user.command("add")
@click.argument("name")
@click.option("--password", help="The password (prompted for when neither this nor --password-stdin is given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--claim", "claims", multiple=True, metavar="URI=VALUE", help="A claim; repeat for more.")
@click.option("--admin", is_flag=True, help="Give the user the administrator role.")
@pass_ctx
def user_add(ctx: _Context, name: str, password: str | None, password_stdin: bool, claims: tuple[str, ...],
             admin: bool) -> None:
    """Add a user."""
    parsed = _parse_claims(claims)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("the password must not be empty")
    try:
        ctx.stores().users.add(name, password, parsed, admin=admin)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added user {name}")


@user.command("list")
@pass_ctx
def user_list(ctx: _Context) -> None:
    """List users and their claims."""
    for record in ctx.stores().users.list():
        flags = "".join([" (admin)" if record.admin else "", " (disabled)" if record.disabled else ""])
        click.echo(f"{record.name}{flags}")
        _echo_claims(record.claims)


def _echo_claims(claims: tuple[Claim, ...]) -> None:
    for claim in claims:
        for value in claim.values:
            click.echo(f"  {claim.uri} = {value}")


@user.command("remove")
@click.argument("name")
@pass_ctx
def user_remove(ctx: _Context, name: str) -> None:
    """Remove a user."""
    if not ctx.stores().users.remove(name):
        raise click.ClickException(f"no user named {name!r}")
    click.echo(f"removed user {name}")


@main.group()
def admin() -> None:
    """Manage administrators of the management console (/console)."""


@admin.command("add")
@click.argument("name")
@click.option("--password", help="The password (prompted for when neither this nor --password-stdin is given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def admin_add(ctx: _Context, name: str, password: str | None, password_stdin: bool) -> None:
    """Add a console administrator (the same as `sts user add NAME --admin`)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("the password must not be empty")
    try:
        ctx.stores().users.add(name, password, admin=True)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added administrator {name}")


# --- relying parties ---------------------------------------------------------------------------------


@main.group()
def rp() -> None:
    """Manage trusted relying parties."""


@rp.command("add")
@click.option("--endpoint", help="The relying party's address (AppliesTo); with --metadata, overrides its entityID.")
@click.option("--metadata", "metadata_source", metavar="FILE|URL",
              help="Read the endpoint and encryption certificate from the relying party's WS-Federation or "
                   "SAML 2.0 SP metadata (a file, or an http(s) URL).")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The relying party's public certificate (PEM or DER); tokens are encrypted for it.")
@click.option("--token-type", type=click.Choice(["saml11", "saml20"]), default="saml20", show_default=True)
@click.option("--require-claim", multiple=True, metavar="URI", help="A claim always put in its tokens.")
@click.option("--permit-claim", multiple=True, metavar="URI|*", help="A claim it may request (default: any).")
@click.option("--no-encrypt", is_flag=True, help="Issue unencrypted tokens (the certificate becomes optional).")
@click.option("--prefix", is_flag=True, help="Match every AppliesTo that starts with the endpoint.")
@click.option("--default-lifetime", type=click.IntRange(1), metavar="SECONDS", help="Lifetime when none is asked.")
@click.option("--max-lifetime", type=click.IntRange(1), metavar="SECONDS", help="Cap on a requested lifetime.")
@click.option("--refuse-long-lifetime", is_flag=True, help="Fault (InvalidTimeRange) instead of clamping.")
@click.option("--name-id-claim", metavar="URI", help="Claim whose value becomes the NameID.")
@click.option("--data-encryption", type=click.Choice(sorted(_DATA_ENCRYPTION)), default="aes256-gcm",
              show_default=True, help="CBC only for peers without GCM (legacy).")
@click.option("--key-transport", type=click.Choice(sorted(_KEY_TRANSPORT)), default="rsa-oaep-mgf1p",
              show_default=True)
@click.option("--signature", type=click.Choice(sorted(_SIGNATURE)), default="rsa-sha256", show_default=True)
@pass_ctx
def rp_add(ctx: _Context, endpoint: str | None, metadata_source: str | None, cert_file: Path | None, token_type: str,
           require_claim: tuple[str, ...], permit_claim: tuple[str, ...], no_encrypt: bool, prefix: bool,
           default_lifetime: int | None, max_lifetime: int | None, refuse_long_lifetime: bool,
           name_id_claim: str | None, data_encryption: str, key_transport: str, signature: str) -> None:
    """Register a trusted relying party (--endpoint and --cert, or --metadata)."""
    cert_pem = None
    if metadata_source is not None:
        from .rp_metadata import fetch_rp_metadata, parse_rp_metadata

        try:
            if metadata_source.lower().startswith(("http://", "https://")):
                data = fetch_rp_metadata(metadata_source)
            else:
                data = Path(metadata_source).read_bytes()
            meta_endpoint, cert_pem = parse_rp_metadata(data)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"{metadata_source}: {exc}") from None
        endpoint = endpoint or meta_endpoint
    if endpoint is None:
        raise click.ClickException("--endpoint URL (or --metadata FILE|URL) is required")
    if cert_file is None and cert_pem is None and not no_encrypt:
        raise click.ClickException("--cert FILE is required unless --no-encrypt is given")
    if cert_file is not None:
        cert_pem = _read_cert(cert_file)
    elif cert_pem is not None:
        cert_pem = _checked_pem(cert_pem, str(metadata_source))
    settings = ctx.settings()
    relying_party = RelyingParty(
        endpoint=endpoint,
        cert_pem=cert_pem,
        match_prefix=prefix,
        token_type=TokenType.from_short(token_type),
        required_claims=tuple(require_claim),
        permitted_claims=tuple(permit_claim) or (ANY_CLAIM,),
        encrypt=not no_encrypt,
        default_lifetime=timedelta(seconds=default_lifetime or settings.default_lifetime_seconds),
        max_lifetime=timedelta(seconds=max_lifetime or settings.max_lifetime_seconds),
        refuse_long_lifetime=refuse_long_lifetime,
        name_id_claim=name_id_claim,
        signature_algorithm=_SIGNATURE[signature],
        data_encryption=_DATA_ENCRYPTION[data_encryption],
        key_transport=_KEY_TRANSPORT[key_transport],
    )
    if relying_party.default_lifetime > relying_party.max_lifetime:
        relying_party = replace(relying_party, default_lifetime=relying_party.max_lifetime)
    try:
        ctx.stores().relying_parties.add(relying_party)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added relying party {endpoint}")


def _read_cert(cert_file: Path) -> bytes:
    return _checked_pem(cert_file.read_bytes(), str(cert_file))


def _checked_pem(data: bytes, source: str) -> bytes:
    """A certificate (PEM or DER) checked for validity now, as PEM; ClickException naming ``source``."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from .crypto.keys import check_certificate, load_certificate
    from .xmltime import utcnow

    try:
        certificate = load_certificate(data)
        check_certificate(certificate, utcnow())
    except ValueError as exc:
        raise click.ClickException(f"{source}: {exc}") from None
    return certificate.public_bytes(Encoding.PEM)


_KEY_TYPES = {"bearer": KeyType.BEARER, "symmetric": KeyType.SYMMETRIC, "public": KeyType.PUBLIC_KEY}


@rp.command("update")
@click.argument("url")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replace the relying party's certificate now.")
@click.option("--allow-token-type", multiple=True, type=click.Choice(["saml11", "saml20", "any"]),
              help="Token types it accepts (repeat; 'any' clears the restriction).")
@click.option("--allow-key-type", multiple=True, type=click.Choice([*_KEY_TYPES, "any"]),
              help="Key types it accepts (repeat; 'any' clears the restriction).")
@click.option("--audience", "audiences", multiple=True, metavar="URI",
              help="An additional AudienceRestriction value (repeat; replaces the list).")
@click.option("--clear-audiences", is_flag=True, help="Remove every additional audience.")
@click.option("--next-cert", "next_cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificate tokens are encrypted for from --next-cert-from on (certificate rollover).")
@click.option("--next-cert-from", metavar="ISO-TIME", help="When the next certificate takes over (UTC if no zone).")
@click.option("--token-type", type=click.Choice(["saml11", "saml20"]), help="The default token type.")
@click.option("--default-lifetime", type=click.IntRange(1), metavar="SECONDS")
@click.option("--max-lifetime", type=click.IntRange(1), metavar="SECONDS")
@click.option("--require-claim", multiple=True, metavar="URI", help="Required claims (repeat; replaces the list).")
@click.option("--permit-claim", multiple=True, metavar="URI|*", help="Permitted claims (repeat; replaces the list).")
@click.option("--encrypt/--no-encrypt", default=None, help="Encrypt its tokens (needs a certificate).")
@click.option("--name-id-claim", metavar="URI")
@pass_ctx
def rp_update(ctx: _Context, url: str, cert_file: Path | None, allow_token_type: tuple[str, ...],
              allow_key_type: tuple[str, ...], audiences: tuple[str, ...], clear_audiences: bool,
              next_cert_file: Path | None, next_cert_from: str | None, token_type: str | None,
              default_lifetime: int | None, max_lifetime: int | None, require_claim: tuple[str, ...],
              permit_claim: tuple[str, ...], encrypt: bool | None, name_id_claim: str | None) -> None:
    """Change a registered relying party's policy (only what is given changes)."""
    from .store.relying_parties import check_endpoint

    stores = ctx.stores()
    party = stores.relying_parties.get(url)
    if party is None:
        raise click.ClickException(f"no relying party with endpoint {url!r}")
    changes: dict[str, object] = {}
    if cert_file is not None:
        changes["cert_pem"] = _read_cert(cert_file)
    if allow_token_type:
        changes["allowed_token_types"] = () if "any" in allow_token_type else tuple(
            dict.fromkeys(TokenType.from_short(t) for t in allow_token_type))
    if allow_key_type:
        changes["allowed_key_types"] = () if "any" in allow_key_type else tuple(
            dict.fromkeys(_KEY_TYPES[k] for k in allow_key_type))
    for audience in audiences:
        try:
            check_endpoint(audience)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--audience") from None
    if clear_audiences:
        changes["additional_audiences"] = ()
    if audiences:
        changes["additional_audiences"] = tuple(dict.fromkeys(audiences))
    if bool(next_cert_file) != bool(next_cert_from):
        raise click.ClickException("--next-cert and --next-cert-from go together")
    if next_cert_file is not None and next_cert_from is not None:
        changes["next_cert_pem"] = _read_cert(next_cert_file)
        changes["next_cert_from"] = _iso_time(next_cert_from, "--next-cert-from")
    if token_type:
        changes["token_type"] = TokenType.from_short(token_type)
    if default_lifetime:
        changes["default_lifetime"] = timedelta(seconds=default_lifetime)
    if max_lifetime:
        changes["max_lifetime"] = timedelta(seconds=max_lifetime)
    if require_claim:
        changes["required_claims"] = tuple(require_claim)
    if permit_claim:
        changes["permitted_claims"] = tuple(permit_claim)
    if encrypt is not None:
        changes["encrypt"] = encrypt
    if name_id_claim is not None:
        changes["name_id_claim"] = name_id_claim or None
    updated = replace(party, **changes)  # type: ignore[arg-type]
    if updated.encrypt and not updated.cert_pem:
        raise click.ClickException("an encrypted relying party needs a certificate (--cert) or --no-encrypt")
    if updated.default_lifetime > updated.max_lifetime:
        updated = replace(updated, default_lifetime=updated.max_lifetime)
    stores.relying_parties.update(updated)
    stores.close()
    click.echo(f"updated relying party {party.endpoint}")


def _iso_time(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@rp.command("list")
@pass_ctx
def rp_list(ctx: _Context) -> None:
    """List trusted relying parties."""
    from .crypto.keys import fingerprint_sha256, load_certificate

    for party in ctx.stores().relying_parties.list():
        cert_text = "no certificate"
        if party.cert_pem:
            certificate = load_certificate(party.cert_pem)
            cert_text = (f"{certificate.subject.rfc4514_string()} sha256 {fingerprint_sha256(certificate)}"
                         f" expires {certificate.not_valid_after_utc:%Y-%m-%d}")
        click.echo(f"{party.endpoint}{' (prefix)' if party.match_prefix else ''}")
        click.echo(f"  token {party.token_type.short}, {'encrypted' if party.encrypt else 'not encrypted'},"
                   f" lifetime {int(party.default_lifetime.total_seconds())}s"
                   f" (max {int(party.max_lifetime.total_seconds())}s)")
        click.echo(f"  certificate: {cert_text}")
        if party.required_claims:
            click.echo(f"  required claims: {', '.join(party.required_claims)}")
        click.echo(f"  permitted claims: {', '.join(party.permitted_claims)}")
        if party.allowed_token_types:
            click.echo(f"  allowed token types: {', '.join(t.short for t in party.allowed_token_types)}")
        if party.allowed_key_types:
            click.echo(f"  allowed key types: {', '.join(k.value for k in party.allowed_key_types)}")
        if party.additional_audiences:
            click.echo(f"  additional audiences: {', '.join(party.additional_audiences)}")
        if party.next_cert_pem and party.next_cert_from:
            click.echo(f"  next certificate from {party.next_cert_from.isoformat()}")


@rp.command("remove")
@click.argument("url")
@pass_ctx
def rp_remove(ctx: _Context, url: str) -> None:
    """Remove a trusted relying party."""
    if not ctx.stores().relying_parties.remove(url):
        raise click.ClickException(f"no relying party with endpoint {url!r}")
    click.echo(f"removed relying party {url}")


# --- clients (X.509-signed requests) -----------------------------------------------------------------------


@main.group()
def client() -> None:
    """Manage clients that authenticate by signing their requests with a certificate."""


@client.command("add")
@click.argument("name")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client's certificate (PEM or DER); never its private key.")
@click.option("--claim", "claims", multiple=True, metavar="URI=VALUE", help="A claim; repeat for more.")
@click.option("--allow-sha1", is_flag=True, help="Accept RSA-SHA1/SHA-1 signatures from this client (legacy).")
@pass_ctx
def client_add(ctx: _Context, name: str, cert_file: Path, claims: tuple[str, ...], allow_sha1: bool) -> None:
    """Register a client: its NAME is the subject of its tokens."""
    parsed = _parse_claims(claims)
    data = cert_file.read_bytes()
    if b"PRIVATE KEY-----" in data:
        raise click.ClickException(f"{cert_file} contains a private key: give the client's certificate only "
                                   "(and keep the key with the client)")
    try:
        record = ctx.stores().clients.add(name, data, parsed, allow_sha1=allow_sha1)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added client {name} (certificate SHA-256 {fingerprint_sha256(record.certificate)})")


@client.command("list")
@pass_ctx
def client_list(ctx: _Context) -> None:
    """List clients, their certificates and claims."""
    for record in ctx.stores().clients.list():
        flags = "".join([" (sha1 allowed)" if record.allow_sha1 else "", " (disabled)" if record.disabled else ""])
        cert = record.certificate
        click.echo(f"{record.name}{flags}")
        click.echo(f"  subject {cert.subject.rfc4514_string()}, expires {cert.not_valid_after_utc.date()}")
        click.echo(f"  SHA-256 {fingerprint_sha256(cert)}")
        _echo_claims(record.claims)


@client.command("remove")
@click.argument("name")
@pass_ctx
def client_remove(ctx: _Context, name: str) -> None:
    """Remove a client."""
    if not ctx.stores().clients.remove(name):
        raise click.ClickException(f"no client named {name!r}")
    click.echo(f"removed client {name}")


@main.command("demo-service")
@click.option("--sts", "sts_url", metavar="URL", help="The STS the WSDL points to (default: this home's STS).")
@click.option("--sts-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate whose signatures are trusted (default: every signing certificate the home's "
                   "keyring publishes now).")
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
def demo_service(ctx: _Context, sts_url: str | None, sts_cert: Path | None, rp_key: Path | None, host: str,
                 port: int, audience: str | None, register: bool) -> None:
    """Serve Service A, a demo relying party: SOAP Hello at /service-a (WSDL at /service-a?wsdl)."""
    import uvicorn

    from .crypto.keys import load_certificate, load_private_key
    from .demo_service import DEFAULT_AUDIENCE, PATH, create_service_app
    from .verifier import TokenVerifier

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
        from .xmltime import utcnow

        certificates = _keyring(ctx).published(utcnow())  # every signing key the STS publishes (rollover)
    sts = sts_url or ctx.settings().with_bind("127.0.0.1", 8080, tls=False).public_base_url + "/services/sts"
    base = f"http://{host}:{port}"
    endpoint = f"{base}{PATH}"
    if register and audience is None and rp_key is None:
        _register_demo_endpoint(ctx, endpoint)
    audiences = [audience] if audience else [DEFAULT_AUDIENCE, endpoint]
    verifier = TokenVerifier(certificates, rp_private_key=private_key, audience=audiences)
    click.echo(f"Service A serving {base}{PATH} (WSDL {base}{PATH}?wsdl), tokens from {sts}")
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


# --- console back-end: explain, rp update, keys ---------------------------------------------------------------


@main.command()
@click.option("--user", "user_name", required=True, help="Whom the token would be for.")
@click.option("--rp", "rp_url", required=True, metavar="URL", help="The AppliesTo (relying party).")
@click.option("--claim", "claims", multiple=True, metavar="URI[?]", help="A requested claim; a trailing ? makes it "
              "optional. Repeat for more.")
@click.option("--token-type", type=click.Choice(["saml11", "saml20"]), default=None)
@click.option("--lifetime", type=click.IntRange(1), metavar="SECONDS", help="Requested lifetime from now.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@pass_ctx
def explain(ctx: _Context, user_name: str, rp_url: str, claims: tuple[str, ...], token_type: str | None,
            lifetime: int | None, as_json: bool) -> None:
    """Dry-run an Issue: what the token would carry and why (nothing is signed or recorded)."""
    import json

    from .explain import explain_issuance

    runtime = _runtime(ctx)
    requested = [(c[:-1], True) if c.endswith("?") else (c, False) for c in claims]
    answer = explain_issuance(runtime, user=user_name, rp=rp_url, claims=requested, token_type=token_type,
                              lifetime_seconds=lifetime)
    runtime.stores.close()
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2))
    elif answer.fault is not None:
        click.echo(f"refused: {answer.fault['code']}: {answer.fault['reason']}")
    else:
        lt = answer.lifetime or {}
        click.echo(f"token type: {answer.token_type}")
        click.echo(f"subject: {answer.subject} ({answer.name_id_format})")
        click.echo(f"audience: {', '.join(answer.audience)}")
        click.echo(f"lifetime: {lt.get('created')} .. {lt.get('expires')} ({lt.get('seconds')}s"
                   f"{', capped by the relying party' if lt.get('capped') else ''})")
        click.echo("claims:")
        for claim in answer.claims:
            click.echo(f"  {claim['uri']} = {', '.join(claim['values'])}  [{claim['source']}]")
        for left_out in answer.omitted:
            click.echo(f"  (omitted) {left_out['uri']}: {left_out['why']}")
        algorithms = answer.algorithms or {}
        click.echo(f"signature: {algorithms.get('signature')}")
        if algorithms.get("encrypted"):
            click.echo(f"encrypted: {algorithms.get('data_encryption')} / {algorithms.get('key_transport')}")
        else:
            click.echo("encrypted: no")
    if not answer.ok:
        sys.exit(1)


def _runtime(ctx: _Context) -> Runtime:
    settings = ctx.settings()
    if not settings.secrets_key_path.exists():
        raise click.ClickException(f"{ctx.home} is not initialised: run `sts --home {ctx.home} init` first")
    from .wiring import build_runtime

    return build_runtime(settings)


@main.group()
def keys() -> None:
    """The STS signing keyring: list keys, schedule a rollover."""


def _keyring(ctx: _Context) -> Keyring:
    from .keyring import Keyring

    settings = ctx.settings()
    if not settings.signing_key_path.exists():
        raise click.ClickException(f"{ctx.home} is not initialised: run `sts --home {ctx.home} init` first")
    return Keyring.for_home(settings.signing_key_path)


@keys.command("list")
@pass_ctx
def keys_list(ctx: _Context) -> None:
    """List the signing keys, their schedule and state."""
    for entry in _keyring(ctx).entries():
        retire = f", published until {entry.retire_after.isoformat()}" if entry.retire_after else ""
        click.echo(f"{entry.id}  {entry.state}")
        click.echo(f"  {entry.subject}, sha256 {entry.fingerprint}, expires {entry.not_after:%Y-%m-%d}")
        click.echo(f"  active from {entry.active_from.isoformat()}{retire}")


@keys.command("rollover")
@click.option("--at", "at_time", metavar="ISO-TIME", help="When the new key starts signing (default: in 24 hours; "
              "relying parties should fetch the metadata listing it before then). UTC if no zone.")
@click.option("--overlap-days", type=click.FloatRange(0), default=7.0, show_default=True,
              help="How long the replaced key stays published (trusted) after --at.")
@click.option("--import-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use this private key (PEM) instead of generating one.")
@click.option("--import-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificate of --import-key (default: a self-signed one is made).")
@pass_ctx
def keys_rollover(ctx: _Context, at_time: str | None, overlap_days: float, import_key: Path | None,
                  import_cert: Path | None) -> None:
    """Schedule a new signing key."""
    from .xmltime import utcnow

    ring = _keyring(ctx)
    active_from = _iso_time(at_time, "--at") if at_time else utcnow() + timedelta(hours=24)
    overlap = timedelta(days=overlap_days)
    if import_cert is not None and import_key is None:
        raise click.ClickException("--import-cert needs --import-key")
    try:
        if import_key is not None:
            key_id = ring.schedule(import_key.read_bytes(), import_cert.read_bytes() if import_cert else None,
                                   active_from=active_from, overlap=overlap)
        else:
            key_id = ring.generate_and_schedule(active_from, overlap)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"scheduled signing key {key_id} from {active_from.isoformat()}")


# `sts token ...` lives in its own modules (client side and relying-party side).
from . import cli_verify  # noqa: E402,F401 - registers `token verify` and `token show`
from .cli_token import token  # noqa: E402

main.add_command(token)


if __name__ == "__main__":  # pragma: no cover
    main()
