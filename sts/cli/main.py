"""The ``sts`` command (a contract: names and flags are kept, options only added).

The home directory is ``--home DIR``, else ``$STS_HOME``, else ``./var``. The commands live in modules named for
what they manage; `sts token ...` is the client and relying-party side.
"""

from __future__ import annotations

from pathlib import Path

import click

from sts.cli import verify as _verify  # noqa: F401 - registers `token verify` and `token show` on the token group
from sts.cli.audit import audit
from sts.cli.backup import backup_command, restore_command
from sts.cli.check_config import check_config
from sts.cli.clients import client
from sts.cli.context import _Context
from sts.cli.db import db
from sts.cli.explain import explain
from sts.cli.keys import cert, keys
from sts.cli.rp import rp
from sts.cli.serve import demo_service, init, serve
from sts.cli.token import token
from sts.cli.users import admin, user
from sts.config import resolve_home


@click.group()
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Home directory (default: $STS_HOME, else ./var).")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """sts: a WS-Trust Security Token Service."""
    ctx.obj = _Context(resolve_home(home))


for _command in (init, serve, cert, user, admin, rp, client, demo_service, explain, keys, token, audit,
                 check_config, backup_command, restore_command, db):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
