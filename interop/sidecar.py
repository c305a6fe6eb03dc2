"""Sidecars: the small TOML file next to every recorded message that says what it is and what must happen.

``fixtures/recorded/<origin>/<name>.xml`` has ``<name>.toml`` beside it. Its tables (every key is checked: an
unknown table, key or value fails loudly with the file name, so a typo can never turn a check off)::

    [source]   origin, kind, licence, provenance, about          where it comes from (PROVENANCE.md has more)
    [message]  role, wstrust, soap, operation, saml, key_type, auth, binding
    [replay]   (requests)  path, relying_party, target_token, credentials, use_key, entropy
    [expect]   (requests)  outcome, fault, collection, token_type, key_type, claims, lifetime_min, lifetime_max,
                           references, status, proof, count, elements, ours_only
    [compare]  (responses) equivalent, ignore, why
    [read]     (documents) by, endpoints
    [support]  supported = false, reason = "..."   (listed in the report, not run)

docs/interop.md describes every key; ``load`` is the only reader.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .xmlread import XmlError, read_xml

__all__ = ["Fixture", "FixtureError", "discover", "load"]


class FixtureError(ValueError):
    """A fixture or its sidecar is unusable; the message starts with the file name."""


_MESSAGES: Final = (".xml", ".wsdl")
_ROLES: Final = frozenset({"request", "response", "mex", "wsdl", "token", "schema"})
_KINDS: Final = frozenset({"captured", "template", "hand-written", "document", "recorded"})
_WSTRUST: Final = frozenset({"2005", "1.3", "1.4", "none"})
_SOAP: Final = frozenset({"1.1", "1.2", "none"})
_OPERATIONS: Final = frozenset({"issue", "renew", "validate", "cancel", "batch-issue", "batch-validate", "none"})
_SAML: Final = frozenset({"1.1", "2.0", "none"})
_KEY_TYPES: Final = frozenset({"bearer", "symmetric", "public", "none"})
_AUTH: Final = frozenset({"username-text", "username-digest", "x509", "none"})
_BINDINGS: Final = frozenset({"sts", "usernamemixed", "none"})
_OUTCOMES: Final = frozenset({"success", "fault"})
_REFERENCES: Final = frozenset({"attached", "unattached"})
_STATUS: Final = frozenset({"valid", "invalid"})
_PROOFS: Final = frozenset({"none", "binary-secret", "computed-key", "encrypted-key"})
_READERS: Final = frozenset({"client-mex", "msal-mex", "client-wsdl", "client-policy", "token-show", "xsd"})
_PROFILES: Final = frozenset({"saml11", "saml20", "saml11-plain", "saml20-plain", "saml11-cbc", "saml20-cbc"})
_CREDENTIALS: Final = frozenset({"keep", "add-username", "none"})
_USE_KEY: Final = frozenset({"keep", "fresh-certificate", "fresh-key-value"})
_ENTROPY: Final = frozenset({"keep", "none"})
_VARIANTS: Final = frozenset({"as-recorded", "wrong-password", "keep-target"})


@dataclass(frozen=True)
class Source:
    origin: str
    kind: str
    licence: str
    provenance: str
    about: str


@dataclass(frozen=True)
class Message:
    role: str
    wstrust: str = "none"
    soap: str = "none"
    operation: str = "none"
    saml: str = "none"
    key_type: str = "none"
    auth: str = "none"
    binding: str = "none"


@dataclass(frozen=True)
class Replay:
    """How to make a recorded request fresh for the target (see interop.freshen)."""

    path: str = "/services/sts"
    relying_party: str = "saml20"         # the target profile put into AppliesTo
    target_token: str = "none"            # Validate/Renew/Cancel: the *Target gets a fresh token of this profile
    credentials: str = "keep"             # add-username: a bare body gets our UsernameToken header
    use_key: str = "keep"                 # replace UseKey by a key we hold (to prove possession)
    entropy: str = "keep"


@dataclass(frozen=True)
class Expect:
    """What the target must answer to a replayed request; unset means "not checked"."""

    outcome: str = "success"
    fault: str | None = None              # the fault code's local name (wst:/wsse: namespace of the version)
    collection: bool | None = None        # True: RSTRC around the RSTR(s); False: a bare RSTR
    token_type: str | None = None         # saml11 | saml20 | a URI
    key_type: str | None = None
    claims: tuple[str, ...] = ()
    lifetime_min: int | None = None       # seconds between Lifetime/Created and Expires
    lifetime_max: int | None = None
    references: tuple[str, ...] = ()
    status: str | None = None             # Validate: valid | invalid
    proof: str | None = None
    count: int | None = None              # batches: how many RSTRs
    elements: tuple[str, ...] = ()        # RSTR children that must be there, in this relative order
    ours_only: bool = False               # a feature only this STS has (skipped against another STS)


@dataclass(frozen=True)
class Compare:
    """A recorded response: the recorded request whose answer from the target must have the same shape."""

    equivalent: str | None = None         # path relative to fixtures/recorded
    variant: str = "as-recorded"          # wrong-password: replay it with a bad password; keep-target: with
                                          # the recording's own (foreign) Validate/Renew/Cancel target token
    ignore: tuple[str, ...] = ()          # RSTR children of the recording we legitimately do not produce
    why: str = ""


@dataclass(frozen=True)
class Read:
    by: tuple[str, ...] = ()
    endpoints: int | None = None          # client-mex / msal-mex: how many endpoints must be found


@dataclass(frozen=True)
class Fixture:
    path: Path
    name: str                             # path relative to the fixtures root, e.g. adal-python/x.xml
    source: Source
    message: Message
    replay: Replay = field(default_factory=Replay)
    expect: Expect = field(default_factory=Expect)
    compare: Compare = field(default_factory=Compare)
    read: Read = field(default_factory=Read)
    unsupported: str | None = None        # the reason, when the target is not expected to handle it

    def data(self) -> bytes:
        return self.path.read_bytes()


def discover(root: Path) -> Iterator[Fixture]:
    """Every fixture under ``root`` in name order; an XML file without a sidecar (or the reverse) fails."""
    if not root.is_dir():
        raise FixtureError(f"{root}: no such fixtures folder")
    xml = {_stem(p) for suffix in _MESSAGES for p in root.rglob(f"*{suffix}")}
    toml = {_stem(p) for p in root.rglob("*.toml")}
    for stem in sorted(toml - xml):
        raise FixtureError(f"{stem}.toml: a sidecar without its message ({stem.name}.xml)")
    if not xml:
        raise FixtureError(f"{root}: no fixtures (*.xml with a *.toml sidecar) found")
    for stem in sorted(xml):
        if stem not in toml:
            raise FixtureError(f"{stem}.xml: no sidecar; write {stem.name}.toml beside it (see docs/interop.md)")
        yield load(next(stem.parent / f"{stem.name}{s}" for s in _MESSAGES
                        if (stem.parent / f"{stem.name}{s}").is_file()), root)


def _stem(path: Path) -> Path:
    """The path without its last suffix only (``x.TEMPLATE.xml`` -> ``x.TEMPLATE``)."""
    return path.parent / path.name.rsplit(".", 1)[0]


def load(path: Path, root: Path) -> Fixture:
    """Read ``path``'s sidecar, checking every table, key and value."""
    sidecar = _stem(path).parent / f"{_stem(path).name}.toml"
    name = path.relative_to(root).as_posix()
    try:
        raw = tomllib.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise FixtureError(f"{sidecar}: {err}") from None
    try:
        read_xml(path.read_bytes())
    except (OSError, XmlError) as err:
        raise FixtureError(f"{path}: not usable XML: {err}") from None
    try:
        return _fixture(path, name, raw, root)
    except (KeyError, TypeError, ValueError) as err:
        raise FixtureError(f"{sidecar}: {err}") from None


def _fixture(path: Path, name: str, raw: Mapping[str, Any], root: Path) -> Fixture:
    _keys(raw, {"source", "message", "replay", "expect", "compare", "read", "support"}, "top level")
    message = Message(**_table(raw, "message", {
        "role": _ROLES, "wstrust": _WSTRUST, "soap": _SOAP, "operation": _OPERATIONS, "saml": _SAML,
        "key_type": _KEY_TYPES, "auth": _AUTH, "binding": _BINDINGS}, required={"role"}))
    source = Source(**_table(raw, "source", {"origin": str, "kind": _KINDS, "licence": str, "provenance": str,
                                             "about": str}, required={"origin", "kind", "licence", "about",
                                                                      "provenance"}))
    if not (path.parent / source.provenance).is_file() and source.kind != "recorded":
        raise ValueError(f"[source] provenance: {source.provenance} not found beside the fixture")
    support = _table(raw, "support", {"supported": bool, "reason": str})
    unsupported = None
    if support.get("supported") is False:
        if not support.get("reason"):
            raise ValueError("[support] supported = false needs a reason")
        unsupported = str(support["reason"])
    fixture = Fixture(
        path=path, name=name, source=source, message=message,
        replay=Replay(**_table(raw, "replay", {
            "path": str, "relying_party": _PROFILES, "target_token": _PROFILES | {"none"},
            "credentials": _CREDENTIALS, "use_key": _USE_KEY, "entropy": _ENTROPY})),
        expect=_expect(_table(raw, "expect", {
            "outcome": _OUTCOMES, "fault": str, "collection": bool, "token_type": str, "key_type": _KEY_TYPES,
            "claims": list, "lifetime_min": int, "lifetime_max": int, "references": list, "status": _STATUS,
            "proof": _PROOFS, "count": int, "elements": list, "ours_only": bool})),
        compare=_compare(_table(raw, "compare", {"equivalent": str, "variant": _VARIANTS, "ignore": list,
                                                       "why": str}), root),
        read=_read(_table(raw, "read", {"by": list, "endpoints": int})),
        unsupported=unsupported,
    )
    _check_role(fixture, raw)
    return fixture


def _table(raw: Mapping[str, Any], table: str, spec: Mapping[str, Any], *,
           required: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    values = raw.get(table, {})
    if not isinstance(values, dict):
        raise ValueError(f"[{table}] must be a table")
    _keys(values, set(spec), f"[{table}]")
    for key in sorted(required - set(values)):
        raise ValueError(f"[{table}] {key} is required")
    for key, value in values.items():
        allowed = spec[key]
        if isinstance(allowed, frozenset):
            if value not in allowed:
                raise ValueError(f"[{table}] {key} = {value!r}: not one of {', '.join(sorted(allowed))}")
        elif not isinstance(value, allowed) or (allowed is int and isinstance(value, bool)):
            raise ValueError(f"[{table}] {key} = {value!r}: expected {allowed.__name__}")
    return dict(values)


def _keys(values: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in sorted(set(values) - known):
        raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")


def _strings(values: list[Any], where: str, allowed: frozenset[str] | None = None) -> tuple[str, ...]:
    for value in values:
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            choices = f" (one of {', '.join(sorted(allowed))})" if allowed else ""
            raise ValueError(f"{where}: {value!r} is not a known value{choices}")
    return tuple(values)


def _expect(values: dict[str, Any]) -> Expect:
    values["claims"] = _strings(values.get("claims", []), "[expect] claims")
    values["references"] = _strings(values.get("references", []), "[expect] references", _REFERENCES)
    values["elements"] = _strings(values.get("elements", []), "[expect] elements")
    expect = Expect(**values)
    if (expect.outcome == "fault") != (expect.fault is not None):
        raise ValueError("[expect] fault is required with outcome = 'fault', and only then")
    return expect


def _compare(values: dict[str, Any], root: Path) -> Compare:
    values["ignore"] = _strings(values.get("ignore", []), "[compare] ignore")
    compare = Compare(**values)
    if compare.equivalent is not None and not (root / compare.equivalent).is_file():
        raise ValueError(f"[compare] equivalent = {compare.equivalent!r}: no such fixture")
    if compare.ignore and not compare.why:
        raise ValueError("[compare] ignore needs a why")
    return compare


def _read(values: dict[str, Any]) -> Read:
    values["by"] = _strings(values.get("by", []), "[read] by", _READERS)
    return Read(**values)


def _check_role(fixture: Fixture, raw: Mapping[str, Any]) -> None:
    role = fixture.message.role
    allowed = {"request": {"replay", "expect"}, "response": {"compare", "read"}}.get(role, {"read"})
    stray = sorted({"replay", "expect", "compare", "read"} & set(raw) - allowed)
    if stray:
        raise ValueError(f"a {role} fixture takes no [{'], ['.join(stray)}] table")
    if role == "request" and fixture.message.operation == "none":
        raise ValueError("[message] operation is required for a request")
    if role not in {"request", "response"} and not fixture.read.by and fixture.unsupported is None:
        raise ValueError(f"a {role} fixture needs [read] by = [...] (what reads it) or [support]")
