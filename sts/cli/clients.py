"""``sts client ...``: clients that authenticate by signing their requests with a certificate.

A thin adapter over ``sts.admin.clients`` (see ``sts.cli.rp`` for the shared error and warning printing), and
``sts client test`` over ``sts.admin.client_test``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from sts.admin import clients as core
from sts.admin.base import Actor
from sts.admin.users import parse_claim_lines
from sts.cli.context import _Context, _echo_claims, pass_ctx
from sts.cli.context import admin_context, admin_errors, echo_warnings
from sts.cli.rp import read_file
from sts.home import DEMO_RP_ENDPOINT
from sts.tokens.crypto.keys import fingerprint_sha256
from sts.uris import SIGNATURE_NAMES, SoapVersion, TrustVersion

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


@client.command("test")
@click.argument("url")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client's certificate (PEM or DER).")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client's private key (PEM or DER, unencrypted).")
@click.option("--applies-to", default=DEMO_RP_ENDPOINT, show_default=True, help="The relying party asked for.")
@click.option("--soap", type=click.Choice(["11", "12"]), default="12", show_default=True, help="SOAP version.")
@click.option("--wst", type=click.Choice(["13", "2005"]), default="13", show_default=True, help="WS-Trust version.")
@click.option("--algorithm", type=click.Choice(sorted(SIGNATURE_NAMES)), default=None,
              help="Signature algorithm (default ecdsa-sha256 for an EC key, rsa-sha256 otherwise; rsa-sha1 also "
                   "digests with SHA-1).")
@click.option("--insecure", is_flag=True, help="Do not verify the STS's TLS certificate.")
@pass_ctx
def client_test(ctx: _Context, url: str, cert_file: Path, key_file: Path, applies_to: str, soap: str, wst: str,
                algorithm: str | None, insecure: bool) -> None:
    """Send one signed Issue request to the STS at URL (its endpoint or base URL) and say what became of it.

    Prints the token issued, or the fault (generic, as on the wire). Run on the STS host (with its --home), it also
    prints the detailed reason the STS recorded for a refusal. Exits 0 on a token, 1 otherwise.
    """
    from sts.admin import client_test as probe_core
    from sts.client.transport import endpoint_of
    from sts.protocol.wstrust.response import TrustClientError
    from sts.tokens.crypto.keys import load_certificate, load_private_key

    try:
        key = load_private_key(key_file.read_bytes())
        cert = load_certificate(cert_file.read_bytes())
        endpoint = endpoint_of(url)
    except (ValueError, TypeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    probe = probe_core.build_probe(
        endpoint, key, cert, applies_to=applies_to,
        soap=SoapVersion.SOAP11 if soap == "11" else SoapVersion.SOAP12,
        version=TrustVersion.WST13 if wst == "13" else TrustVersion.WST2005,
        algorithm=SIGNATURE_NAMES[algorithm] if algorithm else None)
    click.echo(f"request: Issue for {applies_to} at {endpoint} (SOAP {soap[0]}.{soap[1]}, WS-Trust "
               f"{'1.3' if wst == '13' else '2005/02'}, {probe.algorithm_name}), message {probe.message_id}")
    started = datetime.now(UTC)
    try:
        outcome = probe_core.send_probe(probe, verify=not insecure)
    except TrustClientError as exc:  # no answer, or one that is not SOAP
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if outcome.issued:
        click.echo(f"token issued: {outcome.token_type or 'unknown type'} ({outcome.token_name or 'no token'})")
        return
    click.echo(f"refused: {outcome.fault_code}: {outcome.fault_reason}")
    _echo_local_reason(ctx, probe.message_id, started, datetime.now(UTC))
    sys.exit(1)


def _echo_local_reason(ctx: _Context, message_id: str, started: datetime, finished: datetime) -> None:
    """The refusal's detailed reason from this home's audit trail, or why there is none here."""
    from sts.admin.client_test import find_record
    from sts.store.audit import AuditTrail

    elsewhere = (f"the detailed reason is in the STS host's audit trail (`sts audit --outcome fault`, message "
                 f"{message_id})")
    try:
        initialised = ctx.settings().secrets_key_path.exists()
    except click.ClickException:
        initialised = False
    if not initialised:
        click.echo(f"no local audit record: {ctx.home} is not an initialised STS home; {elsewhere}")
        return
    stores = ctx.stores()
    try:
        record = find_record(AuditTrail(stores.engine), message_id, started, finished)
    finally:
        stores.close()
    if record is None:
        click.echo(f"no local audit record of this request in {ctx.home} (another STS's home, or a request refused "
                   f"before authentication); {elsewhere}")
        return
    at = record.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"reason (local audit record {at}, {record.event}, {record.outcome}): {record.detail.get('reason')}")
