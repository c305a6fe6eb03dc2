"""``sts backup FILE`` and ``sts restore FILE``: the whole state of an STS in one archive (sts.admin.backup)."""

from __future__ import annotations

from pathlib import Path

import click

from sts.admin.backup import BackupError, backup, restore
from sts.cli.context import _Context, pass_ctx


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@pass_ctx
def backup_command(ctx: _Context, file: Path, force: bool) -> None:
    """Write the database (every table), sts.toml and keys/ to FILE (a tar.gz, mode 0600).

    The STS may keep running: the rows are read in one consistent transaction.
    """
    settings = ctx.initialised_settings()
    try:
        report = backup(settings, file, force=force)
    except BackupError as err:
        raise click.ClickException(err.message) from None
    total = sum(report.rows.values())
    click.echo(f"backed up {total} rows of {len(report.rows)} tables (schema version {report.schema_version}) "
               f"and {len(report.files)} files of {settings.home} to {file}")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the state of a home or database that is not empty.")
@pass_ctx
def restore_command(ctx: _Context, file: Path, force: bool) -> None:
    """Restore FILE (made by `sts backup`) into the home and the database its sts.toml names.

    Stop the STS nodes first. The rows are written in one transaction: if anything fails, nothing changed.
    """
    try:
        report = restore(file, ctx.home, force=force)
    except BackupError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"restored {sum(report.rows.values())} rows (schema version {report.schema_version}) and "
               f"{len(report.files)} files into {report.home}")
