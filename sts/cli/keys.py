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
    from sts.admin.base import AdminContext
    from sts.admin.keys import list_keys

    ring = _keyring(ctx)
    stores = ctx.stores()
    try:
        entries = list_keys(AdminContext.for_stores(stores, ctx.settings()), ring)
    finally:
        stores.close()
    for entry in entries:
        retire = f", published until {entry.retire_after.isoformat()}" if entry.retire_after else ""
        click.echo(f"{entry.id}  {entry.state}")
        click.echo(f"  {entry.subject}, sha256 {entry.fingerprint}, expires {entry.not_after:%Y-%m-%d}")
        click.echo(f"  active from {entry.active_from.isoformat()}{retire}")


@keys.command("rollover")
@click.option("--at", "at_time", metavar="ISO-TIME", help="When the new key starts signing (default: now + the "
              "minimum lead time, setting rollover_min_lead_seconds, 24 h unless changed). UTC if no zone.")
@click.option("--now", "switch_now", is_flag=True, help="Switch at once. Relying parties that have not fetched the "
              "metadata listing the new key reject its tokens until they refresh.")
@click.option("--allow-short-lead", is_flag=True, help="Accept an --at sooner than the minimum lead time, or past "
              "(then: now). Relying parties reject the new key's tokens until they refresh the metadata.")
@click.option("--overlap-days", type=click.FloatRange(0), default=7.0, show_default=True,
              help="How long the replaced key stays published (trusted) after the switch.")
@click.option("--import-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use this private key (PEM) instead of generating one.")
@click.option("--import-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificate of --import-key (default: a self-signed one is made).")
@pass_ctx
def keys_rollover(ctx: _Context, at_time: str | None, switch_now: bool, allow_short_lead: bool, overlap_days: float,
                  import_key: Path | None, import_cert: Path | None) -> None:
    """Schedule a new signing key (published in the metadata at once, signing from the switch time)."""
    from sts.admin.base import Actor, AdminContext, AdminError, ConfirmationRequired
    from sts.admin.keys import Override, Rollover, schedule_rollover

    if switch_now and at_time:
        raise click.UsageError("--now and --at exclude each other")
    if import_cert is not None and import_key is None:
        raise click.UsageError("--import-cert needs --import-key")
    override = Override.NOW if switch_now else Override.SHORT_LEAD if allow_short_lead else None
    request = Rollover(at=_iso_time(at_time, "--at") if at_time else None, overlap=timedelta(days=overlap_days),
                       key_pem=import_key.read_bytes() if import_key else None,
                       cert_pem=import_cert.read_bytes() if import_cert else None, override=override)
    ring = _keyring(ctx)
    stores = ctx.stores()
    try:
        done = schedule_rollover(AdminContext.for_stores(stores, ctx.settings()), Actor.cli(), request, ring)
    except ConfirmationRequired as exc:
        raise click.ClickException(f"{exc.message}. Nothing was scheduled. To switch anyway, add --allow-short-lead "
                                   f"(or --now), accepting that {exc.risk}.") from None
    except AdminError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        stores.close()
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"scheduled signing key {done.key_id} from {done.active_from.isoformat()}")
