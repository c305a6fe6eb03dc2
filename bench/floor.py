"""The floor: a deliberately featureless Issue pipeline, served on the STS's own HTTP stack, as a yardstick.

NOT a product path and not a second STS: nothing here is used by ``sts``. It answers the one question the
benchmark's ratios cannot: how fast can Python on this machine, on this stack (uvicorn + httptools + uvloop, one
worker process), do the irreducible work of one Issue? Each request costs exactly what any STS must pay:

- parse the SOAP envelope with lxml (hardened parser), find the UsernameToken and AppliesTo;
- check the PasswordDigest (SHA-1 over nonce, created and the user's secret, held in memory: a cache hit);
- insert the nonce into SQLite (WAL, ``synchronous=NORMAL``, as the STS): a replay is refused by the primary key;
- build a SAML 2.0 bearer assertion with the user's claims from a string template written in its exclusive-c14n
  form (so the digest needs no canonicalisation pass), SHA-256 it, sign the SignedInfo (RSA-2048 or ECDSA P-256);
- encrypt it (AES-256-GCM, the key wrapped with RSA-OAEP for the relying party's certificate);
- render the RSTR from a template; the token row and the audit row are group-committed (up to 8 requests a
  transaction, flushed at the end of the event loop's turn) and every answer waits for the commit holding its
  rows, as the STS's answers do.

What it leaves out is everything that makes the STS a product: policy, claims rules, lifetimes, WS-Trust versions
and bindings, faults with codes, throttling, key rollover, caches that follow other processes, metrics, logs. The
tokens are real (``tests/bench/test_floor.py`` verifies them with ``sts.rp.TokenVerifier``), so the bench's
"STS vs floor" figure is the share of the physically possible rate the STS reaches, features included.

Run by bench.run through :func:`floor_serving`; by hand: ``python -m bench.floor --home HOME --port PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/floor.py` from any directory

from bench.server import STS_PATH, Session, stop  # noqa: E402
from bench.soak import wait_until_answering  # noqa: E402
from sts.config import load_settings  # noqa: E402
from sts.home import DEMO_CLAIMS, DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER  # noqa: E402
from sts.tokens.keyring import Keyring  # noqa: E402
from sts.web.loopback import free_port  # noqa: E402

WSSE = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}"
WSU = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}"
WST = "{http://docs.oasis-open.org/ws-sx/ws-trust/200512}"
WSP = "{http://schemas.xmlsoap.org/ws/2004/09/policy}"
WSA = "{http://www.w3.org/2005/08/addressing}"
SIGNATURE_METHODS = {"rsa": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                     "ecdsa": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"}
BATCH = 8  # token and audit rows of at most this many requests in one transaction
LIFETIME = timedelta(minutes=30)
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

# The templates are in exclusive-c14n form already (attributes in order, no empty-element tags, namespaces where
# first used), so the bytes hashed and signed are the bytes sent; the enveloped signature is removed for the digest
# by formatting the template without it.
ASSERTION = (
    '<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" IssueInstant="{now}" Version="2.0">'
    "<Issuer>{issuer}</Issuer>{signature}"
    '<Subject><NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{user}</NameID>'
    '<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
    '<SubjectConfirmationData NotOnOrAfter="{expires}"></SubjectConfirmationData></SubjectConfirmation></Subject>'
    '<Conditions NotBefore="{now}" NotOnOrAfter="{expires}"><AudienceRestriction><Audience>{audience}</Audience>'
    "</AudienceRestriction></Conditions>{attributes}"
    '<AuthnStatement AuthnInstant="{now}"><AuthnContext><AuthnContextClassRef>'
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</AuthnContextClassRef></AuthnContext>"
    "</AuthnStatement></Assertion>")
SIGNED_INFO = (
    '<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
    '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"></ds:CanonicalizationMethod>'
    '<ds:SignatureMethod Algorithm="{method}"></ds:SignatureMethod><ds:Reference URI="#{id}"><ds:Transforms>'
    '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></ds:Transform>'
    '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"></ds:Transform></ds:Transforms>'
    '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"></ds:DigestMethod>'
    "<ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>")
SIGNATURE = ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">{signed_info}'
             "<ds:SignatureValue>{value}</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}"
             "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>")
ENCRYPTED = (
    '<EncryptedAssertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion">'
    '<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"'
    ' Type="http://www.w3.org/2001/04/xmlenc#Element">'
    '<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/><ds:KeyInfo><xenc:EncryptedKey>'
    '<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p">'
    '<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/></xenc:EncryptionMethod>'
    "<xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>"
    "</ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{cipher}</xenc:CipherValue></xenc:CipherData>"
    "</xenc:EncryptedData></EncryptedAssertion>")
RSTR = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>'
    '<wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing">'
    "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTRC/IssueFinal</wsa:Action></s:Header><s:Body>"
    '<trust:RequestSecurityTokenResponseCollection xmlns:trust="http://docs.oasis-open.org/ws-sx/ws-trust/200512">'
    '<trust:RequestSecurityTokenResponse xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-'
    'wssecurity-utility-1.0.xsd" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-'
    'secext-1.0.xsd" xmlns:wsa="http://www.w3.org/2005/08/addressing">'
    "<trust:TokenType>urn:oasis:names:tc:SAML:2.0:assertion</trust:TokenType>"
    "<trust:Lifetime><wsu:Created>{now}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></trust:Lifetime>"
    '<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference>'
    "<wsa:Address>{audience}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>"
    "<trust:RequestedSecurityToken>{token}</trust:RequestedSecurityToken>"
    "<trust:RequestedAttachedReference><wsse:SecurityTokenReference><wsse:KeyIdentifier ValueType="
    '"http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID">{id}</wsse:KeyIdentifier>'
    "</wsse:SecurityTokenReference></trust:RequestedAttachedReference>"
    "<trust:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</trust:RequestType>"
    "</trust:RequestSecurityTokenResponse></trust:RequestSecurityTokenResponseCollection></s:Body></s:Envelope>")
FAULT = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code>'
         "<s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text xml:lang=\"en\">{reason}</s:Text></s:Reason>"
         "</s:Fault></s:Body></s:Envelope>")
SCHEMA = ("CREATE TABLE IF NOT EXISTS nonce (nonce TEXT PRIMARY KEY, created TEXT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS token (id TEXT PRIMARY KEY, subject TEXT NOT NULL, audience TEXT NOT NULL,"
          " expires TEXT NOT NULL, digest TEXT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, event TEXT NOT NULL,"
          " subject TEXT NOT NULL, detail TEXT NOT NULL)")


class Refused(Exception):
    """A request the floor will not answer with a token (its reason goes in a SOAP 1.2 Sender fault)."""


@dataclass(frozen=True)
class Answer:
    body: bytes
    token_row: tuple[str, str, str, str, str]
    audit_row: tuple[str, str, str, str]


def _child(parent: Any, tag: str) -> Any:
    """The first child called ``tag``; Refused when there is none (a shape the floor does not read)."""
    for child in parent:
        if child.tag == tag:
            return child
    raise Refused(f"no {tag}")


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Floor:
    """The pipeline: keys, the one user and relying party it knows, its SQLite file. One per process."""

    def __init__(self, home: Path, database: Path, port: int = 0) -> None:
        settings = load_settings(home).with_bind("127.0.0.1", port, tls=False)
        signing = Keyring.for_home(settings.signing_key_path).current(datetime.now(UTC))
        self.signing_key = signing.private_key
        self.signing_cert = signing.certificate
        self.method = SIGNATURE_METHODS["ecdsa" if isinstance(self.signing_key, ec.EllipticCurvePrivateKey)
                                        else "rsa"]
        self.cert_b64 = base64.b64encode(signing.cert_der).decode()
        self.issuer = escape(settings.effective_issuer)
        rp_key = x509.load_pem_x509_certificate((home / "demo" / "rp.crt").read_bytes()).public_key()
        assert isinstance(rp_key, rsa.RSAPublicKey)
        self.parties = {DEMO_RP_ENDPOINT: rp_key}
        self.secrets = {DEMO_USER: DEMO_PASSWORD.encode()}
        self.attributes = {DEMO_USER: "<AttributeStatement>" + "".join(
            f"<Attribute Name={quoteattr(uri)}><AttributeValue>{escape(value)}</AttributeValue></Attribute>"
            for uri, value in DEMO_CLAIMS) + "</AttributeStatement>"}
        self.db = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            self.db.execute(statement)

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.signing_key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.signing_key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # XML-DSig wants r || s, not DER
        assert isinstance(self.signing_key, rsa.RSAPrivateKey)
        return self.signing_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def authenticate(self, envelope: Any) -> str:
        """The PasswordDigest check and the nonce's insert (its own commit, before any token exists)."""
        token = _child(_child(_child(envelope, "{http://www.w3.org/2003/05/soap-envelope}Header"),
                              WSSE + "Security"), WSSE + "UsernameToken")
        user = _child(token, WSSE + "Username").text or ""
        nonce, created = _child(token, WSSE + "Nonce").text or "", _child(token, WSU + "Created").text or ""
        secret = self.secrets.get(user)
        if secret is None:
            raise Refused("unknown user")
        expected = base64.b64encode(hashlib.sha1(base64.b64decode(nonce) + created.encode() + secret).digest())
        if not hmac.compare_digest(expected, (_child(token, WSSE + "Password").text or "").encode()):
            raise Refused("wrong password")
        try:
            self.db.execute("INSERT INTO nonce VALUES (?, ?)", (nonce, created))
        except sqlite3.IntegrityError:
            raise Refused("replayed nonce") from None
        return user

    def handle(self, body: bytes) -> Answer:
        """One Issue: Refused for anything but a valid digest request for the known relying party."""
        try:
            envelope = etree.fromstring(body, PARSER)
        except etree.XMLSyntaxError as error:
            raise Refused("not XML") from error
        user = self.authenticate(envelope)
        request = _child(_child(envelope, "{http://www.w3.org/2003/05/soap-envelope}Body"),
                         WST + "RequestSecurityToken")
        audience = _child(_child(_child(request, WSP + "AppliesTo"), WSA + "EndpointReference"),
                          WSA + "Address").text or ""
        party = self.parties.get(audience)
        if party is None:
            raise Refused("unknown relying party")
        now = datetime.now(UTC)
        fields = {"id": "_" + uuid.uuid4().hex, "now": _instant(now), "expires": _instant(now + LIFETIME),
                  "issuer": self.issuer, "user": escape(user), "audience": escape(audience),
                  "attributes": self.attributes[user]}
        digest = base64.b64encode(hashlib.sha256(ASSERTION.format(signature="", **fields).encode()).digest())
        signed_info = SIGNED_INFO.format(method=self.method, id=fields["id"], digest=digest.decode())
        value = base64.b64encode(self.sign(signed_info.encode())).decode()
        signature = SIGNATURE.format(signed_info=signed_info, value=value, cert=self.cert_b64)
        assertion = ASSERTION.format(signature=signature, **fields).encode()
        content_key, iv = AESGCM.generate_key(256), os.urandom(12)
        encrypted = ENCRYPTED.format(wrapped=base64.b64encode(party.encrypt(content_key, OAEP)).decode(),
                                     cipher=base64.b64encode(iv + AESGCM(content_key).encrypt(iv, assertion, None))
                                     .decode())
        answer = RSTR.format(token=encrypted, **fields).encode()
        token_digest = hashlib.sha256(assertion).hexdigest()
        return Answer(answer, (fields["id"], user, audience, fields["expires"], token_digest),
                      (fields["now"], "issue", user, f"{audience} {fields['id']}"))


class GroupCommit:
    """Token and audit rows of several requests in one transaction; each request waits for its own commit."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.batch: list[tuple[Answer, asyncio.Future[None]]] = []
        self.scheduled = False

    def add(self, answer: Answer) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.batch.append((answer, done))
        if len(self.batch) >= BATCH:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            loop.call_soon(self.flush)  # after the other requests this turn of the loop has finished
        return done

    def flush(self) -> None:
        self.scheduled = False
        batch, self.batch = self.batch, []
        if not batch:
            return
        try:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO token VALUES (?, ?, ?, ?, ?)", [a.token_row for a, _ in batch])
            self.db.executemany("INSERT INTO audit (at, event, subject, detail) VALUES (?, ?, ?, ?)",
                                [a.audit_row for a, _ in batch])
            self.db.execute("COMMIT")
        except sqlite3.Error as error:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            for _, done in batch:
                done.set_exception(error)
            return
        for _, done in batch:
            done.set_result(None)


class FloorApp:
    """The bare ASGI app: POST /services/sts runs the pipeline, GET /healthz answers ok; nothing else."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.commits = GroupCommit(floor.db)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            await self._send(send, 200, b"ok", b"text/plain")
            return
        if scope["path"] != STS_PATH or scope["method"] != "POST":
            await self._send(send, 404, b"", b"text/plain")
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            answer = self.floor.handle(b"".join(chunks))
            await self.commits.add(answer)
        except (Refused, sqlite3.Error) as refused:
            fault = FAULT.format(reason=escape(str(refused) or type(refused).__name__)).encode()
            await self._send(send, 500, fault, b"application/soap+xml; charset=utf-8")
            return
        await self._send(send, 200, answer.body, b"application/soap+xml; charset=utf-8")

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, content_type: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


@contextmanager
def floor_serving(home: Path) -> Iterator[Session]:
    """The floor in its own process (one worker) on a free loopback port for the block, its database in a
    temporary directory; a :class:`bench.server.Session`, so the benchmark measures it as it measures `sts serve`."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sts-floor-") as directory:
        log = open(Path(directory) / "floor.log", "ab")  # noqa: SIM115 -- the child keeps its copy
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.floor", "--home", str(home), "--port", str(port),
                 "--database", str(Path(directory) / "floor.db")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        finally:
            log.close()
        session = Session("127.0.0.1", port, process.pid, 1, home)
        try:
            wait_until_answering(session.base_url, process)
            yield session
        finally:
            stop(process)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--home", type=Path, required=True, help="an STS home (its signing key, the demo party)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", type=Path, required=True, help="the SQLite file (made if missing)")
    args = parser.parse_args(argv)
    import uvicorn  # only the served process needs it

    app = FloorApp(Floor(args.home, args.database, args.port))
    # The stack `sts serve` runs over plain HTTP: httptools' C parser, uvloop, one process.
    uvicorn.run(app, host="127.0.0.1", port=args.port, http="httptools", loop="uvloop", lifespan="off",
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
