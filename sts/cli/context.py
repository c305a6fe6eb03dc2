"""Shared pieces of the ``sts`` command modules: the home-directory context and small option helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sts.admin.base import AdminContext, AdminError, InvalidInput, field_errors
from sts.config import Settings, load_settings
from sts.model import Claim
from sts.store.database import Database

if TYPE_CHECKING:
    from sts.tokens.keyring import ScheduledKeys
    from sts.runtime import Runtime


class _Context:
    def __init__(self, home: Path) -> None:
        self.home = home

    def settings(self) -> Settings:
        try:
            return load_settings(self.home)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None

    def not_initialised(self) -> click.ClickException:
        """The error for a home that `sts init` has not set up (raise it)."""
        return click.ClickException(f"{self.home} is not initialised: run `sts --home {self.home} init` first")

    def initialised_settings(self) -> Settings:
        settings = self.settings()
        if not settings.secrets_key_path.exists():
            raise self.not_initialised()
        return settings

    def stores(self) -> Database:
        settings = self.initialised_settings()
        from sts.runtime import open_stores

        with _database_errors(settings):
            return open_stores(settings)

    def runtime(self) -> Runtime:
        return _build_runtime(self.initialised_settings())


pass_ctx: Callable[[Callable[..., Any]], Callable[..., Any]] = click.make_pass_decorator(_Context)


def _build_runtime(settings: Settings) -> Runtime:
    from sts.runtime import build_runtime

    with _database_errors(settings):
        try:
            return build_runtime(settings)
        except ValueError as exc:  # a setting the runtime cannot use (e.g. the directory's bind password missing)
            raise click.ClickException(str(exc)) from None


@contextmanager
def _database_errors(settings: Settings) -> Iterator[None]:
    """A database that cannot be opened (bad ``database_url``, missing driver, unreachable) as a one-line error."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from sts.tokens.key_store import KeySourceError

    try:
        yield
    except KeySourceError as exc:  # key_source "database"/"pkcs11": a KEK, PIN or HSM key missing or wrong
        raise click.ClickException(f"cannot load the keys (key_source = {settings.key_source!r}): {exc}") from None
    except ArgumentError as exc:  # also NoSuchModuleError: an unknown dialect
        raise click.ClickException(f"setting database_url: {exc}") from None
    except ModuleNotFoundError as exc:
        if not settings.database_url:
            raise
        url = make_url(settings.database_url).render_as_string(hide_password=True)
        raise click.ClickException(f"setting database_url: the driver for {url} is not installed "
                                   f"(no module named {exc.name!r})") from None
    except SQLAlchemyError as exc:
        url = make_url(settings.effective_database_url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot open the database {url}: {reason}") from None


def _os_problem(exc: OSError) -> str:
    """An OSError as ``path: reason`` (without the errno and the repr of the path)."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


def _parse_claims(values: tuple[str, ...]) -> list[tuple[str, str]]:
    claims = []
    for item in values:
        uri, sep, value = item.partition("=")
        if not sep or not uri.strip():
            raise click.BadParameter(f"{item!r} is not URI=VALUE", param_hint="--claim")
        claims.append((uri.strip(), value))
    return claims


def _echo_claims(claims: tuple[Claim, ...]) -> None:
    for claim in claims:
        for value in claim.values:
            click.echo(f"  {claim.uri} = {value}")


def _iso_time(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _keyring(ctx: _Context) -> ScheduledKeys:
    from sts.tokens.key_store import open_keyring
    from sts.tokens.keyring import Keyring

    settings = ctx.settings()
    if settings.key_source != "files":  # the shared database's keys (or the HSM's), not this home's files
        stores = ctx.stores()
        with _database_errors(settings):
            return open_keyring(settings, stores.engine)
    if not settings.signing_key_path.exists():
        raise ctx.not_initialised()
    return Keyring.for_home(settings.signing_key_path)


def admin_context(ctx: _Context) -> AdminContext:
    """The admin core over this home's stores and settings."""
    return AdminContext.for_stores(ctx.stores(), ctx.settings())


@contextmanager
def admin_errors(options: Mapping[str, str] | None = None) -> Iterator[None]:
    """A refused operation as one line (exit status 1), naming the option at fault (``--cert: ...``)."""
    try:
        yield
    except AdminError as err:
        if options is None or not isinstance(err, InvalidInput):
            raise click.ClickException(err.message) from None
        parts = [f"{options[field]}: {message}" if field in options else message
                 for field, message in field_errors(err).items()]
        raise click.ClickException("; ".join(parts)) from None


def echo_warnings(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
