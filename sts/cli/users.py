"""``sts user ...`` and ``sts admin ...``: users, their claims, and console administrators.

A thin adapter over ``sts.admin.users``: read the options, call the operation as ``cli:<os user>``, print the
result or the refusal in one line. Every change reaches the audit log (``sts audit``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from sts.admin import users as core
from sts.admin.base import Actor
from sts.cli.context import _Context, _echo_claims, admin_context, admin_errors, echo_warnings, pass_ctx
from sts.claim_dictionary import KNOWN_CLAIMS

_CLAIM_HELP = "A claim as NAME=VALUE (a short name such as givenname, emailaddress, role, or a full URI); repeat " \
              "for more. `sts user claims` lists the short names."


def _read_password(password: str | None, password_stdin: bool) -> str:
    """From --password, --password-stdin or a prompt (asked twice)."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if password is None:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return password


def _password_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")(command)
    return click.option("--password", help="The password (prompted for when neither this nor --password-stdin "
                                           "is given).")(command)


@click.group()
def user() -> None:
    """Manage users and their claims."""


@user.command("add")
@click.argument("name")
@_password_options
@click.option("--claim", "claims", multiple=True, metavar="NAME=VALUE", help=_CLAIM_HELP)
@click.option("--admin", is_flag=True, help="Give the user the administrator role (the password must then have "
                                            "at least admin_password_min_length characters, default 12).")
@pass_ctx
def user_add(ctx: _Context, name: str, password: str | None, password_stdin: bool, claims: tuple[str, ...],
             admin: bool) -> None:
    """Add a user."""
    with admin_errors():
        pairs = core.parse_claim_lines(claims)
        secret = _read_password(password, password_stdin)
        change = core.add_user(admin_context(ctx), Actor.cli(), name, secret, pairs, admin=admin)
    echo_warnings(change.warnings)
    click.echo(f"added {'administrator' if admin else 'user'} {name}")


@user.command("list")
@pass_ctx
def user_list(ctx: _Context) -> None:
    """List users and their claims."""
    for record in core.list_users(admin_context(ctx)):
        flags = "".join([" (admin)" if record.admin else "", " (disabled)" if record.disabled else ""])
        click.echo(f"{record.name}{flags}")
        _echo_claims(record.claims)


@user.command("search")
@click.argument("text")
@pass_ctx
def user_search(ctx: _Context, text: str) -> None:
    """Directory users (setting user_store) whose login name contains TEXT, with the claims the mapping gives them.

    Read-only: they are managed in the directory. `sts user list` lists the local users."""
    with admin_errors():
        found = core.search_directory(admin_context(ctx), text)
    for record in found.users:
        click.echo(f"{record.name} (directory)")
        _echo_claims(record.claims)
    if found.truncated:
        click.echo("more users match: search with more characters")


@user.command("update")
@click.argument("name")
@click.option("--claim", "claims", multiple=True, metavar="NAME=VALUE",
              help="Replace the user's claims with these (NAME is a short name or a URI); repeat for more.")
@click.option("--clear-claims", is_flag=True, help="Remove every claim of the user.")
@click.option("--disable/--enable", "disabled", default=None, help="Disable or enable the account.")
@pass_ctx
def user_update(ctx: _Context, name: str, claims: tuple[str, ...], clear_claims: bool, disabled: bool | None) -> None:
    """Replace a user's claims, or disable or enable the account."""
    if claims and clear_claims:
        raise click.UsageError("--claim and --clear-claims exclude each other")
    if not claims and not clear_claims and disabled is None:
        raise click.UsageError("nothing to change: give --claim, --clear-claims, --disable or --enable")
    admin_ctx = admin_context(ctx)
    with admin_errors():
        if claims or clear_claims:
            echo_warnings(core.set_claims(admin_ctx, Actor.cli(), name, core.parse_claim_lines(claims)).warnings)
        if disabled is not None:
            core.set_disabled(admin_ctx, Actor.cli(), name, disabled)
    click.echo(f"updated user {name}")


@user.command("password")
@click.argument("name")
@_password_options
@pass_ctx
def user_password(ctx: _Context, name: str, password: str | None, password_stdin: bool) -> None:
    """Reset a user's password."""
    admin_ctx = admin_context(ctx)
    with admin_errors():
        core.get_user(admin_ctx, name)  # no prompt for a user that does not exist
        core.set_password(admin_ctx, Actor.cli(), name, _read_password(password, password_stdin))
    click.echo(f"set the password of {name}")


@user.command("remove")
@click.argument("name")
@pass_ctx
def user_remove(ctx: _Context, name: str) -> None:
    """Remove a user."""
    with admin_errors():
        core.remove_user(admin_context(ctx), Actor.cli(), name)
    click.echo(f"removed user {name}")


@user.command("claims")
def user_claims() -> None:
    """List the claim short names and their URIs (the claim dictionary)."""
    width = max(len(claim.name) for claim in KNOWN_CLAIMS)
    for claim in KNOWN_CLAIMS:
        click.echo(f"{claim.name:<{width}}  {claim.uri}")


@click.group()
def admin() -> None:
    """Manage administrators of the management console (/console)."""


@admin.command("add")
@click.argument("name")
@_password_options
@pass_ctx
def admin_add(ctx: _Context, name: str, password: str | None, password_stdin: bool) -> None:
    """Add a console administrator (the same as `sts user add NAME --admin`)."""
    with admin_errors():
        core.add_admin(admin_context(ctx), Actor.cli(), name, _read_password(password, password_stdin))
    click.echo(f"added administrator {name}")


@admin.command("promote")
@click.argument("name")
@_password_options
@pass_ctx
def admin_promote(ctx: _Context, name: str, password: str | None, password_stdin: bool) -> None:
    """Make an existing user an administrator, with a new password that meets the policy."""
    admin_ctx = admin_context(ctx)
    with admin_errors():
        core.get_user(admin_ctx, name)  # no prompt for a user that does not exist
        core.promote(admin_ctx, Actor.cli(), name, _read_password(password, password_stdin))
    click.echo(f"{name} is now an administrator")


@admin.command("remove")
@click.argument("name")
@pass_ctx
def admin_remove(ctx: _Context, name: str) -> None:
    """Take the administrator role from a user (the user stays)."""
    with admin_errors():
        core.demote(admin_context(ctx), Actor.cli(), name)
    click.echo(f"{name} is no longer an administrator")
