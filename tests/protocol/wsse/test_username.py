from datetime import datetime, timedelta, timezone

import pytest

from sts import ns
from sts.service.auth import UsernameTokenAuthenticator
from sts.errors import FailedAuthentication, InsecureTransport, MessageExpired, SecurityHeaderError, UnsupportedSecurityToken
from sts.model import RequestContext, UserRecord
from sts.protocol.soap import build_envelope, parse_envelope
from sts.uris import AuthnMethod, SoapVersion
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wsse.header import parse_security_header
from sts.protocol.xmlsafe import parse
from lxml import etree

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)


class Users:
    """A fake user directory: one user, password 'secret'."""

    def get(self, name: str) -> UserRecord | None:
        return UserRecord(name=name) if name == "bob" else None

    def check_password(self, name: str, password: str) -> bool:
        return name == "bob" and password == "secret"

    def digest_secret(self, name: str) -> str | None:
        return "secret" if name == "bob" else None


class Replay:
    def __init__(self) -> None:
        self.seen: dict[bytes, datetime] = {}

    def first_seen(self, key: bytes, until: datetime) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = until
        return True


def _header(security: etree._Element):
    data = build_envelope(SoapVersion.SOAP12, etree.Element("{urn:x}a"), [security])
    return parse_security_header(parse_envelope(parse(data)))


def _ctx(*, tls: bool = False, loopback: bool = True, at: datetime = NOW) -> RequestContext:
    return RequestContext(remote="127.0.0.1", tls=tls, loopback_bind=loopback, received_at=at)


@pytest.fixture
def auth() -> UsernameTokenAuthenticator:
    return UsernameTokenAuthenticator(users=Users(), replay=Replay())


def test_text_password(auth: UsernameTokenAuthenticator) -> None:
    principal = auth.authenticate(_header(build_security_header("bob", "secret", now=NOW)), _ctx())
    assert principal.name == "bob" and principal.authn_method is AuthnMethod.PASSWORD


def test_password_without_type_is_text(auth: UsernameTokenAuthenticator) -> None:
    header = _header(build_security_header("bob", "secret", now=NOW, password_type_attr=False))
    assert auth.authenticate(header, _ctx()).name == "bob"


@pytest.mark.parametrize("user,password", [("bob", "wrong"), ("nobody", "secret")])
def test_unknown_user_and_wrong_password_fail_alike(auth: UsernameTokenAuthenticator, user: str, password: str) -> None:
    with pytest.raises(FailedAuthentication) as info:
        auth.authenticate(_header(build_security_header(user, password, now=NOW)), _ctx())
    assert info.value.public_reason == "Authentication failed"


def test_digest_password_and_replay(auth: UsernameTokenAuthenticator) -> None:
    security = build_security_header("bob", "secret", digest=True, now=NOW)
    assert auth.authenticate(_header(security), _ctx()).name == "bob"
    with pytest.raises(MessageExpired):
        auth.authenticate(_header(security), _ctx())


def test_digest_wrong_password(auth: UsernameTokenAuthenticator) -> None:
    with pytest.raises(FailedAuthentication):
        auth.authenticate(_header(build_security_header("bob", "nope", digest=True, now=NOW)), _ctx())


def test_digest_unknown_user(auth: UsernameTokenAuthenticator) -> None:
    with pytest.raises(FailedAuthentication):
        auth.authenticate(_header(build_security_header("eve", "secret", digest=True, now=NOW)), _ctx())


def test_stale_digest_created(auth: UsernameTokenAuthenticator) -> None:
    security = build_security_header("bob", "secret", digest=True, now=NOW - timedelta(minutes=30),
                                     ttl=timedelta(hours=1))
    with pytest.raises(MessageExpired):
        auth.authenticate(_header(security), _ctx())


@pytest.mark.parametrize("offset", [timedelta(minutes=-20), timedelta(minutes=20)])
def test_stale_or_future_timestamp(auth: UsernameTokenAuthenticator, offset: timedelta) -> None:
    security = build_security_header("bob", "secret", now=NOW + offset)
    with pytest.raises(MessageExpired):
        auth.authenticate(_header(security), _ctx())


def test_skew_tolerated(auth: UsernameTokenAuthenticator) -> None:
    security = build_security_header("bob", "secret", now=NOW + timedelta(minutes=4))
    assert auth.authenticate(_header(security), _ctx()).name == "bob"


def test_text_over_plain_http_on_public_bind_refused(auth: UsernameTokenAuthenticator) -> None:
    with pytest.raises(InsecureTransport):
        auth.authenticate(_header(build_security_header("bob", "secret", now=NOW)), _ctx(loopback=False))


def test_text_over_tls_accepted(auth: UsernameTokenAuthenticator) -> None:
    header = _header(build_security_header("bob", "secret", now=NOW))
    assert auth.authenticate(header, _ctx(tls=True, loopback=False)).name == "bob"


def test_no_token(auth: UsernameTokenAuthenticator) -> None:
    with pytest.raises(FailedAuthentication):
        auth.authenticate(parse_security_header(parse_envelope(parse(
            build_envelope(SoapVersion.SOAP12, etree.Element("{urn:x}a"))))), _ctx())


def test_unknown_password_type() -> None:
    security = build_security_header("bob", "secret", now=NOW)
    security.find(f".//{{{ns.WSSE}}}Password").set("Type", "urn:other")
    with pytest.raises(UnsupportedSecurityToken):
        _header(security)


def test_two_security_headers() -> None:
    data = build_envelope(SoapVersion.SOAP12, etree.Element("{urn:x}a"),
                          [build_security_header("bob", "s", now=NOW), build_security_header("bob", "s", now=NOW)])
    with pytest.raises(SecurityHeaderError):
        parse_security_header(parse_envelope(parse(data)))


def test_tolerates_plus_zero_and_six_digit_fractions(auth: UsernameTokenAuthenticator) -> None:
    security = build_security_header("bob", "secret", now=NOW)
    ts = security.find(f"{{{ns.WSU}}}Timestamp")
    ts[0].text = "2026-11-28T11:59:00.123456+00:00"
    ts[1].text = "2026-11-28T12:04:00.123456+00:00"
    assert auth.authenticate(_header(security), _ctx()).name == "bob"
