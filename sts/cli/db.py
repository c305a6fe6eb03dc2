"""``sts db``: the database's schema version, and ``sts db upgrade`` to bring it to this version of sts.

Every node also migrates when it starts (under a lock, one node after the other); ``sts db upgrade`` does it
ahead of a rolling upgrade, from one machine, against the shared ``database_url``.
"""

from __future__ import annotations

import click

from sts.cli.context import _Context, _database_errors, pass_ctx


@click.group()
def db() -> None:
    """The database: its schema version and versioned migrations (SQLite or PostgreSQL)."""


@db.command()
@pass_ctx
def upgrade(ctx: _Context) -> None:
    """Bring the database's schema to this version of sts (a no-op when it is current)."""
    before, after = _versions(ctx, migrate=True)
    if before == after:
        click.echo(f"schema version {after}: up to date")
    else:
        click.echo(f"schema version {before} -> {after}")


@db.command()
@pass_ctx
def status(ctx: _Context) -> None:
    """Print the database's schema version and this sts's newest one."""
    current, _ = _versions(ctx, migrate=False)
    from sts.store.schema import MIGRATIONS  # noqa: PLC0415 - SQLAlchemy only when the command runs

    latest = MIGRATIONS[-1].version
    state = "up to date" if current == latest else f"run `sts db upgrade` (this sts is at {latest})"
    click.echo(f"schema version {current}: {state}")


def _versions(ctx: _Context, *, migrate: bool) -> tuple[int, int]:
    """(the version before, the version after) of the home's database, migrating it when asked."""
    settings = ctx.initialised_settings()
    from sts.store import schema  # noqa: PLC0415
    from sts.store.database import create_database_engine  # noqa: PLC0415
    from sts.store.transactions import reading  # noqa: PLC0415

    with _database_errors(settings):
        engine = create_database_engine(settings.effective_database_url, pool_size=1,
                                        timeout_seconds=settings.database_timeout_seconds)
        try:
            with reading(engine) as conn:
                before = schema.current_version(conn)
            after = schema.migrate(engine) if migrate else before
        except RuntimeError as exc:  # a database newer than this sts: upgrade sts, never the other way
            raise click.ClickException(str(exc)) from None
        finally:
            engine.dispose()
    return before, after
