"""``sts explain``: the issuance dry run (``sts.admin.explain``) on the command line."""

from __future__ import annotations

import json
import sys

import click

from sts.admin.explain import AdminExplanation, ExplainQuery, explain as explain_query
from sts.cli.context import _Context, pass_ctx
from sts.cli.context import admin_errors


@click.command()
@click.option("--user", "user_name", required=True, help="Whom the token would be for.")
@click.option("--rp", "rp_url", required=True, metavar="URL", help="The AppliesTo (relying party).")
@click.option("--claim", "claims", multiple=True, metavar="NAME[?]", help="A requested claim: a short name such as "
              "surname, or a URI; a trailing ? makes it optional. Repeat for more.")
@click.option("--token-type", type=click.Choice(["saml11", "saml20"]), default=None)
@click.option("--lifetime", type=click.IntRange(1), metavar="SECONDS", help="Requested lifetime from now.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@pass_ctx
def explain(ctx: _Context, user_name: str, rp_url: str, claims: tuple[str, ...], token_type: str | None,
            lifetime: int | None, as_json: bool) -> None:
    """Dry-run an Issue: what the token would carry and why (nothing is signed or recorded)."""
    with admin_errors():
        query = ExplainQuery.from_text(user=user_name, rp=rp_url, claims=claims, token_type=token_type,
                                       lifetime=lifetime)
    runtime = ctx.runtime()
    try:
        answer = explain_query(runtime, query)
    finally:
        runtime.stores.close()
    if as_json:  # the warnings are in the JSON
        click.echo(json.dumps(answer.to_dict(), indent=2))
    else:
        for warning in answer.warnings:
            click.echo(f"warning: {warning}", err=True)
        _print(answer)
    if not answer.ok:
        sys.exit(1)


def _print(answer: AdminExplanation) -> None:
    result = answer.explanation
    if result.fault is not None:
        click.echo(f"refused: {answer.problem}")
        click.echo(f"  (a client would get {result.fault['code']}: {result.fault['reason']})")
        return
    lt = result.lifetime or {}
    click.echo(f"token type: {result.token_type}")
    click.echo(f"subject: {result.subject} ({result.name_id_format})")
    click.echo(f"audience: {', '.join(result.audience)}")
    click.echo(f"lifetime: {lt.get('created')} .. {lt.get('expires')} ({lt.get('seconds')}s"
               f"{', capped by the relying party' if lt.get('capped') else ''})")
    click.echo("claims:")
    for claim in result.claims:
        click.echo(f"  {claim['uri']} = {', '.join(claim['values'])}  [{claim['source']}]")
    for left_out in result.omitted:
        click.echo(f"  (omitted) {left_out['uri']}: {left_out['why']}")
    algorithms = result.algorithms or {}
    click.echo(f"signature: {algorithms.get('signature')}")
    if algorithms.get("encrypted"):
        click.echo(f"encrypted: {algorithms.get('data_encryption')} / {algorithms.get('key_transport')}")
    else:
        click.echo("encrypted: no")
