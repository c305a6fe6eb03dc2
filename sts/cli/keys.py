"""``sts cert`` and ``sts keys ...``: the STS signing certificate and keyring."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from sts.cli.context import _Context, _iso_time, _keyring, pass_ctx


@click.command()
@pass_ctx
def cert(ctx: _Context) -> None:
    """Print the STS signing certificate in use now (PEM)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from sts.xmltime import utcnow

    path = ctx.settings().signing_cert_path
    if not path.exists():
        raise click.ClickException(f"no signing certificate at {path}: run `sts init` first")
    current = _keyring(ctx).current(utcnow())
    click.echo(current.certificate.public_bytes(Encoding.PEM).decode().rstrip())


@click.group()
def keys() -> None:
    """The STS signing keyring: list keys, schedule a rollover."""


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
    from sts.xmltime import utcnow

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
