"""``sts cert`` and ``sts keys ...``: the STS signing certificate and keyring."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sts.cli.context import _Context, _iso_time, _keyring, pass_ctx

if TYPE_CHECKING:
    from sts.admin.base import AdminContext
    from sts.config import Settings
    from sts.tokens.keyring import ScheduledKeys


@click.command()
@pass_ctx
def cert(ctx: _Context) -> None:
    """Print the STS signing certificate in use now (PEM)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from sts.xmltime import utcnow

    settings = ctx.settings()
    path = settings.signing_cert_path
    if settings.key_source == "files":
        if not path.exists():
            raise click.ClickException(f"no signing certificate at {path}: run `sts init` first")
        current = _keyring(ctx).current(utcnow())
    else:
        with _shared_keyring(ctx) as (ring, _):
            current = ring.current(utcnow())
    click.echo(current.certificate.public_bytes(Encoding.PEM).decode().rstrip())


@contextmanager
def _shared_keyring(ctx: _Context) -> Iterator[tuple[ScheduledKeys, AdminContext]]:
    """The keyring where key_source says (files, database, HSM) and the admin context over the home's stores."""
    from sts.admin.base import AdminContext, AdminError
    from sts.admin.keys import keyring_for

    stores = ctx.stores()
    try:
        admin = AdminContext.for_stores(stores, ctx.settings())
        try:
            ring = keyring_for(admin)
        except AdminError as exc:
            raise click.ClickException(exc.message) from None
        yield ring, admin
    finally:
        stores.close()


@click.group()
def keys() -> None:
    """The STS signing keyring: list keys, schedule a rollover, share them through the database."""


@keys.command("list")
@pass_ctx
def keys_list(ctx: _Context) -> None:
    """List the signing keys, their schedule and state."""
    from sts.admin.keys import list_keys

    with _shared_keyring(ctx) as (ring, admin):
        entries = list_keys(admin, ring)
    settings = ctx.settings()
    if settings.key_source != "files":  # the files' listing stays as it was (scripts read it)
        click.echo(f"source: {_describe_source(settings)}")
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
    from sts.admin.base import Actor, AdminError, ConfirmationRequired
    from sts.admin.keys import Override, Rollover, schedule_rollover

    if switch_now and at_time:
        raise click.UsageError("--now and --at exclude each other")
    if import_cert is not None and import_key is None:
        raise click.UsageError("--import-cert needs --import-key")
    override = Override.NOW if switch_now else Override.SHORT_LEAD if allow_short_lead else None
    request = Rollover(at=_iso_time(at_time, "--at") if at_time else None, overlap=timedelta(days=overlap_days),
                       key_pem=import_key.read_bytes() if import_key else None,
                       cert_pem=import_cert.read_bytes() if import_cert else None, override=override)
    with _shared_keyring(ctx) as (ring, admin):
        try:
            done = schedule_rollover(admin, Actor.cli(), request, ring)
        except ConfirmationRequired as exc:
            raise click.ClickException(f"{exc.message}. Nothing was scheduled. To switch anyway, add "
                                       f"--allow-short-lead (or --now), accepting that {exc.risk}.") from None
        except AdminError as exc:
            raise click.ClickException(exc.message) from None
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"scheduled signing key {done.key_id} from {done.active_from.isoformat()}")


@keys.command("import-to-database")
@pass_ctx
def keys_import_to_database(ctx: _Context) -> None:
    """Copy this home's keys into the shared database, sealed under the key-encryption key.

    The signing keys and their rollover schedule (not with key_source "pkcs11": those stay in the HSM) and
    keys/secrets.key (console sessions, passwords at rest). The key-encryption key is read from the environment
    variable named by key_encryption_key_env. Keys already in the database are kept; run it once, on one node,
    then set key_source = "database" (or "pkcs11") on every node.
    """
    from sts.tokens.key_store import KeySourceError, import_home

    settings = ctx.initialised_settings()
    stores = ctx.stores()
    try:
        done = import_home(settings, stores.engine)
    except KeySourceError as exc:
        raise click.ClickException(str(exc)) from None
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc.filename}: not found (run `sts init` first)") from None
    finally:
        stores.close()
    for key_id in done.signing:
        click.echo(f"imported signing key {key_id}")
    for key_id in done.skipped:
        click.echo(f"signing key {key_id} is already in the database")
    click.echo("imported the secrets key" if done.secrets else "the secrets key is already in the database")
    if settings.key_source == "files":
        click.echo('now set key_source = "database" in sts.toml on every node (with the same '
                   f'{settings.key_encryption_key_env})')


@keys.command("new-kek")
def keys_new_kek() -> None:
    """Print a new random key-encryption key (32 bytes, base64) for key_encryption_key_env."""
    import base64
    import os

    click.echo(base64.b64encode(os.urandom(32)).decode("ascii"))


def _describe_source(settings: Settings) -> str:
    if settings.key_source == "database":
        return f"database (sealed under the key-encryption key in ${settings.key_encryption_key_env})"
    if settings.key_source == "pkcs11":
        return (f"pkcs11 (token {settings.pkcs11_token_label!r} of {settings.pkcs11_module}, first key "
                f"{settings.pkcs11_key_label!r}; schedule in the database)")
    return f"files ({settings.signing_key_path.parent})"
