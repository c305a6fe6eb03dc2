"""Judge an answer against a sidecar's ``[expect]``: every unmet expectation becomes one plain sentence."""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from sts import ns
from sts.uris import TokenType
from sts.rp.verifier import TokenVerifier
from sts.rp.verified_token import TokenRejected
from sts.tokens.verification import AlgorithmAllowList

from .answer import Answer, Rstr
from .sidecar import Expect
from .target import RelyingParty, Target

__all__ = ["REFERENCES", "problems", "token_type_name"]


def token_type_name(uri: str | None) -> str | None:
    """``saml11`` / ``saml20`` for any URI the STS reads as that type (``sts.uris.TokenType`` and its aliases)."""
    try:
        return TokenType(uri.strip()).short if uri else None
    except ValueError:
        return None
_KEY_TYPE_SUFFIX: Final = {"bearer": ("/Bearer", "/NoProofKey"), "symmetric": ("/SymmetricKey",),
                           "public": ("/PublicKey",)}
REFERENCES: Final = {"attached": "RequestedAttachedReference", "unattached": "RequestedUnattachedReference"}


def problems(answer: Answer, expect: Expect, target: Target, rp: RelyingParty | None) -> list[str]:
    """Everything in ``answer`` that ``expect`` does not allow (empty: the answer passes)."""
    if expect.outcome == "fault":
        return _fault_problems(answer, expect)
    if answer.fault_code is not None:
        return [f"expected success, got fault {answer.fault_code}: {answer.fault_reason}"]
    found: list[str] = []
    if expect.collection is not None and answer.collection != expect.collection:
        want = "an RSTRC around the RSTR" if expect.collection else "a bare RSTR"
        found.append(f"expected {want}, got Body/{answer.body_child}")
    if not answer.rstrs:
        return [*found, f"no RequestSecurityTokenResponse in the answer (Body/{answer.body_child})"]
    if expect.count is not None and len(answer.rstrs) != expect.count:
        found.append(f"expected {expect.count} RSTRs, got {len(answer.rstrs)}")
    for index, rstr in enumerate(answer.rstrs):
        where = f"RSTR #{index + 1}: " if len(answer.rstrs) > 1 else ""
        found += [where + p for p in _rstr_problems(rstr, expect, target, rp)]
    return found


def _fault_problems(answer: Answer, expect: Expect) -> list[str]:
    if answer.fault_code is None:
        return [f"expected fault {expect.fault}, got Body/{answer.body_child}"]
    if answer.fault_code != expect.fault:
        return [f"expected fault {expect.fault}, got {answer.fault_code}: {answer.fault_reason}"]
    if answer.fault_code_ns not in (ns.WST13, ns.WST2005, ns.WSSE, ns.SOAP11, ns.SOAP12):
        return [f"fault {answer.fault_code} is in namespace {answer.fault_code_ns}, not WS-Trust/WS-Security"]
    return []


def _rstr_problems(rstr: Rstr, expect: Expect, target: Target, rp: RelyingParty | None) -> list[str]:
    found = _order_problems(rstr, expect.elements)
    if expect.token_type is not None:
        actual = rstr.text("TokenType")
        named = expect.token_type in ("saml11", "saml20")
        if (token_type_name(actual) if named else actual) != expect.token_type:
            found.append(f"TokenType {rstr.text('TokenType')!r}, expected {expect.token_type}")
    if expect.key_type is not None:
        key_type = rstr.text("KeyType")
        if key_type is not None and not key_type.endswith(_KEY_TYPE_SUFFIX[expect.key_type]):
            found.append(f"KeyType {key_type!r}, expected {expect.key_type}")
    for reference in expect.references:
        if rstr.child(REFERENCES[reference]) is None:
            found.append(f"no {REFERENCES[reference]}")
    if expect.status is not None:
        code = rstr.status_code() or ""
        if not code.endswith(f"/status/{expect.status}"):
            found.append(f"Status/Code {code!r}, expected {expect.status}")
    if expect.proof is not None and rstr.proof() != expect.proof:
        found.append(f"proof {rstr.proof()!r}, expected {expect.proof}")
    found += _lifetime_problems(rstr, expect)
    if expect.claims or expect.token_type is not None:
        found += _token_problems(rstr, expect, target, rp)
    return found


def _order_problems(rstr: Rstr, elements: tuple[str, ...]) -> list[str]:
    children = rstr.children()
    missing = [e for e in elements if e not in children]
    if missing:
        return [f"missing {', '.join(missing)} (has {', '.join(children)})"]
    positions = [children.index(e) for e in elements]
    if positions != sorted(positions):
        return [f"elements out of order: {', '.join(children)} (expected {', '.join(elements)} in that order)"]
    return []


def _lifetime_problems(rstr: Rstr, expect: Expect) -> list[str]:
    if expect.lifetime_min is None and expect.lifetime_max is None:
        return []
    try:
        lifetime = rstr.lifetime()
    except ValueError as err:
        return [f"Lifetime: {err}"]
    if lifetime is None:
        return ["no Lifetime with Created and Expires"]
    seconds = (lifetime[1] - lifetime[0]).total_seconds()
    if expect.lifetime_min is not None and seconds < expect.lifetime_min:
        return [f"lifetime {seconds:.0f} s, expected at least {expect.lifetime_min} s"]
    if expect.lifetime_max is not None and seconds > expect.lifetime_max:
        return [f"lifetime {seconds:.0f} s, expected at most {expect.lifetime_max} s"]
    return []


def _token_problems(rstr: Rstr, expect: Expect, target: Target, rp: RelyingParty | None) -> list[str]:
    token = rstr.token
    if token is None:
        return ["no token in RequestedSecurityToken"]
    if rp is None:
        return []
    if rp.profile.encrypted and rp.key_pem is None:
        return []  # another STS's encrypted token and no key given: only the RSTR could be checked
    try:
        verified = verifier_for(target, rp).verify(token)
    except TokenRejected as err:
        return [f"our verifier rejected the token: {err}"]
    missing = [uri for uri in expect.claims if uri not in verified.claims]
    return [f"token lacks claim {uri}" for uri in missing]


def verifier_for(target: Target, rp: RelyingParty) -> TokenVerifier:
    """Our relying-party verifier pinned to the target's certificate, decrypting with the RP's key."""
    key = load_pem_private_key(rp.key_pem, None) if rp.key_pem else None
    # The relying party's own algorithms are its allow-list (a *-cbc profile opted in to AES-CBC).
    chosen = (target.signature, rp.profile.data_encryption, rp.profile.key_transport)
    return TokenVerifier(sts_certificates=[x509.load_pem_x509_certificate(target.sts_cert_pem)],
                         rp_private_key=key, audience=rp.address,  # type: ignore[arg-type]
                         algorithms=AlgorithmAllowList().allowing(*(name for name in chosen if name)))
