"""Namespace URIs used across the STS, and helpers to build qualified names.

Sources: SOAP 1.1 (W3C Note), SOAP 1.2 Part 1, WS-Addressing 1.0, WSS 1.0/1.1, WS-Trust 2005/02, 1.3 and 1.4,
SAML 1.1 and 2.0, XML-DSig, XML-Enc 1.0/1.1, WS-Policy 1.2/1.5, WS-SecurityPolicy 1.2 and 2005/07, WS-Federation.
"""

from __future__ import annotations

from functools import lru_cache

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

WSA = "http://www.w3.org/2005/08/addressing"
WSA2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

WST2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust"
WST13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
WST14 = "http://docs.oasis-open.org/ws-sx/ws-trust/200802"

SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
DELEGATION = "urn:oasis:names:tc:SAML:2.0:conditions:delegation"

DS = "http://www.w3.org/2000/09/xmldsig#"
DS11 = "http://www.w3.org/2009/xmldsig11#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"

WSP12 = "http://schemas.xmlsoap.org/ws/2004/09/policy"
WSP15 = "http://www.w3.org/ns/ws-policy"
WSP2006 = "http://www.w3.org/2006/07/ws-policy"
SP12 = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
SP2005 = "http://schemas.xmlsoap.org/ws/2005/07/securitypolicy"

WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
WSAW = "http://www.w3.org/2006/05/addressing/wsdl"
WSAM = "http://www.w3.org/2007/05/addressing/metadata"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MEX = "http://schemas.xmlsoap.org/ws/2004/09/mex"
WSX = MEX
WXF = "http://schemas.xmlsoap.org/ws/2004/09/transfer"

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
FED = "http://docs.oasis-open.org/wsfed/federation/200706"
AUTH = "http://docs.oasis-open.org/wsfed/authorization/200706"
IDENTITY = "http://schemas.xmlsoap.org/ws/2005/05/identity"

WSO2_CLAIMS = "http://wso2.org/claims"

#: Prefixes used when this STS writes XML (readers never depend on them).
PREFIXES: dict[str, str] = {
    "s11": SOAP11,
    "s12": SOAP12,
    "wsa": WSA,
    "wsse": WSSE,
    "wsse11": WSSE11,
    "wsu": WSU,
    "t": WST2005,
    "trust": WST13,
    "wst14": WST14,
    "saml": SAML1,
    "saml2": SAML2,
    "ds": DS,
    "xenc": XENC,
    "xenc11": XENC11,
    "wsp": WSP12,
    "sp": SP12,
    "wsdl": WSDL,
    "xsd": XSD,
    "md": MD,
    "fed": FED,
    "auth": AUTH,
    "i": IDENTITY,
}


def qn(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` as used by lxml."""
    return f"{{{ns}}}{local}"


#: Tags longer than this are split each time, so hostile names cannot fill the cache with large strings.
_CACHED_TAG_LENGTH = 256


def split_qn(tag: str) -> tuple[str, str]:
    """Split a Clark-notation tag into (namespace, local name); namespace '' when absent."""
    # A request repeats the same few dozen tags, and readers split each one more than once.
    if len(tag) <= _CACHED_TAG_LENGTH:
        return _split_cached(tag)
    return _split(tag)


@lru_cache(maxsize=1024)
def _split_cached(tag: str) -> tuple[str, str]:
    return _split(tag)


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag
