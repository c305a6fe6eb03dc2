"""``sts token verify`` and ``sts token show``: the relying party's view of a token."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from sts.cli.context import _os_problem
from sts.cli.token import token

__all__ = ["token"]


def _read(path: Path) -> bytes:
    """The token file's bytes (``-``: standard input); a missing or unreadable file is a ClickException."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read the token: {_os_problem(exc)}") from None


@token.command("verify")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False, path_type=Path))
@click.option("--sts-cert", "sts_certs", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate of the STS whose signature is trusted (repeat for several).")
@click.option("--rp-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The relying party's private key (encrypted tokens, symmetric proof keys).")
@click.option("--audience", "audiences", multiple=True, required=True, metavar="URL",
              help="An audience the token must name (repeat to accept several).")
@click.option("--issuer", default=None, help="The issuer the token must name.")
@click.option("--require-claim", "required", multiple=True, metavar="URI", help="A claim the token must carry.")
@click.option("--allow-algorithm", "allow_algorithms", multiple=True, metavar="NAME|URI",
              help="Also accept this algorithm (legacy ones: rsa-sha1, sha1, aes256-cbc, aes128-cbc, rsa-1_5; "
                   "short name or URI; repeat for several). Each use is logged as a warning.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (subject, claims and the rest).")
def verify(file: Path, sts_certs: tuple[Path, ...], rp_key: Path | None, audiences: tuple[str, ...],
           issuer: str | None, required: tuple[str, ...], allow_algorithms: tuple[str, ...], as_json: bool) -> None:
    """Verify a token (or an RSTR/RSTRC holding one); exit 0 only when it is valid.

    Accepted by default: RSA-SHA256 or ECDSA-SHA256 signatures with SHA-256 digests, AES-GCM data and RSA-OAEP
    key transport; any other algorithm is refused before any cryptography unless --allow-algorithm names it.
    """
    from sts.tokens.crypto.keys import load_certificate, load_private_key
    from sts.tokens.verification import AlgorithmAllowList
    from sts.rp.verifier import TokenRejected, TokenVerifier

    try:
        certificates = [load_certificate(p.read_bytes()) for p in sts_certs]
        key = load_private_key(rp_key.read_bytes()) if rp_key else None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        algorithms = AlgorithmAllowList().allowing(*allow_algorithms)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-algorithm") from None
    if algorithms.legacy():
        click.echo(f"warning: legacy algorithms accepted: {', '.join(algorithms.legacy())}", err=True)
    verifier = TokenVerifier(certificates, rp_private_key=key, audience=audiences, issuer=issuer,
                             required_claims=required, algorithms=algorithms)
    try:
        verified = verifier.verify(_read(file))
    except TokenRejected as exc:
        click.echo(f"token rejected: {exc.reason} (code: {exc.code})", err=True)
        raise SystemExit(1) from None
    summary = {
        "valid": True,
        "subject": verified.subject,
        "claims": {uri: list(values) for uri, values in verified.claims.items()},
        "token_id": verified.token_id,
        "version": verified.version,
        "issuer": verified.issuer,
        "subject_format": verified.subject_format,
        "not_before": _iso(verified.not_before),
        "not_on_or_after": _iso(verified.not_on_or_after),
        "audiences": list(verified.audiences),
        "authn_method": verified.authn_method,
        "authn_instant": _iso(verified.authn_instant),
        "confirmation_method": verified.confirmation_method,
        "proof_key": "symmetric (not shown)" if verified.proof_key else (
            "public key" if verified.proof_public_key is not None else None),
        "delegates": [{"name": d.name, "instant": _iso(d.instant)} for d in verified.delegates],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"valid SAML {verified.version} token {verified.token_id}")
    rows = [("subject", verified.subject), ("issuer", verified.issuer),
            ("valid", f"{_iso(verified.not_before)} .. {_iso(verified.not_on_or_after)}"),
            ("audiences", ", ".join(verified.audiences)), ("confirmation", verified.confirmation_method or "")]
    rows += [(uri, ", ".join(values)) for uri, values in sorted(verified.claims.items())]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"  {label.ljust(width)}  {value}")


@token.command("show")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (\"verified\": false).")
def show(file: Path, as_json: bool) -> None:
    """Decode a token or an RSTR/RSTRC from any STS WITHOUT verifying it (every line says UNVERIFIED)."""
    from sts.errors import StsError
    from sts.tokens.tokeninfo import describe, render_text

    try:
        info = describe(_read(file))
    except (StsError, ValueError) as exc:
        raise click.ClickException(f"cannot decode the token: {exc}") from None
    click.echo(json.dumps(info, indent=2) if as_json else render_text(info), nl=as_json)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
