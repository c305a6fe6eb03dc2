"""Debian's ``xmlsec1`` command (the XML Security Library's own tool): decrypt with the RP key, then verify
trusting only the STS certificate given on the command line."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from lxml import etree

from sts import ns

from ..xmlread import read_xml
from ..model import TokenCase, Verdict
from .reading import mismatches, read_assertion

__all__ = ["PEER"]

_ID_ATTR: Final = {ns.SAML2: ("ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"),
                   ns.SAML1: ("AssertionID", "urn:oasis:names:tc:SAML:1.0:assertion:Assertion")}


class Xmlsec1:
    about = "the XML Security Library's command-line tool (Debian package xmlsec1): --decrypt, then --verify"

    def __init__(self) -> None:
        self.name = f"xmlsec1 {self._version() or ''}".strip()

    @staticmethod
    def _version() -> str | None:
        if shutil.which("xmlsec1") is None:
            return None
        done = subprocess.run(["xmlsec1", "--version"], capture_output=True, text=True, timeout=10, check=False)
        return done.stdout.split()[1] if len(done.stdout.split()) > 1 else None

    def unavailable(self) -> str | None:
        return None if shutil.which("xmlsec1") else "the xmlsec1 command is not installed (apt-get install xmlsec1)"

    def check(self, case: TokenCase) -> Verdict:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                assertion = self._decrypted(case, Path(tmp)) if case.encrypted else case.token
                self._verify(assertion, case, Path(tmp))
            except subprocess.CalledProcessError as err:
                return Verdict.failed(f"{' '.join(err.cmd[:2])}: {(err.stderr or b'').decode()[-400:].strip()}")
        found = mismatches(read_assertion(read_xml(assertion)), case.expected)
        return Verdict.failed("; ".join(found)) if found else Verdict.passed("decrypted and verified"
                                                                             if case.encrypted else "verified")

    @staticmethod
    def _decrypted(case: TokenCase, tmp: Path) -> bytes:
        if case.rp_key_pem is None:
            raise subprocess.CalledProcessError(1, ["xmlsec1", "--decrypt"], stderr=b"no relying-party key")
        (tmp / "enc.xml").write_bytes(case.token)
        (tmp / "rp.key").write_bytes(case.rp_key_pem)
        out = subprocess.run(["xmlsec1", "--decrypt", "--privkey-pem", str(tmp / "rp.key"), str(tmp / "enc.xml")],
                             capture_output=True, timeout=30, check=True).stdout
        root = read_xml(out)
        if etree.QName(root).localname == "EncryptedAssertion":
            root = next(c for c in root if isinstance(c.tag, str))
        return bytes(etree.tostring(root))

    @staticmethod
    def _verify(assertion: bytes, case: TokenCase, tmp: Path) -> None:
        namespace = etree.QName(read_xml(assertion)).namespace or ""
        attr, node = _ID_ATTR[namespace]
        (tmp / "token.xml").write_bytes(assertion)
        (tmp / "sts.crt").write_bytes(case.sts_cert_pem)
        # --enabled-key-data key-name: the key comes from the certificate given here, never from KeyInfo.
        subprocess.run(["xmlsec1", "--verify", "--pubkey-cert-pem", str(tmp / "sts.crt"), f"--id-attr:{attr}", node,
                        "--enabled-key-data", "key-name", str(tmp / "token.xml")],
                       capture_output=True, timeout=30, check=True)


PEER = Xmlsec1()
