"""``sts rp ...``: trusted relying parties."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import click

from sts.cli.context import _Context, _iso_time, pass_ctx
from sts.tokens.crypto.keys import check_certificate, fingerprint_sha256, load_certificate
from sts.model import ANY_CLAIM, RelyingParty
from sts.uris import DataEncryption, KeyTransport, KeyType, SignatureAlgorithm, TokenType


_DATA_ENCRYPTION = {"aes256-gcm": DataEncryption.AES256_GCM, "aes128-gcm": DataEncryption.AES128_GCM,
                    "aes256-cbc": DataEncryption.AES256_CBC, "aes128-cbc": DataEncryption.AES128_CBC}
_KEY_TRANSPORT = {"rsa-oaep-mgf1p": KeyTransport.RSA_OAEP_MGF1P, "rsa-1_5": KeyTransport.RSA_1_5}
_SIGNATURE = {"rsa-sha256": SignatureAlgorithm.RSA_SHA256, "rsa-sha1": SignatureAlgorithm.RSA_SHA1}


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
@click.option("--require-claim", multiple=True, metavar="URI", help="A claim always put in its tokens.")
@click.option("--permit-claim", multiple=True, metavar="URI|*", help="A claim it may request (default: any).")
@click.option("--no-encrypt", is_flag=True, help="Issue unencrypted tokens (the certificate becomes optional).")
@click.option("--prefix", is_flag=True, help="Match every AppliesTo that starts with the endpoint.")
@click.option("--default-lifetime", type=click.IntRange(1), metavar="SECONDS", help="Lifetime when none is asked.")
@click.option("--max-lifetime", type=click.IntRange(1), metavar="SECONDS", help="Cap on a requested lifetime.")
@click.option("--refuse-long-lifetime", is_flag=True, help="Fault (InvalidTimeRange) instead of clamping.")
@click.option("--name-id-claim", metavar="URI", help="Claim whose value becomes the NameID.")
@click.option("--data-encryption", type=click.Choice(sorted(_DATA_ENCRYPTION)), default="aes256-gcm",
              show_default=True, help="CBC only for peers without GCM (legacy).")
@click.option("--key-transport", type=click.Choice(sorted(_KEY_TRANSPORT)), default="rsa-oaep-mgf1p",
              show_default=True)
@click.option("--signature", type=click.Choice(sorted(_SIGNATURE)), default="rsa-sha256", show_default=True)
@pass_ctx
def rp_add(ctx: _Context, endpoint: str | None, metadata_source: str | None, cert_file: Path | None, token_type: str,
           require_claim: tuple[str, ...], permit_claim: tuple[str, ...], no_encrypt: bool, prefix: bool,
           default_lifetime: int | None, max_lifetime: int | None, refuse_long_lifetime: bool,
           name_id_claim: str | None, data_encryption: str, key_transport: str, signature: str) -> None:
    """Register a trusted relying party (--endpoint and --cert, or --metadata)."""
    cert_pem = None
    if metadata_source is not None:
        from sts.admin.rp_metadata import fetch_rp_metadata, parse_rp_metadata

        try:
            if metadata_source.lower().startswith(("http://", "https://")):
                data = fetch_rp_metadata(metadata_source)
            else:
                data = Path(metadata_source).read_bytes()
            meta_endpoint, cert_pem = parse_rp_metadata(data)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"{metadata_source}: {exc}") from None
        endpoint = endpoint or meta_endpoint
    if endpoint is None:
        raise click.ClickException("--endpoint URL (or --metadata FILE|URL) is required")
    if cert_file is None and cert_pem is None and not no_encrypt:
        raise click.ClickException("--cert FILE is required unless --no-encrypt is given")
    if cert_file is not None:
        cert_pem = _read_cert(cert_file)
    elif cert_pem is not None:
        cert_pem = _checked_pem(cert_pem, str(metadata_source))
    settings = ctx.settings()
    relying_party = RelyingParty(
        endpoint=endpoint,
        cert_pem=cert_pem,
        match_prefix=prefix,
        token_type=TokenType.from_short(token_type),
        required_claims=tuple(require_claim),
        permitted_claims=tuple(permit_claim) or (ANY_CLAIM,),
        encrypt=not no_encrypt,
        default_lifetime=timedelta(seconds=default_lifetime or settings.default_lifetime_seconds),
        max_lifetime=timedelta(seconds=max_lifetime or settings.max_lifetime_seconds),
        refuse_long_lifetime=refuse_long_lifetime,
        name_id_claim=name_id_claim,
        signature_algorithm=_SIGNATURE[signature],
        data_encryption=_DATA_ENCRYPTION[data_encryption],
        key_transport=_KEY_TRANSPORT[key_transport],
    )
    if relying_party.default_lifetime > relying_party.max_lifetime:
        relying_party = replace(relying_party, default_lifetime=relying_party.max_lifetime)
    try:
        ctx.stores().relying_parties.add(relying_party)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added relying party {endpoint}")


def _read_cert(cert_file: Path) -> bytes:
    return _checked_pem(cert_file.read_bytes(), str(cert_file))


def _checked_pem(data: bytes, source: str) -> bytes:
    """A certificate (PEM or DER) checked for validity now, as PEM; ClickException naming ``source``."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from sts.xmltime import utcnow

    try:
        certificate = load_certificate(data)
        check_certificate(certificate, utcnow())
    except ValueError as exc:
        raise click.ClickException(f"{source}: {exc}") from None
    return certificate.public_bytes(Encoding.PEM)


_KEY_TYPES = {"bearer": KeyType.BEARER, "symmetric": KeyType.SYMMETRIC, "public": KeyType.PUBLIC_KEY}


@rp.command("update")
@click.argument("url")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replace the relying party's certificate now.")
@click.option("--allow-token-type", multiple=True, type=click.Choice(["saml11", "saml20", "any"]),
              help="Token types it accepts (repeat; 'any' clears the restriction).")
@click.option("--allow-key-type", multiple=True, type=click.Choice([*_KEY_TYPES, "any"]),
              help="Key types it accepts (repeat; 'any' clears the restriction).")
@click.option("--audience", "audiences", multiple=True, metavar="URI",
              help="An additional AudienceRestriction value (repeat; replaces the list).")
@click.option("--clear-audiences", is_flag=True, help="Remove every additional audience.")
@click.option("--next-cert", "next_cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificate tokens are encrypted for from --next-cert-from on (certificate rollover).")
@click.option("--next-cert-from", metavar="ISO-TIME", help="When the next certificate takes over (UTC if no zone).")
@click.option("--token-type", type=click.Choice(["saml11", "saml20"]), help="The default token type.")
@click.option("--default-lifetime", type=click.IntRange(1), metavar="SECONDS")
@click.option("--max-lifetime", type=click.IntRange(1), metavar="SECONDS")
@click.option("--require-claim", multiple=True, metavar="URI", help="Required claims (repeat; replaces the list).")
@click.option("--permit-claim", multiple=True, metavar="URI|*", help="Permitted claims (repeat; replaces the list).")
@click.option("--encrypt/--no-encrypt", default=None, help="Encrypt its tokens (needs a certificate).")
@click.option("--name-id-claim", metavar="URI")
@pass_ctx
def rp_update(ctx: _Context, url: str, cert_file: Path | None, allow_token_type: tuple[str, ...],
              allow_key_type: tuple[str, ...], audiences: tuple[str, ...], clear_audiences: bool,
              next_cert_file: Path | None, next_cert_from: str | None, token_type: str | None,
              default_lifetime: int | None, max_lifetime: int | None, require_claim: tuple[str, ...],
              permit_claim: tuple[str, ...], encrypt: bool | None, name_id_claim: str | None) -> None:
    """Change a registered relying party's policy (only what is given changes)."""
    from sts.store.relying_parties import check_endpoint

    stores = ctx.stores()
    party = stores.relying_parties.get(url)
    if party is None:
        raise click.ClickException(f"no relying party with endpoint {url!r}")
    changes: dict[str, object] = {}
    if cert_file is not None:
        changes["cert_pem"] = _read_cert(cert_file)
    if allow_token_type:
        changes["allowed_token_types"] = () if "any" in allow_token_type else tuple(
            dict.fromkeys(TokenType.from_short(t) for t in allow_token_type))
    if allow_key_type:
        changes["allowed_key_types"] = () if "any" in allow_key_type else tuple(
            dict.fromkeys(_KEY_TYPES[k] for k in allow_key_type))
    for audience in audiences:
        try:
            check_endpoint(audience)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--audience") from None
    if clear_audiences:
        changes["additional_audiences"] = ()
    if audiences:
        changes["additional_audiences"] = tuple(dict.fromkeys(audiences))
    if bool(next_cert_file) != bool(next_cert_from):
        raise click.ClickException("--next-cert and --next-cert-from go together")
    if next_cert_file is not None and next_cert_from is not None:
        changes["next_cert_pem"] = _read_cert(next_cert_file)
        changes["next_cert_from"] = _iso_time(next_cert_from, "--next-cert-from")
    if token_type:
        changes["token_type"] = TokenType.from_short(token_type)
    if default_lifetime:
        changes["default_lifetime"] = timedelta(seconds=default_lifetime)
    if max_lifetime:
        changes["max_lifetime"] = timedelta(seconds=max_lifetime)
    if require_claim:
        changes["required_claims"] = tuple(require_claim)
    if permit_claim:
        changes["permitted_claims"] = tuple(permit_claim)
    if encrypt is not None:
        changes["encrypt"] = encrypt
    if name_id_claim is not None:
        changes["name_id_claim"] = name_id_claim or None
    updated = replace(party, **changes)  # type: ignore[arg-type]
    if updated.encrypt and not updated.cert_pem:
        raise click.ClickException("an encrypted relying party needs a certificate (--cert) or --no-encrypt")
    if updated.default_lifetime > updated.max_lifetime:
        updated = replace(updated, default_lifetime=updated.max_lifetime)
    stores.relying_parties.update(updated)
    stores.close()
    click.echo(f"updated relying party {party.endpoint}")


@rp.command("list")
@pass_ctx
def rp_list(ctx: _Context) -> None:
    """List trusted relying parties."""
    for party in ctx.stores().relying_parties.list():
        cert_text = "no certificate"
        if party.cert_pem:
            certificate = load_certificate(party.cert_pem)
            cert_text = (f"{certificate.subject.rfc4514_string()} sha256 {fingerprint_sha256(certificate)}"
                         f" expires {certificate.not_valid_after_utc:%Y-%m-%d}")
        click.echo(f"{party.endpoint}{' (prefix)' if party.match_prefix else ''}")
        click.echo(f"  token {party.token_type.short}, {'encrypted' if party.encrypt else 'not encrypted'},"
                   f" lifetime {int(party.default_lifetime.total_seconds())}s"
                   f" (max {int(party.max_lifetime.total_seconds())}s)")
        click.echo(f"  certificate: {cert_text}")
        if party.required_claims:
            click.echo(f"  required claims: {', '.join(party.required_claims)}")
        click.echo(f"  permitted claims: {', '.join(party.permitted_claims)}")
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
    if not ctx.stores().relying_parties.remove(url):
        raise click.ClickException(f"no relying party with endpoint {url!r}")
    click.echo(f"removed relying party {url}")
