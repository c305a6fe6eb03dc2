"""``sts client ...``: clients that authenticate by signing their requests with a certificate."""

from __future__ import annotations

from pathlib import Path

import click

from sts.cli.context import _Context, _echo_claims, _parse_claims, pass_ctx
from sts.tokens.crypto.keys import fingerprint_sha256


@click.group()
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
