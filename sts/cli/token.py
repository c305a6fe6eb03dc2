"""``sts token ...``: a WS-Trust client's and a relying party's commands (get, validate, renew, cancel, verify, show).

``--sts URL`` is the STS's WSDL (``...?wsdl``), its SOAP endpoint (the WSDL is then read from ``URL?wsdl``; when
there is none, as at AD FS's ``/adfs/services/trust/13/usernamemixed``, URL is used as the SOAP endpoint), or this
STS's base URL (``http://host:8080`` means ``/services/sts``). Errors print ``error: <fault code>: <reason>`` (or
the network problem) and exit 1; ``validate`` exits 2 for a token the STS says is invalid.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import click

from sts.claim_dictionary import resolve_claim

from sts.uris import SoapVersion, TrustVersion

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def token() -> None:
    """Get, validate, renew, cancel, verify and show security tokens (from any WS-Trust STS)."""


@dataclass(frozen=True)
class _ClientOptions:
    """The options every client command shares (see :func:`_client_options`)."""

    sts_url: str
    user: str | None
    password: str | None
    password_stdin: bool
    digest: bool
    cert: str | None
    key: str | None
    wst: str
    soap: str | None
    insecure: bool

    def client(self) -> Any:
        """The TrustClient these options describe (prompts for a missing --password)."""
        from sts.client.transport import endpoint_of
        from sts.client.trust import TransportError, TrustClient, UsernameCredentials, X509Credentials

        credentials: UsernameCredentials | X509Credentials | None = None
        if self.cert or self.key:
            if not (self.cert and self.key):
                raise click.UsageError("--cert and --key go together")
            credentials = X509Credentials.from_files(self.key, self.cert)
        elif self.user:
            password = self.password
            if self.password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            elif password is None:
                password = click.prompt("password", hide_input=True)
            credentials = UsernameCredentials(self.user, password or "", digest=self.digest)
        else:
            raise click.UsageError("give --user/--password or --cert/--key")
        version = TrustVersion.WST13 if self.wst == "13" else TrustVersion.WST2005
        soap_version = {"11": SoapVersion.SOAP11, "12": SoapVersion.SOAP12}.get(self.soap or "")
        options: dict[str, Any] = {"version": version, "soap": soap_version, "credentials": credentials,
                                   "verify": not self.insecure}
        if urlsplit(self.sts_url).query.lower() == "wsdl":
            return TrustClient(self.sts_url, **options)
        try:
            endpoint = endpoint_of(self.sts_url)
        except ValueError as exc:
            raise click.UsageError(f"--sts: {exc}") from None
        try:
            return TrustClient(endpoint + "?wsdl", endpoint=endpoint, **options)
        except TransportError:
            # No WSDL there (AD FS's usernamemixed): use the URL as the SOAP endpoint.
            return TrustClient.for_endpoint(endpoint, **options)


def _client_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--sts, credentials (--user/--password [--digest] or --cert/--key), --wst, --soap, --insecure.

    The command receives them as one :class:`_ClientOptions`, its first argument.
    """
    options = [
        click.option("--sts", "sts_url", required=True, help="the STS's WSDL, SOAP endpoint or base URL"),
        click.option("--user", help="user name (UsernameToken)"),
        click.option("--password", envvar="STS_PASSWORD", show_envvar=True,
                     help="password (prompted for when --user is given without it; a password on the command "
                          "line is visible to other users: prefer the prompt, --password-stdin or $STS_PASSWORD)"),
        click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin"),
        click.option("--digest", is_flag=True, help="send a PasswordDigest instead of the password text"),
        click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="client certificate (PEM)"),
        click.option("--key", type=click.Path(exists=True, dir_okay=False), help="client private key (PEM)"),
        click.option("--wst", type=click.Choice(["13", "2005"]), default="13", show_default=True,
                     help="WS-Trust version"),
        click.option("--soap", type=click.Choice(["11", "12"]), default=None, help="SOAP version (default 1.2)"),
        click.option("--insecure", is_flag=True, help="do not verify the STS's TLS certificate"),
    ]

    @wraps(func)
    def command(**kwargs: Any) -> Any:
        shared = _ClientOptions(**{name: kwargs.pop(name) for name in _CLIENT_OPTION_NAMES})
        return func(shared, **kwargs)

    for option in reversed(options):
        command = option(command)
    return command


_CLIENT_OPTION_NAMES = tuple(f.name for f in fields(_ClientOptions))


def _reporting(func: F) -> F:
    """Turn client errors into ``error: ...`` on stderr and exit status 1."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sts.client.trust import TransportError, TrustClientError, TrustFault
        from sts.client.policy import PolicyError

        try:
            return func(*args, **kwargs)
        except TrustFault as err:
            _fail(f"{err.code_name}: {err.fault_reason}")
        except TransportError as err:
            _fail(f"network: {err}")
        except (TrustClientError, PolicyError, ValueError, OSError) as err:
            _fail(str(err))
    return cast(F, wrapper)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _read_token(path: str) -> bytes:
    data = Path(path).read_bytes() if path != "-" else sys.stdin.buffer.read()
    if not data.strip():
        raise ValueError(f"{path} is empty: it should hold a token as written by 'sts token get --out'")
    return data.strip()


def _write_result(result: Any, out: str | None, proof_out: str | None) -> None:
    if out:
        Path(out).write_bytes(result.token)
        click.echo(f"wrote {result.token_type or 'token'} {result.token_id or ''} to {out}", err=True)
    else:
        click.echo(result.token.decode("utf-8"))
    if proof_out and result.proof_key is not None:
        Path(proof_out).write_text(base64.b64encode(result.proof_key).decode("ascii") + "\n")
        Path(proof_out).chmod(0o600)


_KEY_TYPES = ("bearer", "symmetric", "public")


@token.command("get")
@_client_options
@click.option("--applies-to", required=True, help="the relying party's address (AppliesTo)")
@click.option("--claim", "claims", multiple=True,
              help="a claim to request: a short name (givenname, emailaddress, role...) or a URI (repeatable)")
@click.option("--token-type", help="saml11, saml20 or a token type URI")
@click.option("--key-type", type=click.Choice(_KEY_TYPES), help="bearer, symmetric or public (needs --cert/--key)")
@click.option("--out", type=click.Path(dir_okay=False), help="write the token here (else print it)")
@click.option("--proof-out", type=click.Path(dir_okay=False), help="write a symmetric proof key (base64) here")
@_reporting
def get(shared: _ClientOptions, applies_to: str, claims: tuple[str, ...], token_type: str | None,
        key_type: str | None, out: str | None, proof_out: str | None) -> None:
    """Issue: ask the STS for a token for --applies-to."""
    uris = _claim_uris(claims)
    result = shared.client().issue(applies_to, token_type=token_type, claims=uris, key_type=key_type)
    _write_result(result, out, proof_out)


@token.command("validate")
@_client_options
@click.argument("token_file")
@_reporting
def validate(shared: _ClientOptions, token_file: str) -> None:
    """Validate the token in TOKEN_FILE (exit 0 valid, 2 invalid)."""
    client = shared.client()
    result = client.validate(_read_token(token_file))
    click.echo(f"{'valid' if result.valid else 'invalid'}: {result.reason or result.code}")
    if not result.valid:
        sys.exit(2)


@token.command("renew")
@_client_options
@click.argument("token_file")
@click.option("--out", type=click.Path(dir_okay=False), help="write the new token here (else print it)")
@_reporting
def renew(shared: _ClientOptions, token_file: str, out: str | None) -> None:
    """Renew the token in TOKEN_FILE: a fresh token with a new lifetime."""
    client = shared.client()
    _write_result(client.renew(_read_token(token_file)), out, None)


@token.command("cancel")
@_client_options
@click.argument("token_file")
@_reporting
def cancel(shared: _ClientOptions, token_file: str) -> None:
    """Cancel the token in TOKEN_FILE."""
    client = shared.client()
    client.cancel(_read_token(token_file))
    click.echo("cancelled")


def _claim_uris(claims: tuple[str, ...]) -> tuple[str, ...]:
    """Short names expand through the claim dictionary; any URI goes to the STS as given (it may know more)."""
    try:
        return tuple(resolve_claim(claim).uri for claim in claims)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--claim") from None
