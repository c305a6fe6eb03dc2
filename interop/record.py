"""``make record``: let each client peer Issue against an STS and keep what crossed the wire as fixtures.

For every peer and case that succeeded, ``<out>/<peer-slug>/`` gets four files::

    <case>.rst.xml    the request the peer sent      <case>.rst.toml    its sidecar ([replay], [expect])
    <case>.rstr.xml   the answer the STS gave        <case>.rstr.toml   its sidecar ([compare] with the request)

Requests are pretty-printed (they carry nothing signed; only whitespace between elements changes, and the result
is checked to canonicalise the same as the original, else the original bytes are kept). Responses are kept byte
for byte: the signed token inside would not verify after re-indentation, and some peers cut it out by regex.
Expectations are what the answer showed (collection or bare RSTR, the attached/unattached references) plus the
profile's token type and bearer key type; claims are left out because they belong to the recording user.

A peer that does not apply (msal and SOAP 1.1) is listed in PROVENANCE.md, not recorded; a peer that failed is
listed too, and ``main`` exits 1. Every sidecar written is read back with ``interop.sidecar.load``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from lxml import etree

from .matrix import case_name, parse_case
from .model import ClientCase, ClientOutcome, Exchange, Status, Verdict
from .peers.base import ClientPeer
from .sidecar import load
from .answer import read_answer
from .expect import REFERENCES
from .target import PROFILES, Target, add_target_options, target_from_options

__all__ = ["DEFAULT_CASES", "OurClient", "case_name", "main", "parse_case", "record"]

ROOT: Final = Path(__file__).resolve().parents[1]
LICENCE: Final = "Apache-2.0 (recorded here)"
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
XENC: Final = "http://www.w3.org/2001/04/xmlenc#"


#: Both SAML versions in both WS-Trust versions over SOAP 1.2 (what every client peer sends), plus SOAP 1.1 and
#: a PasswordDigest (what only zeep, node-soap and our client send), and X.509-signed on every SOAP × WS-Trust.
DEFAULT_CASES: Final = tuple(parse_case(name) for name in (
    *(case_name(p, w, "1.2") for p in ("saml11-plain", "saml20") for w in ("1.3", "2005")),
    case_name("saml20-plain", "1.3", "1.2"),
    case_name("saml20", "1.3", "1.1"),
    case_name("saml11-plain", "2005", "1.1"),
    case_name("saml11-plain", "2005", "1.2", "username-digest"),
    case_name("saml20", "1.3", "1.2", "x509"),
    case_name("saml11-plain", "2005", "1.2", "x509"),
    case_name("saml11-plain", "1.3", "1.1", "x509"),
    case_name("saml20", "2005", "1.1", "x509"),
    case_name("saml20-plain", "1.3", "1.2", "x509", act_as=True),
    case_name("saml20-plain", "1.3", "1.2", key_type="symmetric"),
    case_name("saml20-plain", "1.3", "1.2", "x509", key_type="public"),
))


# --- our own client as one more recording source -----------------------------------------------------------------


class OurClient:
    """``sts.client.trust.TrustClient`` (this project's client, over zeep) as a ``ClientPeer``: a recording source only."""

    name = "sts.client"
    about = "this project's WS-Trust client (sts.client.trust.TrustClient over zeep): not an independent peer"

    def unavailable(self) -> str | None:
        return None

    def issue(self, target: Target, case: ClientCase) -> ClientOutcome:
        from sts.client.trust import (  # noqa: PLC0415 - ours, lazily
            Credentials, TrustClient, TrustClientError, UsernameCredentials, X509Credentials)
        from sts.tokens.crypto.keys import load_certificate, load_private_key  # noqa: PLC0415
        from sts.uris import KeyType, SoapVersion, TokenType, TrustVersion  # noqa: PLC0415

        from .peers.zeep_client import _recording_transport  # noqa: PLC0415 - the same recording transport

        rp = target.rp(case.profile)
        if rp is None:
            return ClientOutcome(Verdict.not_applicable(f"the target has no relying party of profile {case.profile}"))
        transport, session = _recording_transport(target.verify_tls)
        credentials: Credentials = UsernameCredentials(target.username, target.password,
                                                       digest=case.auth == "username-digest")
        if case.auth == "x509":
            if target.client_key_pem is None or target.client_cert_pem is None:
                return ClientOutcome(Verdict.not_applicable("no registered X.509 client key for this target"))
            credentials = X509Credentials(load_private_key(target.client_key_pem),
                                          load_certificate(target.client_cert_pem))
        version = TrustVersion.WST13 if case.wstrust == "1.3" else TrustVersion.WST2005
        soap = SoapVersion.SOAP11 if case.soap == "1.1" else SoapVersion.SOAP12
        try:
            client = TrustClient(target.wsdl_url, version=version, soap=soap,
                                 credentials=credentials, transport=transport)
            act_as = None
            if case.act_as:  # the user's own token first; the signed request then asks ActAs the user
                user = TrustClient(target.wsdl_url, version=version, soap=soap,
                                   credentials=UsernameCredentials(target.username, target.password),
                                   transport=transport)
                act_as = user.issue(rp.address, token_type=TokenType.from_short(rp.profile.token_type))
            key_type = {"bearer": KeyType.BEARER, "symmetric": KeyType.SYMMETRIC,
                        "public": KeyType.PUBLIC_KEY}[case.key_type]
            result = client.issue(rp.address, token_type=TokenType.from_short(rp.profile.token_type),
                                  key_type=key_type, act_as=act_as)
        except (TrustClientError, ValueError) as err:
            return ClientOutcome(Verdict.failed(f"sts.client.trust: {err}"), exchanges=tuple(session.exchanges))
        finally:
            session.close()
        return ClientOutcome(Verdict.passed(), token=result.token, token_type=result.token_type,
                             exchanges=tuple(session.exchanges))


# --- recording ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What one peer × case gave: the outcome and, when it was written, the request and response fixtures."""

    peer: str
    case: ClientCase
    outcome: ClientOutcome
    files: tuple[Path, ...] = ()


def record(target: Target, out_dir: Path, peers: Sequence[ClientPeer], cases: Sequence[ClientCase], *,
           root: Path | None = None, command: str = "python -m interop.record",
           progress: Callable[[str], None] = lambda line: None) -> list[Path]:
    """Run every peer's Issue for every case; write each successful exchange; return the message files written.

    ``root`` is the fixtures root that sidecars name paths against (default: the ``recorded`` folder that
    ``out_dir`` lies in, else ``out_dir`` itself).
    """
    return [path for result in record_all(target, out_dir, peers, cases, root=root, command=command,
                                           progress=progress) for path in result.files]


def record_all(target: Target, out_dir: Path, peers: Sequence[ClientPeer], cases: Sequence[ClientCase], *,
               root: Path | None = None, command: str = "python -m interop.record",
               progress: Callable[[str], None] = lambda line: None) -> list[Recorded]:
    """``record``, returning every peer × case result (failures and n/a too) for the caller to report."""
    root = (root or _fixtures_root(out_dir)).resolve()
    out_dir = out_dir.resolve()
    results: list[Recorded] = []
    for peer in peers:
        folder = out_dir / slug(peer.name)
        peer_results = list(_record_peer(target, folder, root, peer, cases, progress))
        # A failure is worth a dated line too; a peer that is not installed here leaves no folder behind.
        if folder.exists() or any(r.files or r.outcome.verdict.status is Status.FAIL for r in peer_results):
            _write_provenance(folder, peer, peer_results, target, command)
        results += peer_results
    return results


def _record_peer(target: Target, folder: Path, root: Path, peer: ClientPeer, cases: Sequence[ClientCase],
                 progress: Callable[[str], None]) -> Iterator[Recorded]:
    reason = peer.unavailable()
    for case in cases:
        if reason is not None:
            outcome = ClientOutcome(Verdict.skipped(reason))
        else:
            try:
                outcome = peer.issue(target, case)
            except Exception as err:  # noqa: BLE001 - a driver must never raise; if one does, it is its failure
                outcome = ClientOutcome(Verdict.failed(f"the driver crashed: {type(err).__name__}: {err}"))
        files: tuple[Path, ...] = ()
        posts = [e for e in outcome.exchanges if e.request]
        if outcome.verdict.status is Status.PASS and posts:
            files = _write_pair(folder, root, peer.name, case, posts[-1], target)
        elif outcome.verdict.status is Status.PASS:
            outcome = replace(outcome, verdict=Verdict.failed("the peer passed but recorded no exchange"))
        progress(f"{peer.name} {case.name}: {outcome.verdict.status.value} {outcome.verdict.detail}".rstrip())
        yield Recorded(peer.name, case, outcome, files)


def slug(name: str) -> str:
    """A peer's folder: its name without the version (``msal 1.39.0`` -> ``msal``, ``sts.client.trust`` -> ``sts-client``)."""
    first = name.split()[0] if name.split() else "peer"
    return re.sub(r"[^a-z0-9]+", "-", first.lower()).strip("-") or "peer"


def _fixtures_root(out_dir: Path) -> Path:
    for folder in (out_dir, *out_dir.parents):
        if folder.name == "recorded":
            return folder
    return out_dir


def _write_pair(folder: Path, root: Path, origin: str, case: ClientCase, exchange: Exchange,
                target: Target) -> tuple[Path, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    request, response = folder / f"{case.name}.rst.xml", folder / f"{case.name}.rstr.xml"
    request.write_bytes(pretty(exchange.request))
    response.write_bytes(exchange.response)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    against = "our STS (interop.target.local_sts)" if target.ours else f"the STS at {target.base_url}"
    source = {"origin": origin, "kind": "recorded", "licence": LICENCE, "provenance": "PROVENANCE.md"}
    message = _message(case, exchange)
    _write_toml(request.with_name(f"{case.name}.rst.toml"), {
        "source": {**source, "about": f"the Issue RST {origin} sent ({case.name}) to {against}, {when}"},
        "message": {"role": "request", **message},
        "replay": {"path": urlsplit(exchange.url).path or "/services/sts", "relying_party": case.profile,
                   **({"target_token": case.profile} if case.act_as else {}),
                   # UseKey names the recorder's client certificate: the replay puts the target's in its place
                   **({"use_key": "fresh-certificate"} if case.key_type == "public" else {})},
        # ActAs needs the requester configured as a delegate: a set-up of this project's STS only
        "expect": {**_expect(case, exchange.response), **({"ours_only": True} if case.act_as else {})},
    })
    _write_toml(response.with_name(f"{case.name}.rstr.toml"), {
        "source": {**source, "about": f"the RSTR {against} answered to {origin}'s {case.name} RST, {when}"},
        "message": {"role": "response", **message},
        "compare": {"equivalent": request.relative_to(root).as_posix()},
    })
    for path in (request, response):
        load(path, root)  # fail here, not at replay time, if a sidecar is not what interop.sidecar reads
    return request, response


def _message(case: ClientCase, exchange: Exchange) -> dict[str, Any]:
    return {"wstrust": "1.4" if case.act_as else case.wstrust, "soap": case.soap, "operation": "issue",
            "saml": PROFILES[case.profile].saml, "key_type": case.key_type, "auth": case.auth,
            "binding": "usernamemixed" if "usernamemixed" in urlsplit(exchange.url).path else "sts"}


def _expect(case: ClientCase, response: bytes) -> dict[str, Any]:
    """The profile's token type and the case's key type, and what the answer showed (collection, references,
    proof), read the way the replay will judge it (``interop.answer``)."""
    answer = read_answer(response)
    rstr = answer.rstrs[0]
    references = [kind for kind, local in REFERENCES.items() if rstr.child(local) is not None]
    return {"outcome": "success", "token_type": PROFILES[case.profile].token_type, "key_type": case.key_type,
            "collection": answer.collection, "references": references, "proof": rstr.proof()}


def pretty(data: bytes) -> bytes:
    """``data`` re-indented, unless it is signed/encrypted or re-indenting would change what it canonicalises to."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    try:
        tree = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return data
    if tree.find(f".//{{{DS}}}Signature") is not None or tree.find(f".//{{{XENC}}}EncryptedData") is not None:
        return data
    text = etree.tostring(tree, pretty_print=True, xml_declaration=True, encoding="utf-8")
    again = etree.fromstring(text, parser)
    same = etree.tostring(again, method="c14n") == etree.tostring(tree, method="c14n")
    return bytes(text) if same else data


def _write_toml(path: Path, tables: dict[str, dict[str, Any]]) -> None:
    lines: list[str] = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string for everything we write
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML spelling for {value!r}")


def _write_provenance(folder: Path, peer: ClientPeer, results: Sequence[Recorded], target: Target,
                      command: str) -> None:
    """Append one dated section per run: what was recorded, with which versions, what was not, and why."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "PROVENANCE.md"
    head = "" if path.exists() else (
        f"# Recorded by `make record`: {peer.name}\n\n{peer.about}.\n\n"
        "Each `<case>.rst.xml` is the request the peer built itself, re-indented (canonically the same XML: "
        "only whitespace between elements, quotes and the XML declaration differ); each `<case>.rstr.xml` is the STS's answer byte for byte. The requests carry the "
        "throw-away interop user's name and password (`interop.target`): the replay rewrites credentials, times "
        "and ids (`interop.freshen`), so nothing here is a secret.\n")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    against = "our STS (`interop.target.local_sts`)" if target.ours else f"the STS at {target.base_url}"
    lines = [f"\n## {when}: {peer.name} against {against}\n", f"Command: `{command}`  ", f"Tools: {_versions()}\n"]
    for result in results:
        verdict = result.outcome.verdict
        if result.files:
            lines.append(f"- `{result.case.name}`: recorded ({', '.join(f'`{p.name}`' for p in result.files)})")
        else:
            lines.append(f"- `{result.case.name}`: not recorded, {verdict.status.value}: {verdict.detail}")
    with path.open("a", encoding="utf-8") as out:
        out.write(head + "\n".join(lines) + "\n")


def _versions() -> str:
    found = []
    for package in ("msal", "zeep", "requests", "lxml"):
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join([f"Python {sys.version.split()[0]}", *found])


# --- command line -------------------------------------------------------------------------------------------------


def default_peers() -> list[ClientPeer]:
    from .peers.msal_client import PEER as MSAL  # noqa: PLC0415 - import the drivers only when recording
    from .peers.node_soap_client import RECORDING_PEER as NODE_SOAP  # noqa: PLC0415 - wsu:Id, schema-valid
    from .peers.zeep_client import PEER as ZEEP  # noqa: PLC0415

    return [MSAL, ZEEP, NODE_SOAP, OurClient()]


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every case was recorded or did not apply to its peer; 1 when one failed; 2 on bad options."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cases = [parse_case(name) for name in args.cases.split(",") if name.strip()] if args.cases \
            else list(DEFAULT_CASES)
    except ValueError as err:
        parser.error(str(err))
    command = "python -m interop.record " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        with target_from_options(args, announce=False) as target:
            results = record_all(target, args.out, default_peers(), cases, command=command.strip(),
                                 progress=lambda line: print(f"record: {line}", flush=True))
    except (RuntimeError, OSError) as err:
        print(f"record: {err}", file=sys.stderr)
        return 2
    written = sum(len(r.files) for r in results)
    failed = [r for r in results if r.outcome.verdict.status is Status.FAIL]
    print(f"record: {written} fixtures written under {args.out}; {len(failed)} failed", flush=True)
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m interop.record", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "fixtures" / "recorded" / "live",
                        help="where the <peer>/ folders go (default fixtures/recorded/live)")
    add_target_options(parser)
    parser.add_argument("--cases", default="",
                        help="comma-separated case names, e.g. saml20-wst1.3-soap1.2,saml11-plain-wst2005-soap1.1-"
                             f"digest (default: {','.join(c.name for c in DEFAULT_CASES)})")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
