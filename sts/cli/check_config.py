"""``sts check-config``: report every unsafe setting of the home, exit 1 when there is one."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sts.admin.config_check import Bind, check_configuration
from sts.cli.context import _Context, admin_context, pass_ctx


@click.command("check-config")
@click.option("--host", help="The address `sts serve` will bind (plain HTTP off loopback is then reported).")
@click.option("--ssl-certfile", type=click.Path(dir_okay=False, path_type=Path),
              help="The TLS certificate `sts serve` will be given (the bind is then HTTPS).")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The TLS private key `sts serve` will be given (its permissions are checked too).")
@click.option("--no-password-checks", is_flag=True,
              help="Skip trying the administrators' names and the demo password against their password hashes.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {area, problem, fix}.")
@pass_ctx
def check_config(ctx: _Context, host: str | None, ssl_certfile: Path | None, ssl_keyfile: Path | None,
                 no_password_checks: bool, as_json: bool) -> None:
    """Report unsafe settings: readable private keys, plain HTTP off loopback, legacy algorithms, certificates
    near expiry, administrators' passwords that break the policy. Exit status 1 when any is found."""
    admin_ctx = admin_context(ctx)
    bind = Bind(host, ssl_certfile is not None) if host is not None else None
    findings = check_configuration(admin_ctx, bind=bind, extra_keys=[ssl_keyfile] if ssl_keyfile else [],
                                   verify_passwords=not no_password_checks)
    if as_json:
        click.echo(json.dumps([finding.to_dict() for finding in findings], indent=2))
    else:
        for finding in findings:
            click.echo(f"UNSAFE  [{finding.area}] {finding.problem}\n        fix: {finding.fix}")
        click.echo(f"{len(findings)} unsafe setting(s) found in {ctx.home}" if findings
                   else f"no unsafe setting found in {ctx.home}")
    if findings:
        raise SystemExit(1)
