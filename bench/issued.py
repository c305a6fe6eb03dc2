"""Tokens issued before a measurement: for Validate (their IDs) and for the relying party's verifier (the tokens).

They are asked for one by one over HTTP, outside any measured window, and each answer is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from lxml import etree

from bench.messages import CONTENT_TYPE, RequestKind
from bench.server import Served
from sts import ns
from sts.protocol.xmlsafe import parse


@dataclass(frozen=True)
class IssuedToken:
    token_id: str  # the KeyIdentifier of RequestedAttachedReference (the token itself may be encrypted)
    token: bytes  # the first child of RequestedSecurityToken, serialised


def issue_tokens(session: Served, kind: RequestKind, count: int) -> list[IssuedToken]:
    """``count`` tokens from ``count`` requests of ``kind``; RuntimeError on any answer that carries none."""
    tokens = []
    with httpx.Client(headers={"content-type": CONTENT_TYPE}, timeout=60) as client:
        for _ in range(count):
            response = client.post(session.sts_url, content=kind.make())
            root = parse(response.content)
            requested = root.find(f".//{{{ns.WST13}}}RequestedSecurityToken")
            token_id = root.findtext(f".//{{{ns.WSSE}}}KeyIdentifier")
            if response.status_code != 200 or requested is None or len(requested) == 0 or not token_id:
                raise RuntimeError(f"no token issued (HTTP {response.status_code}): {response.text[:300]}")
            tokens.append(IssuedToken(token_id, etree.tostring(requested[0])))
    return tokens
