"""Shared pieces of the ``sts`` command modules: the home-directory context and small option helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .config import Settings, load_settings
from .model import Claim
from .store.database import Database

if TYPE_CHECKING:
    from .keyring import Keyring


class _Context:
    def __init__(self, home: Path) -> None:
        self.home = home

    def settings(self) -> Settings:
        try:
            return load_settings(self.home)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None

    def stores(self) -> Database:
        settings = self.settings()
        if not settings.secrets_key_path.exists():
            raise click.ClickException(f"{self.home} is not initialised: run `sts --home {self.home} init` first")
        from .wiring import open_stores

        return open_stores(settings)


pass_ctx: Callable[[Callable[..., Any]], Callable[..., Any]] = click.make_pass_decorator(_Context)


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


def _keyring(ctx: _Context) -> Keyring:
    from .keyring import Keyring

    settings = ctx.settings()
    if not settings.signing_key_path.exists():
        raise click.ClickException(f"{ctx.home} is not initialised: run `sts --home {ctx.home} init` first")
    return Keyring.for_home(settings.signing_key_path)
