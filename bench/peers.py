"""Peers doing comparable work in the same run: other libraries signing an equivalent SAML 2.0 assertion.

- auth0's ``saml`` (npm, under interop/node; xml-crypto signs): signed, and signed and encrypted (AES-256-GCM,
  RSA-OAEP), through bench/node/sign_assertion.js;
- pysaml2 (PyPI): ``SecurityContext.sign_statement`` with its default backend, Debian's ``xmlsec1`` binary (one
  process per signature, as pysaml2 signs), so its CPU includes the children's.

Same content as the STS's token (issuer, NameID, bearer confirmation, audience, the demo user's five attributes,
an AuthnStatement), the same RSA-2048 key, RSA-SHA256, SHA-256, exclusive c14n. A peer that is not installed is an
error naming what to install (``make interop-deps``), never a silent skip.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from bench.homes import BenchHome
from sts.config import load_settings
from sts.home import DEMO_CLAIMS, DEMO_RP_ENDPOINT, DEMO_USER
from sts.tokens.crypto.keys import load_certificate
from sts.xmltime import format_datetime, utcnow

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "interop" / "node"
NODE_SCRIPT = Path(__file__).resolve().parent / "node" / "sign_assertion.js"
ISSUER = "https://sts.bench.example/services/sts"
INSTALL = "install the benchmark's peers with `make interop-deps` (npm ci --prefix interop/node; pip install -r " \
          "interop/requirements.txt; apt-get install xmlsec1)"


class PeerUnavailable(RuntimeError):
    """A peer library is not installed; the message says what to install."""


@dataclass(frozen=True)
class PeerRate:
    name: str
    library: str  # name and version
    work: str  # what one operation is
    count: int
    per_cpu_second: float
    per_wall_second: float
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def node_saml(home: BenchHome, seconds: float) -> list[PeerRate]:
    """auth0's saml: signed, and signed and encrypted, each for ``seconds``."""
    if shutil.which("node") is None:
        raise PeerUnavailable(f"node is not installed: {INSTALL}")
    if not (NODE_DIR / "node_modules" / "saml" / "package.json").exists():
        raise PeerUnavailable(f"the npm package saml is not installed under {NODE_DIR}: {INSTALL}")
    settings = load_settings(home.path)
    rp_cert_pem = (home.path / "demo" / "rp.crt").read_bytes()
    public_pem = load_certificate(rp_cert_pem).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    request = {
        "key": settings.signing_key_path.read_text(), "cert": settings.signing_cert_path.read_text(),
        "encryptionCert": rp_cert_pem.decode(), "encryptionPublicKey": public_pem.decode(), "issuer": ISSUER,
        "audience": DEMO_RP_ENDPOINT, "nameIdentifier": DEMO_USER, "attributes": dict(DEMO_CLAIMS),
        "seconds": seconds,
    }
    env = {**{k: v for k, v in os.environ.items() if k != "NODE_OPTIONS"}, "NODE_PATH": str(NODE_DIR / "node_modules")}
    done = subprocess.run(["node", str(NODE_SCRIPT)], input=json.dumps(request).encode(), capture_output=True,
                          timeout=120 + 4 * seconds, cwd=NODE_DIR, env=env, check=False)
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"{NODE_SCRIPT.name} failed (exit {done.returncode}): "
                           f"{done.stderr.decode(errors='replace')[-800:]}") from None
    if not answer.get("ok"):
        raise RuntimeError(f"{NODE_SCRIPT.name}: {answer.get('error')}")
    library = f"saml {answer['version']} (npm; xml-crypto {answer['xml_crypto']}, Node.js {answer['node']})"
    return [PeerRate(f"auth0 saml: {work}", library, work, loop["count"], loop["count"] / loop["cpu_seconds"],
                     loop["count"] / loop["wall_seconds"])
            for work, loop in (("SAML 2.0 signed", answer["signed"]),
                               ("SAML 2.0 signed + encrypted (AES-256-GCM, RSA-OAEP)", answer["encrypted"]))]


def pysaml2_sign(home: BenchHome, seconds: float) -> PeerRate:
    """pysaml2 signing the assertion with xmlsec1, for ``seconds``."""
    try:
        version = metadata.version("pysaml2")
        from saml2 import saml  # noqa: PLC0415
        from saml2.config import Config  # noqa: PLC0415
        from saml2.sigver import pre_signature_part, security_context  # noqa: PLC0415
    except (metadata.PackageNotFoundError, ImportError):
        raise PeerUnavailable(f"pysaml2 is not installed in this Python: {INSTALL}") from None
    binary = shutil.which("xmlsec1")
    if binary is None:
        raise PeerUnavailable(f"the xmlsec1 binary (pysaml2's signer) is not installed: {INSTALL}")
    settings = load_settings(home.path)
    config = Config()
    config.load({"entityid": ISSUER, "key_file": str(settings.signing_key_path),
                 "cert_file": str(settings.signing_cert_path), "xmlsec_binary": binary})
    context = security_context(config)
    rsa_sha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    sha256 = "http://www.w3.org/2001/04/xmlenc#sha256"

    def sign_one() -> str:
        assertion = _pysaml2_assertion(saml)
        assertion.signature = pre_signature_part(assertion.id, context.my_cert, 1, digest_alg=sha256,
                                                 sign_alg=rsa_sha256)
        return str(context.sign_assertion(str(assertion), node_id=assertion.id))

    signed = sign_one()
    if "SignatureValue" not in signed:
        raise RuntimeError("pysaml2 returned an assertion without a signature")
    count = 0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        sign_one()
        count += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return PeerRate("pysaml2: SAML 2.0 signed", f"pysaml2 {version} (xmlsec1 binary)", "SAML 2.0 signed", count,
                    count / max(cpu, 1e-9), count / wall, "CPU includes the xmlsec1 processes")


def _pysaml2_assertion(saml: Any) -> Any:
    """The STS's SAML 2.0 bearer token's content, as pysaml2's classes build it."""
    from saml2.s_utils import sid  # noqa: PLC0415

    now = utcnow()
    instant, later = format_datetime(now), format_datetime(now + timedelta(minutes=30))
    attributes = [saml.Attribute(name=uri, name_format="urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
                                 attribute_value=[saml.AttributeValue(text=value)]) for uri, value in DEMO_CLAIMS]
    return saml.Assertion(
        id=sid(), version="2.0", issue_instant=instant, issuer=saml.Issuer(text=ISSUER),
        subject=saml.Subject(
            name_id=saml.NameID(text=DEMO_USER, format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"),
            subject_confirmation=[saml.SubjectConfirmation(method="urn:oasis:names:tc:SAML:2.0:cm:bearer")]),
        conditions=saml.Conditions(not_before=instant, not_on_or_after=later, audience_restriction=[
            saml.AudienceRestriction(audience=[saml.Audience(text=DEMO_RP_ENDPOINT)])]),
        attribute_statement=[saml.AttributeStatement(attribute=attributes)],
        authn_statement=[saml.AuthnStatement(authn_instant=instant, authn_context=saml.AuthnContext(
            authn_context_class_ref=saml.AuthnContextClassRef(
                text="urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")))])
