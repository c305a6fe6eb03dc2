"""``sts audit``: the audit trail on the command line (the STS's requests, the CLI's and the console's changes)."""

from __future__ import annotations

import json

import click

from sts.admin.audit import AuditQuery, search_audit
from sts.cli.context import _Context, pass_ctx
from sts.cli.context import admin_context, admin_errors


@click.command()
@click.option("--actor", help="Only entries by this actor (a console user, cli:<os user>, a requester).")
@click.option("--action", "--event", "action", metavar="EVENT",
              help="Only this event (user.add, rp.update, issue...), or a prefix ending in * (rp.*).")
@click.option("--since", metavar="TIME", help="Not before TIME: ISO 8601 (UTC when no offset), or a span back "
                                              "from now such as 30m, 24h, 7d.")
@click.option("--until", metavar="TIME", help="Not after TIME (as --since).")
@click.option("--outcome", help="ok, refused, a fault code such as wst:InvalidScope, or fault (all but ok).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (at, event/action, actor, outcome, "
                                                      "subject, detail).")
@pass_ctx
def audit(ctx: _Context, actor: str | None, action: str | None, since: str | None, until: str | None,
          outcome: str | None, limit: int, as_json: bool) -> None:
    """Show the audit trail, newest first."""
    admin_ctx = admin_context(ctx)
    with admin_errors():
        query = AuditQuery.from_text({"actor": actor, "action": action, "since": since, "until": until,
                                      "outcome": outcome, "limit": str(limit)}, admin_ctx.clock())
    entries = search_audit(admin_ctx, query)
    if as_json:
        click.echo(json.dumps([entry.to_dict() for entry in entries], indent=2, ensure_ascii=False))
        return
    for entry in entries:
        at = entry.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{at}  {entry.event:<16} {entry.actor or '-':<20} {entry.outcome or '-':<8} {entry.subject or '-'}"
        summary = entry.summary
        click.echo(f"{line}  {summary}" if summary else line)
