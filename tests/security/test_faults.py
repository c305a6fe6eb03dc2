"""The fault table, pinned: one request per bad-input class, each asserting the exact fault code over HTTP.

Our own live STS only (relying parties with policies of our own are registered in its database); the cases that
run against any STS are in the other modules of this directory.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from sts import ns
from sts.protocol.addressing import render_request_headers
from sts.config import load_settings
from interop.xsd import validator
from sts.model import RelyingParty
from sts.protocol.soap import build_envelope
from sts.uris import RequestType, SoapVersion, TrustVersion
from sts.runtime import open_stores
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wstrust.render import render_rst
from sts.xmltime import format_datetime, utcnow
from attack_target import local_only
from trust_client import post, rst_envelope

pytestmark = local_only

HOSTILE = Path(__file__).resolve().parents[2] / "fixtures" / "hostile"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
MISSING = "http://example.org/claims/shoesize"
STRICT_RP = "https://strict.example/"
NEEDY_RP = "https://needy.example/"
WST13 = ns.WST13


@pytest.fixture(scope="module", autouse=True)
def policy_rps(sts_home: Path) -> None:
    stores = open_stores(load_settings(sts_home))
    if stores.relying_parties.lookup(STRICT_RP) is None:
        stores.relying_parties.add(RelyingParty(endpoint=STRICT_RP, encrypt=False, permitted_claims=(GIVENNAME,),
                                                max_lifetime=timedelta(hours=1), refuse_long_lifetime=True))
    if stores.relying_parties.lookup(NEEDY_RP) is None:
        stores.relying_parties.add(RelyingParty(endpoint=NEEDY_RP, encrypt=False, required_claims=(MISSING,)))


def _issue(live_sts, demo, **options):
    options.setdefault("applies_to", demo["rp"])
    user = options.pop("user", demo["user"])
    password = options.pop("password", demo["password"])
    soap = options.get("soap", SoapVersion.SOAP12)
    return post(live_sts.sts_url, rst_envelope(user=user, password=password, **options), soap)


@pytest.mark.parametrize("user,password", [("alice", "not-her-password"), ("mallory", "wonderland")])
def test_unknown_user_or_wrong_password(live_sts, demo, user, password) -> None:
    reply = _issue(live_sts, demo, user=user, password=password)
    assert reply.fault_code == (WST13, "FailedAuthentication")
    assert reply.fault_reason == "Authentication failed"
    assert reply.status == 400


def test_fault_code_in_the_requests_trust_namespace(live_sts, demo) -> None:
    reply = _issue(live_sts, demo, password="bad", version=TrustVersion.WST2005, soap=SoapVersion.SOAP11)
    assert reply.fault_code == (ns.WST2005, "FailedAuthentication")
    assert reply.status == 500  # SOAP 1.1 HTTP binding


@pytest.mark.parametrize("soap", list(SoapVersion))
def test_faults_are_schema_valid(live_sts, demo, soap) -> None:
    reply = _issue(live_sts, demo, password="bad", soap=soap)
    assert reply.fault_code == (WST13, "FailedAuthentication")  # a fault is what gets validated
    validator().validate(reply.root)


def _with_security(live_sts, demo, security: etree._Element) -> object:
    rst = render_rst(TrustVersion.WST13, applies_to=demo["rp"])
    headers = render_request_headers(RequestType.ISSUE.request_action(TrustVersion.WST13))
    return post(live_sts.sts_url, build_envelope(SoapVersion.SOAP12, rst, headers + [security]))


@pytest.mark.parametrize("offset", [timedelta(hours=-1), timedelta(hours=1)], ids=["stale", "future"])
def test_stale_or_future_timestamp(live_sts, demo, offset) -> None:
    security = build_security_header(demo["user"], demo["password"], now=utcnow() + offset)
    assert _with_security(live_sts, demo, security).fault_code == (ns.WSSE, "MessageExpired")


def test_stale_digest_created(live_sts, demo) -> None:
    security = build_security_header(demo["user"], demo["password"], digest=True, now=utcnow() - timedelta(hours=1),
                                     ttl=timedelta(hours=2))
    assert _with_security(live_sts, demo, security).fault_code == (ns.WSSE, "MessageExpired")


def test_replayed_nonce(live_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], digest=True)
    assert post(live_sts.sts_url, body).status == 200
    assert post(live_sts.sts_url, body).fault_code == (ns.WSSE, "MessageExpired")


def test_unknown_applies_to_is_invalid_scope(live_sts, demo) -> None:
    reply = _issue(live_sts, demo, applies_to="https://unknown.example/x")
    assert reply.fault_code == (WST13, "InvalidScope")
    assert reply.fault_reason.endswith("https://unknown.example/x")


def test_missing_required_claim(live_sts, demo) -> None:
    reply = _issue(live_sts, demo, applies_to=NEEDY_RP)
    assert reply.fault_code == (WST13, "RequestFailed")
    assert reply.fault_reason.endswith(MISSING)


def test_requested_claim_outside_permitted_set(live_sts, demo) -> None:
    email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    reply = _issue(live_sts, demo, applies_to=STRICT_RP, claims=((email, False),))
    assert reply.fault_code == (WST13, "RequestFailed") and reply.fault_reason.endswith(email)
    optional = _issue(live_sts, demo, applies_to=STRICT_RP, claims=((email, True), (GIVENNAME, False)))
    assert optional.status == 200
    assert b"alice@example.org" not in etree.tostring(optional.token())


@pytest.mark.parametrize("lifetime", [
    pytest.param(lambda now: (now, now - timedelta(minutes=1)), id="expires-before-created"),
    pytest.param(lambda now: (now - timedelta(hours=2), now - timedelta(hours=1)), id="in-the-past"),
    pytest.param(lambda now: (now, now + timedelta(hours=5)), id="past-the-cap"),
])
def test_invalid_time_range(live_sts, demo, lifetime) -> None:
    created, expires = lifetime(utcnow())
    reply = _issue(live_sts, demo, applies_to=STRICT_RP,
                   lifetime=(format_datetime(created), format_datetime(expires)))
    assert reply.fault_code == (WST13, "InvalidTimeRange")


def test_lifetime_clamped_to_the_cap_by_default(live_sts, demo) -> None:
    now = utcnow()
    reply = _issue(live_sts, demo, lifetime=(format_datetime(now), format_datetime(now + timedelta(days=3))))
    assert reply.status == 200
    created = reply.findtext(".//trust:Lifetime/wsu:Created")
    expires = reply.findtext(".//trust:Lifetime/wsu:Expires")
    from sts.xmltime import parse_datetime
    assert parse_datetime(expires) - parse_datetime(created) == timedelta(hours=8)


@pytest.mark.parametrize("option,value", [
    ("token_type_uri", "urn:ietf:params:oauth:token-type:jwt"),
    ("key_type_uri", "http://docs.oasis-open.org/ws-sx/ws-trust/200512/NoSuchKeyType"),
])
def test_unsupported_is_bad_request(live_sts, demo, option, value) -> None:
    assert _issue(live_sts, demo, **{option: value}).fault_code == (WST13, "BadRequest")


def test_malformed_xml_is_invalid_request(live_sts) -> None:
    reply = post(live_sts.sts_url, b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>")
    assert reply.fault_code == (WST13, "InvalidRequest")


def test_malformed_rst_is_invalid_request(live_sts, demo) -> None:
    rst = etree.Element(f"{{{WST13}}}RequestSecurityToken")
    headers = [build_security_header(demo["user"], demo["password"])]
    reply = post(live_sts.sts_url, build_envelope(SoapVersion.SOAP12, rst, headers))
    assert reply.fault_code == (WST13, "InvalidRequest") and reply.fault_reason.endswith("RequestType")


def test_action_contradicting_request_type(live_sts, demo) -> None:
    rst = render_rst(TrustVersion.WST13, applies_to=demo["rp"])
    headers = render_request_headers(RequestType.CANCEL.request_action(TrustVersion.WST13))
    headers.append(build_security_header(demo["user"], demo["password"]))
    reply = post(live_sts.sts_url, build_envelope(SoapVersion.SOAP12, rst, headers))
    assert reply.fault_code == (WST13, "InvalidRequest")


def test_version_mismatch(live_sts) -> None:
    reply = post(live_sts.sts_url, b"<e:Envelope xmlns:e='urn:not-soap'><e:Body/></e:Envelope>")
    assert reply.fault_code == (ns.SOAP12, "VersionMismatch")


def test_must_understand(live_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"])
    root = etree.fromstring(body)
    header = root.find(f"{{{ns.SOAP12}}}Header")
    etree.SubElement(header, "{urn:unknown}Thing").set(f"{{{ns.SOAP12}}}mustUnderstand", "true")
    reply = post(live_sts.sts_url, etree.tostring(root))
    assert reply.fault_code == (ns.SOAP12, "MustUnderstand")


@pytest.mark.parametrize("name", ["billion-laughs.xml", "xxe-file.xml", "xxe-network.xml", "deep-nesting.xml"])
def test_hostile_xml(live_sts, name) -> None:
    reply = post(live_sts.sts_url, (HOSTILE / name).read_bytes())
    assert reply.fault_code == (WST13, "InvalidRequest")
    assert b"root:" not in etree.tostring(reply.root) and b"lollol" not in etree.tostring(reply.root)


def test_xinclude_is_never_followed(live_sts) -> None:
    reply = post(live_sts.sts_url, (HOSTILE / "xinclude.xml").read_bytes())
    assert reply.fault_code is not None and b"root:" not in etree.tostring(reply.root)


def test_oversized_request(live_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"])
    padded = body.replace(b"</s:Body>", b"<!--" + b"x" * (1024 * 1024) + b"--></s:Body>")
    reply = post(live_sts.sts_url, padded)
    assert reply.fault_code == (WST13, "InvalidRequest")


def test_no_traceback_or_internal_detail_in_faults(live_sts, demo) -> None:
    reply = _issue(live_sts, demo, password="bad")
    text = etree.tostring(reply.root)
    assert b"Traceback" not in text and b"bad credentials" not in text
