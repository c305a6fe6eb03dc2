"""node-soap as a WS-Trust client: a Node.js service signing its RST with a registered client certificate.

``interop/node/soap_client.js`` does the work (one JSON object in on stdin, one out on stdout): node-soap (npm
``soap``) loads the STS's WSDL, writes the envelope (SOAP 1.2 when asked with ``forceSoap12Headers``) and its
``WSSecurityCert`` signs Body and Timestamp with xml-crypto, with node-soap's defaults: RSA-SHA256, the
enveloped-signature transform before exclusive c14n, ``Id`` attributes, the certificate in a BinarySecurityToken.
Username cases use node-soap's ``WSSecurity`` (PasswordText, or PasswordDigest with a nonce). The script reads the
raw answer with @xmldom/xmldom; after a token, the same client Validates it and then Cancels it (node-soap signs
those too). This driver decides what does not apply, runs the script with a timeout and judges its answer.
Nothing from ``sts`` is used. Installed by ``npm ci --prefix interop/node`` (``package-lock.json``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..model import ClientCase, ClientOutcome, Exchange, Verdict
from ..target import Target
from .node import run_node_script
from .trust_uris import BEARER, TOKEN_TYPES, TRUST, WSDL_PATH

__all__ = ["PEER", "RECORDING_PEER", "NodeSoapClient"]

NODE_DIR: Final = Path(__file__).resolve().parents[1] / "node"
SCRIPT: Final = "soap_client.js"
# What soap_client.js requires (each a folder under node_modules once `npm ci` has run).
PACKAGES: Final = ("soap", "xml-crypto", "@xmldom/xmldom")
# Loading the WSDL and its schemas, then up to three signed calls.
TIMEOUT_SECONDS: Final = 60.0


def _version(node_dir: Path) -> str | None:
    try:
        return str(json.loads((node_dir / "node_modules" / "soap" / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class Call:
    """One operation as soap_client.js reported it: the wire bytes and what it read from the answer."""

    operation: str
    exchange: Exchange
    fault: str | None
    token_type: str | None
    token: str | None
    valid_status: str | None
    cancelled: bool

    @classmethod
    def read(cls, raw: dict[str, Any]) -> Call:
        exchange = Exchange(url=str(raw.get("url") or ""), request=str(raw.get("request") or "").encode(),
                            response=str(raw.get("response") or "").encode(), status=int(raw.get("status") or 0))
        return cls(str(raw.get("operation")), exchange, raw.get("fault"), raw.get("tokenType"), raw.get("token"),
                   raw.get("validStatus"), raw.get("cancelled") is True)


class NodeSoapClient:
    """The ``ClientPeer`` for node-soap (WSDL-driven envelope, WSSecurityCert / WSSecurity, xmldom reading)."""

    def __init__(self, node_dir: Path = NODE_DIR, timeout: float = TIMEOUT_SECONDS, *, wsu_ids: bool = False) -> None:
        """``wsu_ids``: WSSecurityCert's ``signerOptions.idMode = "wssecurity"`` (wsu:Id on Body and Timestamp)
        instead of its default unqualified ``Id``, which the WSS utility and SOAP 1.2 schemas do not allow there."""
        self.node_dir = node_dir
        self.timeout = timeout
        self.wsu_ids = wsu_ids
        self.name = f"node-soap {_version(node_dir) or '(not installed)'}"
        ids = "wsu:Id (signerOptions.idMode 'wssecurity')" if wsu_ids else "its default Id attributes"
        self.about = ("node-soap (npm soap), the Node.js SOAP client: WSDL from the STS, WSSecurityCert signing "
                      "Body and Timestamp (xml-crypto 6, its default enveloped-signature + exc-c14n transforms, "
                      f"{ids}, BinarySecurityToken) or WSSecurity's UsernameToken; after Issue the same client "
                      "Validates and Cancels the token; answers read with @xmldom/xmldom")

    def unavailable(self) -> str | None:
        if shutil.which("node") is None:
            return "node (Node.js) is not on PATH"
        if not (self.node_dir / SCRIPT).is_file():
            return f"{self.node_dir / SCRIPT} is missing"
        missing = [name for name in PACKAGES if not (self.node_dir / "node_modules" / name / "package.json").is_file()]
        if missing:
            return f"npm packages not installed ({', '.join(missing)}): run make interop (npm ci --prefix interop/node)"
        return None

    def issue(self, target: Target, case: ClientCase) -> ClientOutcome:
        reason = _not_applicable(target, case)
        if reason is not None:
            return ClientOutcome(Verdict.not_applicable(reason))
        try:
            answer = self.run(self.request(target, case))
        except Exception as err:  # never raise: a driver bug is this peer's failure, not the run's
            return ClientOutcome(Verdict.failed(f"driver error: {type(err).__name__}: {err}"))
        return judge(answer, follow_ups_required=target.ours)

    def request(self, target: Target, case: ClientCase) -> dict[str, Any]:
        """The JSON soap_client.js reads; see its header."""
        rp = target.rp(case.profile)
        assert rp is not None  # _not_applicable checked it
        request: dict[str, Any] = {
            "wsdlUrl": target.url(WSDL_PATH), "soap": case.soap, "wstrust": case.wstrust, "auth": case.auth,
            "appliesTo": rp.address, "tokenType": TOKEN_TYPES[rp.profile.saml], "keyType": BEARER[case.wstrust],
            "followUps": True, "timeoutMs": int(self.timeout * 1000 / 2),
            "insecure": target.verify_tls is False,
            "caPem": Path(target.verify_tls).read_text() if isinstance(target.verify_tls, str) else None,
        }
        if case.auth == "x509":
            assert target.client_key_pem is not None and target.client_cert_pem is not None
            request |= {"keyPem": target.client_key_pem.decode("ascii"),
                        "certPem": target.client_cert_pem.decode("ascii")}
            if self.wsu_ids:
                request["securityOptions"] = {"signerOptions": {"idMode": "wssecurity"}}
        else:
            request |= {"username": target.username, "password": target.password}
        return request

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run soap_client.js once; its JSON answer, or ``{"ok": false, "error": ...}`` when it could not run."""
        return run_node_script(self.node_dir, SCRIPT, request, self.timeout)


def _not_applicable(target: Target, case: ClientCase) -> str | None:
    if target.rp(case.profile) is None:
        return f"the target has no relying party of profile {case.profile}"
    if case.wstrust not in TRUST or case.soap not in ("1.1", "1.2"):
        return f"no WS-Trust {case.wstrust} / SOAP {case.soap} here"
    if case.act_as or case.key_type != "bearer":
        return "this driver builds bearer requests without ActAs only"
    if case.auth == "x509" and (target.client_key_pem is None or target.client_cert_pem is None):
        return "no registered X.509 client key for this target"
    return None


def judge(answer: dict[str, Any], *, follow_ups_required: bool) -> ClientOutcome:
    """The Issue's verdict and token; with ``follow_ups_required`` (our STS) a failed Validate or Cancel of that
    token fails the cell, elsewhere it is only reported. The outcome carries the Issue exchange alone: it is what
    the matrix checks against the schema and what ``make record`` keeps."""
    calls = [Call.read(raw) for raw in answer.get("exchanges") or () if isinstance(raw, dict)]
    issue = next((call for call in calls if call.operation == "Issue"), None)
    if answer.get("ok") is not True or issue is None:
        return ClientOutcome(Verdict.failed(f"node-soap: {answer.get('error', 'no Issue was made')}"))
    exchanges = (issue.exchange,)
    if issue.fault is not None:
        return ClientOutcome(Verdict.failed(f"HTTP {issue.exchange.status}, {issue.fault}"), exchanges=exchanges)
    if issue.token is None or issue.token_type is None:
        return ClientOutcome(Verdict.failed(f"HTTP {issue.exchange.status}, no token or no TokenType in the RSTR"),
                             exchanges=exchanges)
    problems, done = _follow_ups(calls)
    detail = f"{answer.get('port')}: a token of type {issue.token_type}"
    if problems and follow_ups_required:
        return ClientOutcome(Verdict.failed(f"{detail}, but {'; '.join(problems)}"), exchanges=exchanges)
    # Another STS need not offer Validate or Cancel: what it refused is said, and the Issue still passes.
    detail += "; " + ", ".join(done + [f"{p} (not required of another STS)" for p in problems])
    return ClientOutcome(Verdict.passed(detail), token=issue.token.encode(), token_type=issue.token_type,
                         exchanges=exchanges)


def _follow_ups(calls: list[Call]) -> tuple[list[str], list[str]]:
    """(problems, what went well) of the Validate and Cancel after the Issue."""
    found = {call.operation: call for call in calls}
    problems: list[str] = []
    done: list[str] = []
    validate, cancel = found.get("Validate"), found.get("Cancel")
    if validate is None or validate.fault is not None:
        problems.append(f"Validate: {validate.fault if validate else 'not made'}")
    elif not (validate.valid_status or "").endswith("/status/valid"):
        problems.append(f"Validate: status {validate.valid_status!r}, not valid")
    else:
        done.append("validated (status valid)")
    if cancel is None or cancel.fault is not None:
        problems.append(f"Cancel: {cancel.fault if cancel else 'not made'}")
    elif not cancel.cancelled:
        problems.append("Cancel: no RequestedTokenCancelled in the answer")
    else:
        done.append("cancelled")
    return problems, done


PEER: Final = NodeSoapClient()
#: What ``make record`` keeps: the replay checks every request against the XSDs, and node-soap's default ``Id``
#: on wsu:Timestamp (and on a SOAP 1.2 Body) is not schema-valid; the matrix runs the default layout live.
RECORDING_PEER: Final = NodeSoapClient(wsu_ids=True)
