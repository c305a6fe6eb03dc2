"""The claim dictionary: the claim URIs this STS knows, each with a short name.

The set is the one WIF and AD FS publish (the identity-claims namespace of WS-Federation/Information Card,
``http://schemas.xmlsoap.org/ws/2005/05/identity/claims/...``, and Microsoft's 2008/06 namespace for roles,
groups and authentication data), plus the WSO2 ``http://wso2.org/claims/...`` names its STS clients ask for.

Every front-end resolves what an administrator types through :func:`resolve_claim`:

* a short name (``givenname``, ``emailaddress``, ``role``) expands to its URI;
* an unknown short name is refused, and the message lists the known ones;
* a full URI is taken as given; one outside the dictionary comes with a warning (a typo is the usual cause).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_XMLSOAP: Final = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
_MS: Final = "http://schemas.microsoft.com/ws/2008/06/identity/claims"
_WSO2: Final = "http://wso2.org/claims"


@dataclass(frozen=True)
class KnownClaim:
    name: str
    uri: str
    description: str


KNOWN_CLAIMS: Final[tuple[KnownClaim, ...]] = (
    KnownClaim("givenname", f"{_XMLSOAP}/givenname", "Given name"),
    KnownClaim("surname", f"{_XMLSOAP}/surname", "Surname"),
    KnownClaim("name", f"{_XMLSOAP}/name", "Name"),
    KnownClaim("emailaddress", f"{_XMLSOAP}/emailaddress", "E-mail address"),
    KnownClaim("upn", f"{_XMLSOAP}/upn", "User principal name"),
    KnownClaim("nameidentifier", f"{_XMLSOAP}/nameidentifier", "Name identifier"),
    KnownClaim("dateofbirth", f"{_XMLSOAP}/dateofbirth", "Date of birth"),
    KnownClaim("gender", f"{_XMLSOAP}/gender", "Gender"),
    KnownClaim("country", f"{_XMLSOAP}/country", "Country"),
    KnownClaim("locality", f"{_XMLSOAP}/locality", "Locality"),
    KnownClaim("stateorprovince", f"{_XMLSOAP}/stateorprovince", "State or province"),
    KnownClaim("streetaddress", f"{_XMLSOAP}/streetaddress", "Street address"),
    KnownClaim("postalcode", f"{_XMLSOAP}/postalcode", "Postal code"),
    KnownClaim("homephone", f"{_XMLSOAP}/homephone", "Home phone"),
    KnownClaim("otherphone", f"{_XMLSOAP}/otherphone", "Other phone"),
    KnownClaim("mobilephone", f"{_XMLSOAP}/mobilephone", "Mobile phone"),
    KnownClaim("webpage", f"{_XMLSOAP}/webpage", "Web page"),
    KnownClaim("privatepersonalidentifier", f"{_XMLSOAP}/privatepersonalidentifier",
               "Private personal identifier"),
    KnownClaim("authentication", f"{_XMLSOAP}/authentication", "Authentication"),
    KnownClaim("role", f"{_MS}/role", "Role"),
    KnownClaim("groupsid", f"{_MS}/groupsid", "Group SID"),
    KnownClaim("primarysid", f"{_MS}/primarysid", "Primary SID"),
    KnownClaim("windowsaccountname", f"{_MS}/windowsaccountname", "Windows account name"),
    KnownClaim("authenticationmethod", f"{_MS}/authenticationmethod", "Authentication method"),
    KnownClaim("authenticationinstant", f"{_MS}/authenticationinstant", "Authentication instant"),
    KnownClaim("wso2-username", f"{_WSO2}/username", "WSO2 user name"),
    KnownClaim("wso2-emailaddress", f"{_WSO2}/emailaddress", "WSO2 e-mail address"),
    KnownClaim("wso2-givenname", f"{_WSO2}/givenname", "WSO2 given name"),
    KnownClaim("wso2-lastname", f"{_WSO2}/lastname", "WSO2 last name"),
    KnownClaim("wso2-role", f"{_WSO2}/role", "WSO2 role"),
)
BY_NAME: Final[dict[str, KnownClaim]] = {c.name: c for c in KNOWN_CLAIMS}
BY_URI: Final[dict[str, KnownClaim]] = {c.uri: c for c in KNOWN_CLAIMS}


class UnknownClaimName(ValueError):
    """A short name that is not in the dictionary; the message lists the known ones."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown claim name {name!r}: use a full URI or one of {', '.join(sorted(BY_NAME))}")
        self.name = name


@dataclass(frozen=True)
class ResolvedClaim:
    """A claim as an administrator named it: its URI, and a warning when the URI is outside the dictionary."""

    uri: str
    warning: str | None = None

    @property
    def short_name(self) -> str | None:
        known = BY_URI.get(self.uri)
        return known.name if known else None


def resolve_claim(text: str) -> ResolvedClaim:
    """``givenname`` -> its URI; a URI -> itself (with a warning if unknown); an unknown short name raises."""
    value = text.strip()
    if not value:
        raise ValueError("a claim name or URI is required")
    if _is_uri(value):
        if value in BY_URI:
            return ResolvedClaim(value)
        return ResolvedClaim(value, f"claim URI {value} is not in the claim dictionary (a typo?); "
                                    f"stored as given")
    known = BY_NAME.get(value.lower())
    if known is None:
        raise UnknownClaimName(value)
    return ResolvedClaim(known.uri)


def short_name(uri: str) -> str:
    """The short name of a known URI, else the URI itself (for display)."""
    known = BY_URI.get(uri)
    return known.name if known else uri


def _is_uri(value: str) -> bool:
    return ":" in value


__all__ = ["BY_NAME", "BY_URI", "KNOWN_CLAIMS", "KnownClaim", "ResolvedClaim", "UnknownClaimName",
           "resolve_claim", "short_name"]
