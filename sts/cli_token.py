"""``sts token ...``: a WS-Trust client's and a relying party's commands (get, validate, renew, cancel, verify, show)."""

from __future__ import annotations

import click


@click.group()
def token() -> None:
    """Get, validate, renew, cancel, verify and show security tokens (from any WS-Trust STS)."""
