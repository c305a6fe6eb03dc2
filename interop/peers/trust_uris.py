"""The WS-Trust URIs the client peers' drivers put in their requests (the suite's own copy: `interop` judges any
STS and does not import `sts`)."""

from __future__ import annotations

from typing import Final

TRUST: Final = {"1.3": "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
                "2005": "http://schemas.xmlsoap.org/ws/2005/02/trust"}
#: Bearer in each version: 1.3 defines ``/Bearer``; 2005/02 has none, WCF and AD FS send NoProofKey.
BEARER: Final = {"1.3": "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer",
                 "2005": "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"}
TOKEN_TYPES: Final = {"1.1": "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1",
                      "2.0": "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"}
WSDL_PATH: Final = "/services/sts?wsdl"
