"""The requester's side of WS-Security: a Security header with a Timestamp and a UsernameToken."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timedelta

from lxml import etree

from .. import ns
from ..uris import BASE64_BINARY, PASSWORD_DIGEST, PASSWORD_TEXT
from ..xmltime import format_datetime, utcnow
from .username import password_digest


def build_security_header(
    username: str,
    password: str,
    *,
    digest: bool = False,
    password_type_attr: bool = True,
    now: datetime | None = None,
    ttl: timedelta = timedelta(minutes=5),
    nonce: bytes | None = None,
    soap_ns: str = ns.SOAP12,
) -> etree._Element:
    """wsse:Security (mustUnderstand) with wsu:Timestamp and a text or digest UsernameToken."""
    now = now or utcnow()
    created = format_datetime(now)
    security = etree.Element(ns.qn(ns.WSSE, "Security"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    security.set(ns.qn(soap_ns, "mustUnderstand"), "1")
    timestamp = etree.SubElement(security, ns.qn(ns.WSU, "Timestamp"))
    timestamp.set(ns.qn(ns.WSU, "Id"), "_0")
    etree.SubElement(timestamp, ns.qn(ns.WSU, "Created")).text = created
    etree.SubElement(timestamp, ns.qn(ns.WSU, "Expires")).text = format_datetime(now + ttl)
    token = etree.SubElement(security, ns.qn(ns.WSSE, "UsernameToken"))
    etree.SubElement(token, ns.qn(ns.WSSE, "Username")).text = username
    password_el = etree.SubElement(token, ns.qn(ns.WSSE, "Password"))
    if digest:
        nonce = nonce if nonce is not None else os.urandom(16)
        password_el.set("Type", PASSWORD_DIGEST)
        password_el.text = password_digest(nonce, created, password)
        etree.SubElement(token, ns.qn(ns.WSSE, "Nonce"), EncodingType=BASE64_BINARY).text = (
            base64.b64encode(nonce).decode()
        )
        etree.SubElement(token, ns.qn(ns.WSU, "Created")).text = created
    else:
        if password_type_attr:
            password_el.set("Type", PASSWORD_TEXT)
        password_el.text = password
    return security
