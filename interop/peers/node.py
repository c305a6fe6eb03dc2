"""The Node.js relying-party peer: auth0's passport-wsfed-saml2 reading the token, xml-encryption decrypting it.

``interop/node/verify.js`` does the work (one JSON object in on stdin, one out on stdout); this driver decides what
does not apply (ECDSA, RSA 1.5), runs it with a timeout and compares what it read with ``case.expected``.
Installed by ``npm ci --prefix interop/node`` (exact versions in ``interop/node/package-lock.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

from .reading import Read, mismatches
from ..model import TokenCase, Verdict

__all__ = ["PEER", "NodePeer", "run_node_script"]

NODE_DIR: Final = Path(__file__).resolve().parents[1] / "node"
VERIFY_JS: Final = NODE_DIR / "verify.js"
# What verify.js requires (each a folder under node_modules once `npm ci` has run).
PACKAGES: Final = ("passport-wsfed-saml2", "xml-crypto", "xml-encryption", "@xmldom/xmldom", "xpath")
TIMEOUT_SECONDS: Final = 30.0

# xml-crypto (1.4.1 inside passport-wsfed-saml2, and 6.3.2) verifies RSA (and HMAC) signatures only.
_SIGNATURES: Final = frozenset({"rsa-sha256", "rsa-sha1"})
# xml-encryption refuses CBC unless told to (disallowDecryptionWithInsecureAlgorithm: false); a relying party that
# is sent CBC tokens has to say so, so the driver does, and says it did.
_CBC: Final = frozenset({"aes128-cbc", "aes256-cbc"})



def run_node_script(node_dir: Path, script: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run ``node_dir/script`` with ``request`` as JSON on stdin; its JSON object answer, or ``{"ok": false,
    "error": ...}`` when it could not run, crashed, timed out or wrote something else. Never raises."""
    # NODE_OPTIONS could load code into the peer; deprecation warnings go to stderr, which is kept for errors.
    env = {key: value for key, value in os.environ.items() if key != "NODE_OPTIONS"}
    try:
        done = subprocess.run(["node", str(node_dir / script)], input=json.dumps(request).encode(),
                              capture_output=True, timeout=timeout, cwd=node_dir, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"{script} did not answer within {timeout:g} s"}
    except OSError as err:
        return {"ok": False, "error": f"cannot run node: {err}"}
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        return {"ok": False, "error": f"{script} crashed (exit {done.returncode}): {stderr[-800:]}"}
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return {"ok": False, "error": f"{script} wrote no JSON: {done.stdout[:300]!r} {stderr[-300:]}"}
    if not isinstance(answer, dict):
        return {"ok": False, "error": f"{script} wrote {type(answer).__name__}, not an object"}
    return answer


class NodePeer:
    """Runs ``node interop/node/verify.js`` on each token; see the module docstring."""

    name = "passport-wsfed-saml2 4.6.1 (Node.js)"
    about = ("auth0's WS-Fed relying-party library from npm (SAML 1.1/2.0: signature, expiry, audience, claims), "
             "xml-encryption 6.0.1 decrypting, xml-crypto 6.3.2 re-checking the signature; STS cert as only key")

    def __init__(self, node_dir: Path = NODE_DIR, timeout: float = TIMEOUT_SECONDS) -> None:
        self.node_dir = node_dir
        self.timeout = timeout

    def unavailable(self) -> str | None:
        if shutil.which("node") is None:
            return "node (Node.js) is not on PATH"
        if not (self.node_dir / "verify.js").is_file():
            return f"{self.node_dir / 'verify.js'} is missing"
        missing = [name for name in PACKAGES if not (self.node_dir / "node_modules" / name / "package.json").is_file()]
        if missing:
            return f"npm packages not installed ({', '.join(missing)}): run make interop (npm ci --prefix interop/node)"
        return None

    def check(self, case: TokenCase) -> Verdict:
        try:
            return self._check(case)
        except Exception as err:  # never raise: a driver bug is this peer's failure, not the run's
            return Verdict.failed(f"driver error: {type(err).__name__}: {err}")

    def _check(self, case: TokenCase) -> Verdict:
        if case.signature not in _SIGNATURES:
            return Verdict.not_applicable(
                f"xml-crypto verifies RSA signatures only (no {case.signature})")
        if case.encrypted and case.key_transport == "rsa-1_5":
            return Verdict.not_applicable(
                "RSA 1.5 key transport is refused by design: xml-encryption calls it insecure and Node.js "
                "(>= 18.19 / 20.11) disables PKCS#1 v1.5 decryption (CVE-2023-46809)")
        reason = self.unavailable()
        if reason is not None:
            return Verdict.skipped(reason)
        allow_cbc = case.encrypted and case.data_encryption in _CBC
        result = self.verify(case.token, saml=case.saml, sts_cert_pem=case.sts_cert_pem,
                             rp_key_pem=case.rp_key_pem, audience=case.expected.audience,
                             allow_insecure=allow_cbc)
        return self._compare(case, result, allow_cbc)

    def verify(self, token: bytes, *, saml: str, sts_cert_pem: bytes, rp_key_pem: bytes | None, audience: str,
               allow_insecure: bool = False) -> dict[str, Any]:
        """Run verify.js once; its JSON answer, or ``{"ok": false, "error": ...}`` when it could not run."""
        request = {
            "token": token.decode("utf-8"),
            "saml": saml,
            "stsCertPem": sts_cert_pem.decode("ascii"),
            "rpKeyPem": rp_key_pem.decode("ascii") if rp_key_pem is not None else None,
            "audience": audience,
            "allowInsecure": allow_insecure,
        }
        return run_node_script(self.node_dir, "verify.js", request, self.timeout)

    def _compare(self, case: TokenCase, result: dict[str, Any], allowed_cbc: bool) -> Verdict:
        if result.get("ok") is not True:
            return Verdict.failed(f"node: {result.get('error', 'no error text')}")
        if result.get("signatureVerified") is not True:
            return Verdict.failed("the signature was not verified")
        if bool(result.get("decrypted")) != case.encrypted:
            return Verdict.failed(f"decrypted={result.get('decrypted')!r} but the case is "
                                  f"{'encrypted' if case.encrypted else 'not encrypted'}")
        expected = case.expected
        attributes = result.get("attributes") or {}
        read = Read(result.get("subject"), tuple(result.get("audience") or ()),
                    {str(uri): tuple(values) for uri, values in attributes.items()})
        problems = mismatches(read, expected)
        if problems:
            return Verdict.failed("; ".join(problems))
        detail = f"SAML {case.saml}, {len(expected.claims)} claim(s)"
        if case.encrypted:
            detail += f", decrypted {case.data_encryption or ''}".rstrip()
            if allowed_cbc:
                detail += " (CBC allowed explicitly: xml-encryption refuses it by default)"
        return Verdict.passed(detail)


PEER: Final = NodePeer()
