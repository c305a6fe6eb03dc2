"""``sts token verify`` and ``sts token show``: the relying party's view of a token."""

from __future__ import annotations

from .cli_token import token

__all__ = ["token"]
