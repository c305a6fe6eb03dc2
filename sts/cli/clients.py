"""``sts client ...``: clients that authenticate by signing their requests with a certificate.

A thin adapter over ``sts.admin.clients`` (see ``sts.cli.rp`` for the shared error and warning printing).
"""

from __future__ import annotations

from pathlib import Path

import click

from sts.admin import clients as core
from sts.admin.base import Actor
from sts.admin.users import parse_claim_lines
from sts.cli.context import _Context, _echo_claims, pass_ctx
from sts.cli.context import admin_context, admin_errors, echo_warnings
from sts.cli.rp import read_file
from sts.tokens.crypto.keys import fingerprint_sha256

_OPTIONS = {"name": "NAME", "cert": "--cert", "claims": "--claim"}


@click.group()
def client() -> None:
    """Manage clients that authenticate by signing their requests with a certificate."""


@client.command("add")
@click.argument("name")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client's certificate (PEM or DER); never its private key.")
@click.option("--claim", "claims", multiple=True, metavar="NAME=VALUE",
              help="A claim (a short name such as emailaddress or role, or a full URI, = the value); repeat for more.")
@click.option("--allow-sha1", is_flag=True, help="Accept RSA-SHA1/SHA-1 signatures from this client (legacy: the "
                                                 "flag is the opt-in).")
@pass_ctx
def client_add(ctx: _Context, name: str, cert_file: Path, claims: tuple[str, ...], allow_sha1: bool) -> None:
    """Register a client: its NAME is the subject of its tokens."""
    certificate = read_file(cert_file, "--cert") or b""
    with admin_errors(_OPTIONS):
        pairs = parse_claim_lines(claims)
        change = core.add_client(admin_context(ctx), Actor.cli(), name, certificate, pairs, allow_sha1=allow_sha1)
    echo_warnings(change.warnings)
    click.echo(f"added client {name} (certificate SHA-256 {fingerprint_sha256(change.client.certificate)})")


@client.command("list")
@pass_ctx
def client_list(ctx: _Context) -> None:
    """List clients, their certificates and claims."""
    for record in core.list_clients(admin_context(ctx)):
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
    with admin_errors(_OPTIONS):
        core.remove_client(admin_context(ctx), Actor.cli(), name)
    click.echo(f"removed client {name}")
