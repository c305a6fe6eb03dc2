"""``sts rp ...``: trusted relying parties.

A thin adapter over ``sts.admin.relying_parties``: read the options, call the operation as ``cli:<os user>``,
print the result, its warnings (``warning: ...`` on stderr) or the refusal in one line naming the option at
fault. The flag that names a legacy algorithm (``--signature rsa-sha1``) is the explicit opt-in to it.
"""

from __future__ import annotations

from pathlib import Path

import click

from sts.admin import relying_parties as core
from sts.admin.algorithms import DATA_ENCRYPTIONS, KEY_TRANSPORTS, SIGNATURES
from sts.admin.base import Actor
from sts.admin.certificates import summarize_pem
from sts.cli.context import _Context, _iso_time, admin_context, admin_errors, echo_warnings, pass_ctx

#: The option each field of the admin core is read from, to name it in an error.
_OPTIONS = {"endpoint": "--endpoint", "cert": "--cert", "metadata": "--metadata", "token_type": "--token-type",
            "required_claims": "--require-claim", "permitted_claims": "--permit-claim",
            "name_id_claim": "--name-id-claim", "default_lifetime": "--default-lifetime",
            "max_lifetime": "--max-lifetime", "signature": "--signature", "data_encryption": "--data-encryption",
            "key_transport": "--key-transport", "allowed_token_types": "--allow-token-type",
            "allowed_key_types": "--allow-key-type", "additional_audiences": "--audience",
            "next_cert": "--next-cert", "next_cert_from": "--next-cert-from"}
_CLAIM_HELP = "a short name (emailaddress, givenname, role...) or a full URI; repeat for more"


def read_file(path: Path | None, option: str) -> bytes | None:
    """The bytes of a file an option names; an unreadable file is a one-line error."""
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{option}: cannot read {path}: {exc.strerror or exc}") from None


@click.group()
def rp() -> None:
    """Manage trusted relying parties."""


@rp.command("add")
@click.option("--endpoint", help="The relying party's address (AppliesTo); with --metadata, overrides its entityID.")
@click.option("--metadata", "metadata_source", metavar="FILE|URL",
              help="Read the endpoint and encryption certificate from the relying party's WS-Federation or "
                   "SAML 2.0 SP metadata (a file, or an http(s) URL).")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The relying party's public certificate (PEM or DER); tokens are encrypted for it.")
@click.option("--token-type", type=click.Choice(["saml11", "saml20"]), default="saml20", show_default=True)
@click.option("--require-claim", multiple=True, metavar="NAME|URI", help=f"A claim always put in its tokens: "
                                                                       f"{_CLAIM_HELP}.")
@click.option("--permit-claim", multiple=True, metavar="NAME|URI|*",
              help=f"A claim it may request (default: any): {_CLAIM_HELP}.")
@click.option("--no-encrypt", is_flag=True, help="Issue unencrypted tokens (the certificate becomes optional).")
@click.option("--prefix", is_flag=True, help="Match every AppliesTo that starts with the endpoint.")
@click.option("--default-lifetime", type=click.IntRange(1), metavar="SECONDS", help="Lifetime when none is asked.")
@click.option("--max-lifetime", type=click.IntRange(1), metavar="SECONDS", help="Cap on a requested lifetime.")
@click.option("--refuse-long-lifetime", is_flag=True, help="Fault (InvalidTimeRange) instead of clamping.")
@click.option("--name-id-claim", metavar="NAME|URI", help="Claim whose value becomes the NameID.")
@click.option("--data-encryption", type=click.Choice(list(DATA_ENCRYPTIONS)), default="aes256-gcm",
              show_default=True, help="CBC only for peers without GCM (legacy: naming it is the opt-in).")
@click.option("--key-transport", type=click.Choice(list(KEY_TRANSPORTS)), default="rsa-oaep-mgf1p",
              show_default=True, help="rsa-1_5 is legacy (naming it is the opt-in).")
@click.option("--signature", type=click.Choice(list(SIGNATURES)), default="rsa-sha256", show_default=True,
              help="rsa-sha1 is legacy (naming it is the opt-in).")
@pass_ctx
def rp_add(ctx: _Context, endpoint: str | None, metadata_source: str | None, cert_file: Path | None, token_type: str,
           require_claim: tuple[str, ...], permit_claim: tuple[str, ...], no_encrypt: bool, prefix: bool,
           default_lifetime: int | None, max_lifetime: int | None, refuse_long_lifetime: bool,
           name_id_claim: str | None, data_encryption: str, key_transport: str, signature: str) -> None:
    """Register a trusted relying party (--endpoint and --cert, or --metadata)."""
    if endpoint is None and metadata_source is None:
        raise click.ClickException("--endpoint URL (or --metadata FILE|URL) is required")
    policy = core.RelyingPartyPolicy(
        match_prefix=prefix, token_type=token_type, required_claims=require_claim, permitted_claims=permit_claim,
        encrypt=not no_encrypt, default_lifetime=default_lifetime, max_lifetime=max_lifetime,
        refuse_long_lifetime=refuse_long_lifetime, name_id_claim=name_id_claim, signature=signature,
        data_encryption=data_encryption, key_transport=key_transport)
    certificate = read_file(cert_file, "--cert")
    admin_ctx = admin_context(ctx)
    with admin_errors(_OPTIONS):
        # The algorithm flags are the legacy opt-in: a legacy algorithm is only ever chosen by naming it.
        if metadata_source is not None:
            change = core.add_relying_party_from_metadata(admin_ctx, Actor.cli(), metadata_source, endpoint=endpoint,
                                                          certificate=certificate, policy=policy, allow_legacy=True)
        else:
            assert endpoint is not None
            change = core.add_relying_party(admin_ctx, Actor.cli(), endpoint, certificate=certificate,
                                            policy=policy, allow_legacy=True)
    echo_warnings(change.warnings)
    click.echo(f"added relying party {change.relying_party.endpoint}")


@rp.command("update")
@click.argument("url")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replace the relying party's certificate now.")
@click.option("--allow-token-type", multiple=True, type=click.Choice(["saml11", "saml20", "any"]),
              help="Token types it accepts (repeat; 'any' clears the restriction).")
@click.option("--allow-key-type", multiple=True, type=click.Choice(["bearer", "symmetric", "public", "any"]),
              help="Key types it accepts (repeat; 'any' clears the restriction).")
@click.option("--audience", "audiences", multiple=True, metavar="URI",
              help="An additional AudienceRestriction value (repeat; replaces the list).")
@click.option("--clear-audiences", is_flag=True, help="Remove every additional audience.")
@click.option("--next-cert", "next_cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificate tokens are encrypted for from --next-cert-from on (certificate rollover).")
@click.option("--next-cert-from", metavar="ISO-TIME", help="When the next certificate takes over (UTC if no zone).")
@click.option("--cancel-next-cert", is_flag=True, help="Drop the scheduled next certificate.")
@click.option("--token-type", type=click.Choice(["saml11", "saml20"]), help="The default token type.")
@click.option("--default-lifetime", type=click.IntRange(1), metavar="SECONDS")
@click.option("--max-lifetime", type=click.IntRange(1), metavar="SECONDS")
@click.option("--require-claim", multiple=True, metavar="NAME|URI",
              help=f"Required claims (replaces the list): {_CLAIM_HELP}.")
@click.option("--permit-claim", multiple=True, metavar="NAME|URI|*",
              help=f"Permitted claims (replaces the list): {_CLAIM_HELP}.")
@click.option("--encrypt/--no-encrypt", default=None, help="Encrypt its tokens (needs a certificate).")
@click.option("--name-id-claim", metavar="NAME|URI", help="Claim whose value becomes the NameID ('' clears it).")
@click.option("--signature", type=click.Choice(list(SIGNATURES)), help="rsa-sha1 is legacy (naming it is the opt-in).")
@click.option("--data-encryption", type=click.Choice(list(DATA_ENCRYPTIONS)),
              help="CBC is legacy (naming it is the opt-in).")
@click.option("--key-transport", type=click.Choice(list(KEY_TRANSPORTS)),
              help="rsa-1_5 is legacy (naming it is the opt-in).")
@pass_ctx
def rp_update(ctx: _Context, url: str, cert_file: Path | None, allow_token_type: tuple[str, ...],
              allow_key_type: tuple[str, ...], audiences: tuple[str, ...], clear_audiences: bool,
              next_cert_file: Path | None, next_cert_from: str | None, cancel_next_cert: bool, token_type: str | None,
              default_lifetime: int | None, max_lifetime: int | None, require_claim: tuple[str, ...],
              permit_claim: tuple[str, ...], encrypt: bool | None, name_id_claim: str | None,
              signature: str | None, data_encryption: str | None, key_transport: str | None) -> None:
    """Change a registered relying party's policy (only what is given changes)."""
    policy = core.RelyingPartyPolicy(
        token_type=token_type, required_claims=require_claim or None, permitted_claims=permit_claim or None,
        encrypt=encrypt, default_lifetime=default_lifetime, max_lifetime=max_lifetime, name_id_claim=name_id_claim,
        signature=signature, data_encryption=data_encryption, key_transport=key_transport,
        allowed_token_types=allow_token_type or None, allowed_key_types=allow_key_type or None,
        additional_audiences=audiences or (() if clear_audiences else None))
    rollover = None
    if cancel_next_cert:
        rollover = core.Rollover(cancel=True)
    elif next_cert_file is not None or next_cert_from is not None:
        rollover = core.Rollover(read_file(next_cert_file, "--next-cert"),
                                 _iso_time(next_cert_from, "--next-cert-from") if next_cert_from else None)
    admin_ctx = admin_context(ctx)
    with admin_errors(_OPTIONS):
        change = core.update_relying_party(admin_ctx, Actor.cli(), url, policy,
                                           certificate=read_file(cert_file, "--cert"), rollover=rollover,
                                           allow_legacy=True)
    admin_ctx.stores.close()
    echo_warnings(change.warnings)
    click.echo(f"updated relying party {change.relying_party.endpoint}")


@rp.command("list")
@pass_ctx
def rp_list(ctx: _Context) -> None:
    """List trusted relying parties."""
    for party in core.list_relying_parties(admin_context(ctx)):
        summary = summarize_pem(party.cert_pem)
        cert_text = "no certificate" if summary is None else (
            f"{summary.subject} sha256 {summary.fingerprint} expires {summary.not_after:%Y-%m-%d}")
        click.echo(f"{party.endpoint}{' (prefix)' if party.match_prefix else ''}")
        click.echo(f"  token {party.token_type.short}, {'encrypted' if party.encrypt else 'not encrypted'},"
                   f" lifetime {int(party.default_lifetime.total_seconds())}s"
                   f" (max {int(party.max_lifetime.total_seconds())}s)")
        click.echo(f"  certificate: {cert_text}")
        if party.required_claims:
            click.echo(f"  required claims: {', '.join(party.required_claims)}")
        click.echo(f"  permitted claims: {', '.join(party.permitted_claims)}")
        if party.name_id_claim:
            click.echo(f"  name identifier claim: {party.name_id_claim}")
        algorithms = core.relying_party_data(party)
        click.echo(f"  algorithms: {algorithms['signature']}, {algorithms['data_encryption']},"
                   f" {algorithms['key_transport']}")
        if party.allowed_token_types:
            click.echo(f"  allowed token types: {', '.join(t.short for t in party.allowed_token_types)}")
        if party.allowed_key_types:
            click.echo(f"  allowed key types: {', '.join(k.value for k in party.allowed_key_types)}")
        if party.additional_audiences:
            click.echo(f"  additional audiences: {', '.join(party.additional_audiences)}")
        if party.next_cert_pem and party.next_cert_from:
            click.echo(f"  next certificate from {party.next_cert_from.isoformat()}")


@rp.command("remove")
@click.argument("url")
@pass_ctx
def rp_remove(ctx: _Context, url: str) -> None:
    """Remove a trusted relying party."""
    with admin_errors(_OPTIONS):
        removed = core.remove_relying_party(admin_context(ctx), Actor.cli(), url)
    click.echo(f"removed relying party {removed.endpoint}")


__all__ = ["read_file", "rp"]
