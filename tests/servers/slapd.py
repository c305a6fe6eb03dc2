"""A throwaway OpenLDAP ``slapd`` for tests: a temp dir, loopback ports, the test users of ``fixtures/ldap``.

::

    with Slapd.started(tmp_path) as directory:       # or the ``slapd`` fixture of tests/store/conftest.py
        directory.url                                  # ldap://127.0.0.1:<port> (StartTLS offered)
        directory.ldaps_url                            # ldaps://127.0.0.1:<port>
        directory.ca_file                              # the test CA that signed the server certificate
        directory.settings()                           # the STS's ldap_* settings for this directory
        with directory.paused(): ...                   # SIGSTOP: a directory that accepts and never answers

The configuration is a generated ``slapd.conf`` (mdb backend, suffix ``dc=example,dc=test``, the core, cosine,
inetorgperson and nis schemas of ``/etc/ldap/schema``); the data is ``fixtures/ldap/users.ldif`` loaded with
``slapadd`` before the server starts. A missing binary is a failure that says ``make deps`` installs it: CI must
not pass without the directory tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from servers.freezing import freeze, thaw

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "ldap" / "users.ldif"

SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-1"
#: The service account of the fixture (the STS's ``ldap_bind_dn``) and its password.
READER_DN = f"cn=sts-reader,ou=services,{SUFFIX}"
READER_PASSWORD = "reader-secret-1"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
#: The environment variable the test settings name for the service password (``ldap_bind_password_env``).
PASSWORD_ENV = "STS_TEST_LDAP_BIND_PASSWORD"

_CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
modulepath {modules}
moduleload back_mdb
pidfile {dir}/slapd.pid
TLSCACertificateFile {dir}/ca.crt
TLSCertificateFile {dir}/server.crt
TLSCertificateKeyFile {dir}/server.key

database mdb
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {dir}/db
maxsize 16777216
# Passwords: only binds may use them. Everything else: readable by bound identities, never anonymously.
access to attrs=userPassword by self =xw by anonymous auth by * none
access to * by users read by anonymous auth
"""


class SlapdMissing(RuntimeError):
    """The OpenLDAP server is not installed."""


@dataclass
class Slapd:
    """A running slapd; build it with :meth:`started` (a context manager that stops and removes it)."""

    root: Path
    port: int
    ldaps_port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_file(self) -> str:
        return str(self.root / "ca.crt")

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The STS settings for this directory (service bind, uid logins, a few claims, groups as roles), with
        ``overrides``; the service password is read from ``PASSWORD_ENV``, which :meth:`started` sets."""
        values: dict[str, Any] = {
            "user_store": self.url,
            "ldap_bind_dn": READER_DN,
            "ldap_bind_password_env": PASSWORD_ENV,
            "ldap_user_base": PEOPLE,
            "ldap_user_filter": "(&(objectClass=inetOrgPerson)(uid={username}))",
            "ldap_ca_file": self.ca_file,
            "ldap_timeout_seconds": 2,
            "ldap_pool_size": 2,
            "ldap_claims": ("givenname=givenName", "emailaddress=mail",
                            "http://schemas.example.test/claims/employeetype=employeeType"),
            "ldap_group_base": GROUPS,
            "ldap_group_filter": "(&(objectClass=groupOfNames)(member={dn}))",
            "ldap_role_attribute": "cn",
        }
        values.update(overrides)
        return values

    @classmethod
    @contextmanager
    def started(cls, parent: Path | None = None, ldif: Path = FIXTURE,
                names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Iterator[Slapd]:
        """Generate the configuration and certificates (the server's for ``names``), load ``ldif``, start slapd on
        two free loopback ports (ldap:// with StartTLS, ldaps://), wait until it answers; stop it and remove its
        files afterwards."""
        for binary in (SLAPD, SLAPADD):
            if not binary.exists():
                raise SlapdMissing(f"{binary} is missing: `make deps` installs slapd (the Debian package)")
        root = Path(tempfile.mkdtemp(prefix="slapd-", dir=parent))
        previous = os.environ.get(PASSWORD_ENV)
        os.environ[PASSWORD_ENV] = READER_PASSWORD
        try:
            server = cls._start(root, ldif, names)
            try:
                yield server
            finally:
                server.stop()
        finally:
            if previous is None:
                os.environ.pop(PASSWORD_ENV, None)
            else:
                os.environ[PASSWORD_ENV] = previous
            shutil.rmtree(root, ignore_errors=True)

    @classmethod
    def _start(cls, root: Path, ldif: Path, names: tuple[str, ...]) -> Slapd:
        (root / "db").mkdir()
        write_certificates(root, names)
        conf = root / "slapd.conf"
        conf.write_text(_CONF.format(schema=SCHEMA_DIR, modules=MODULE_DIR, dir=root, suffix=SUFFIX,
                                     rootdn=ROOT_DN, rootpw=ROOT_PASSWORD))
        _run([str(SLAPADD), "-q", "-f", str(conf), "-l", str(ldif)])
        port, ldaps_port = _free_ports(2)
        urls = f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"
        log = (root / "slapd.log").open("wb")
        # -d keeps slapd in the foreground (a child we can stop); level 0 logs only what stops it.
        process = subprocess.Popen([str(SLAPD), "-f", str(conf), "-h", urls, "-d", "0"],
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()
        server = cls(root, port, ldaps_port, process)
        try:
            server._wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}: {self._log_tail()}")
            if _answers(self.port) and _answers(self.ldaps_port):
                return
            time.sleep(0.02)
        raise RuntimeError(f"slapd did not listen within {timeout} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        path = self.root / "slapd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop slapd (resumed first if paused); idempotent."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """A directory that is up but never answers (SIGSTOP: the kernel still accepts connections)."""
        freeze([self.process.pid])  # returns once slapd has really stopped (tests/servers/freezing.py)
        try:
            yield
        finally:
            thaw([self.process.pid])


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def write_certificates(root: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> None:
    """A test CA (``ca.crt``) and a server certificate it signed for ``names`` (IP addresses or DNS names):
    ``server.crt``, ``server.key``. TLS is verified in the tests, not waived."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sts test directory CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alternative_names = [_general_name(name) for name in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (root / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (root / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


__all__ = ["GROUPS", "PASSWORD_ENV", "PEOPLE", "READER_DN", "READER_PASSWORD", "ROOT_DN", "ROOT_PASSWORD",
           "SUFFIX", "Slapd", "SlapdMissing", "write_certificates"]
