"""``sts user ...`` and ``sts admin ...``: users, their claims, and console administrators."""

from __future__ import annotations

import sys

import click

from sts.cli.context import _Context, _echo_claims, _parse_claims, pass_ctx


@click.group()
def user() -> None:
    """Manage users and their claims."""


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
    _add_user(ctx, name, password, password_stdin, _parse_claims(claims), admin=admin)
    click.echo(f"added user {name}")


def _add_user(ctx: _Context, name: str, password: str | None, password_stdin: bool, claims: list[tuple[str, str]],
              *, admin: bool) -> None:
    """The password from --password, --password-stdin or a prompt; then the user, or a ClickException."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("the password must not be empty")
    try:
        ctx.stores().users.add(name, password, claims, admin=admin)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("list")
@pass_ctx
def user_list(ctx: _Context) -> None:
    """List users and their claims."""
    for record in ctx.stores().users.list():
        flags = "".join([" (admin)" if record.admin else "", " (disabled)" if record.disabled else ""])
        click.echo(f"{record.name}{flags}")
        _echo_claims(record.claims)


@user.command("remove")
@click.argument("name")
@pass_ctx
def user_remove(ctx: _Context, name: str) -> None:
    """Remove a user."""
    if not ctx.stores().users.remove(name):
        raise click.ClickException(f"no user named {name!r}")
    click.echo(f"removed user {name}")


@click.group()
def admin() -> None:
    """Manage administrators of the management console (/console)."""


@admin.command("add")
@click.argument("name")
@click.option("--password", help="The password (prompted for when neither this nor --password-stdin is given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def admin_add(ctx: _Context, name: str, password: str | None, password_stdin: bool) -> None:
    """Add a console administrator (the same as `sts user add NAME --admin`)."""
    _add_user(ctx, name, password, password_stdin, [], admin=True)
    click.echo(f"added administrator {name}")
