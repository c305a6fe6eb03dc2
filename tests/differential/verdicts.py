"""The two verifiers of the differential test: ``xmlsec1 --verify`` and the STS's own path (in process).

The STS side is exactly what the pipeline runs on a parsed request: ``parse_envelope``, ``parse_security_header``
and ``RequestAuthenticator.authenticate`` with clients registered in a real SQLite store.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from dsig_layouts import Built, Layout, Signer, build
from signing import make_client
from sts import ns
from sts.errors import StsError
from sts.model import RequestContext
from sts.protocol.soap import parse_envelope
from sts.protocol.wsse.header import parse_security_header
from sts.protocol.wsse.signature import AlgorithmPolicy
from sts.protocol.xmlsafe import parse
from sts.service.auth import ProofDemand, RequestAuthenticator, UsernameTokenAuthenticator, X509Authenticator
from sts.store.database import Database, open_database
from sts.store.passwords import PasswordHasher, SecretBox

#: Elements that carry an Id in the generated layouts. xmlsec1 matches ``--id-attr:Id`` by local name, so it
#: covers both ``wsu:Id`` and an unqualified ``Id``; ``xml:id`` is an ID for libxml2 by itself.
_ID_NODES = (f"{ns.SOAP11}:Body", f"{ns.SOAP12}:Body", f"{ns.WSU}:Timestamp", f"{ns.WSA}:Action",
             f"{ns.WSA}:MessageID", f"{ns.WSA}:To")
ID_ATTR_OPTIONS = tuple(option for node in _ID_NODES for option in ("--id-attr:Id", node))


#: Layouts built and verified by xmlsec1 together (a few seconds of work: their Timestamps stay fresh).
_CHUNK = 200


@dataclass(frozen=True)
class Prepared:
    built: Built
    message: bytes
    xmlsec1_ok: bool


def ec_client(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


class _FreshReplayCache:
    """Every message is new: replay is tested elsewhere; here a tampered copy must fail on its signature."""

    def first_seen(self, key: bytes, until: datetime) -> bool:
        return True


@dataclass
class Verifiers:
    """Three registered clients (RSA, EC, and an RSA one registered with --allow-sha1), and both verifiers."""

    workdir: Path
    db: Database
    signers: dict[str, Signer] = field(default_factory=dict)
    _prepared: dict[Layout, Prepared] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path) -> Verifiers:
        db = open_database(f"sqlite:///{workdir / 'sts.db'}", hasher=PasswordHasher(n=2**4),
                           secret_box=SecretBox(bytes(range(32))))
        verifiers = cls(workdir, db)
        rsa_key, rsa_cert, _ = make_client("rsa-client")
        legacy_key, legacy_cert, _ = make_client("legacy-client")
        ec_key, ec_cert = ec_client("ec-client")
        for name, key, cert, sha1 in (("rsa", rsa_key, rsa_cert, False), ("ec", ec_key, ec_cert, False),
                                      ("legacy", legacy_key, legacy_cert, True)):
            pem = cert.public_bytes(Encoding.PEM)
            db.clients.add(name, pem, allow_sha1=sha1)
            (workdir / f"{name}.crt").write_bytes(pem)
            verifiers.signers[name] = Signer(name, key, cert)
        return verifiers

    def signer_for(self, layout: Layout) -> Signer:
        """The client a stack would use: EC for ECDSA, the --allow-sha1 client for RSA-SHA1."""
        return self.signers[{"rsa-sha256": "rsa", "ecdsa-sha256": "ec", "rsa-sha1": "legacy"}[layout.algorithm]]

    def xmlsec1(self, message: bytes, signer: Signer, name: str = "message.xml") -> bool:
        """``xmlsec1 --verify`` with the client's certificate as the key (it cannot resolve a wsse STR)."""
        path = self.workdir / name
        path.write_bytes(message)
        # --enabled-key-data key-name: xmlsec1 takes the key given here, never one from KeyInfo (the STS, too,
        # uses only the registered certificate KeyInfo names).
        result = subprocess.run(
            ["xmlsec1", "--verify", *ID_ATTR_OPTIONS, "--enabled-key-data", "key-name",
             "--pubkey-cert-pem", str(self.workdir / f"{signer.name}.crt"), str(path)],
            capture_output=True, timeout=30, check=False)
        return result.returncode == 0

    def xmlsec1_batch(self, messages: Sequence[bytes], signer: Signer) -> list[bool]:
        """xmlsec1's verdict on each message, in as few processes as possible (one process per file costs ~50x).

        ``xmlsec1 --verify a b c`` verifies the files in order and stops at the first that fails, naming it; the
        files before it verified, the rest are run again.
        """
        paths = []
        for index, message in enumerate(messages):
            path = self.workdir / f"batch-{index}.xml"
            path.write_bytes(message)
            paths.append(str(path))
        verdicts: list[bool] = []
        while len(verdicts) < len(paths):
            rest = paths[len(verdicts):]
            result = subprocess.run(
                ["xmlsec1", "--verify", *ID_ATTR_OPTIONS, "--enabled-key-data", "key-name",
                 "--pubkey-cert-pem", str(self.workdir / f"{signer.name}.crt"), *rest],
                capture_output=True, text=True, timeout=300, check=False)
            if result.returncode == 0:
                verdicts += [True] * len(rest)
                continue
            failed = re.search(r'failed to verify file "([^"]+)"', result.stderr)
            assert failed is not None and failed.group(1) in rest, result.stderr[-2000:]
            verdicts += [True] * rest.index(failed.group(1)) + [False]
        return verdicts

    def prepared(self, layouts: Sequence[Layout], layout: Layout) -> Prepared:
        """``layout`` built and signed, with xmlsec1's verdict: made for a chunk of ``layouts`` at a time.

        The chunk is small enough that its Timestamps are still fresh when the STS sees the last of them.
        """
        if layout not in self._prepared:
            start = layouts.index(layout)
            chunk = layouts[start:start + _CHUNK]
            built = {item: build(item, self.signer_for(item)) for item in chunk}
            self._prepared = {}
            for signer in self.signers.values():
                mine = [item for item in chunk if self.signer_for(item) is signer]
                messages = [built[item].serialize() for item in mine]
                for item, message, ok in zip(mine, messages, self.xmlsec1_batch(messages, signer), strict=True):
                    self._prepared[item] = Prepared(built[item], message, ok)
        return self._prepared[layout]

    def sts(self, message: bytes, *, policy: AlgorithmPolicy | None = None) -> str:
        """The client name the STS authenticated, or the refusal as ``ErrorClass: reason``."""
        authenticator = RequestAuthenticator(
            username=UsernameTokenAuthenticator(users=self.db.users, replay=_FreshReplayCache()),
            x509=X509Authenticator(clients=self.db.clients, replay=_FreshReplayCache(),
                                   algorithms=policy or AlgorithmPolicy.strict()),
            demand=ProofDemand.SIGNATURE,
        )
        context = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=datetime.now(UTC))
        try:
            root = parse(message)
            envelope = parse_envelope(root)
            result = authenticator.authenticate(envelope, root, parse_security_header(envelope), context)
        except StsError as err:
            return f"{type(err).__name__}: {err}"
        return f"accepted:{result.principal.name}"

    def close(self) -> None:
        self.db.close()
