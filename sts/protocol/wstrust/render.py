"""Build wst:RequestSecurityTokenResponse(Collection) (WS-Trust 1.3 §4, 2005/02 §4).

1.3 Issue answers with an RSTRC holding one RSTR (adal-node requires the collection); 2005 with a bare RSTR.
Every RSTR has TokenType and RequestedSecurityToken, and nothing precedes the token inside
RequestedSecurityToken (passport-wsfed-saml2 takes its first child).

The fixed part of an Issue answer (the RSTR's elements up to RequestedUnattachedReference, and the RSTRC around it)
is rendered once per WS-Trust version, policy namespace and token type, and copied per response.
:func:`issue_response_bytes` goes one step further for the Issue answers ``sts serve`` gives most (no proof key):
this module's own rendering of each shape, serialised once as a ``sts.protocol.xmlbytes.Template``, filled per
response with the same values and the token's bytes as they were made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from lxml import etree

from sts import ns
from sts.model import CancelResponse, IssuedToken, RequestSecurityTokenResponse, ValidateResponse
from sts.uris import TokenType, TrustVersion
from sts.protocol.wstrust.proof import render_proof
from sts.protocol.xmlbytes import Template, attribute_value, text_content
from sts.xmltime import format_datetime

_WST_PREFIX = {TrustVersion.WST13: "trust", TrustVersion.WST2005: "t"}


def render_issue_response(response: RequestSecurityTokenResponse) -> etree._Element:
    """The body content answering an Issue: RSTRC (1.3) or RSTR (2005)."""
    if response.version is TrustVersion.WST2005:
        return render_rstr(response)
    # lxml's __copy__ copies the whole tree in C (copy.deepcopy adds Python bookkeeping around the same call).
    collection = _skeleton(response.version, _policy_ns(response), response.token.token_type, True).__copy__()
    _fill_rstr(collection[0], response)
    return collection


def issue_response_bytes(response: RequestSecurityTokenResponse) -> bytes | None:
    """``render_issue_response(response)`` serialised, from a template: the same bytes, except that the token is
    ``token.xml`` as made, every namespace declaration kept (moved into a tree, lxml drops those the RSTR makes
    too; the document is the same). None for a response with a proof key (rendered as a tree)."""
    if response.proof is not None:
        return None
    token = response.token
    template = _issue_template(response.version, _policy_ns(response), token.token_type, response.context is not None,
                               response.request_type_uri is not None, response.key_type_uri is not None)
    token_id = text_content(token.token_id)
    values = [] if response.context is None else [attribute_value(response.context)]
    values += [text_content(response.token_type_uri), text_content(format_datetime(token.created)),
               text_content(format_datetime(token.expires)), text_content(token.applies_to),
               token.xml, token_id, token_id]
    if response.request_type_uri is not None:
        values.append(text_content(response.request_type_uri))
    if response.key_type_uri is not None:
        values.append(text_content(response.key_type_uri))
    return template.fill(values)


# Marks: values no response has, each serialised as itself.
_MARK_CONTEXT, _MARK_TYPE, _MARK_APPLIES_TO = "sts-slot-context", "urn:sts-slot:token-type", "urn:sts-slot:applies-to"
_MARK_ID, _MARK_REQUEST_TYPE, _MARK_KEY_TYPE = "sts-slot-token-id", "urn:sts-slot:request-type", "urn:sts-slot:key-type"
_MARK_CREATED, _MARK_EXPIRES = datetime(1901, 1, 1, tzinfo=UTC), datetime(1902, 2, 2, tzinfo=UTC)
_MARK_TOKEN = "sts-slot-token"


@lru_cache(maxsize=256)
def _issue_template(version: TrustVersion, policy_ns: str, token_type: TokenType, context: bool, request_type: bool,
                    key_type: bool) -> Template:
    """One shape of Issue answer, rendered by ``render_issue_response`` with marks for values."""
    marked = IssuedToken(token_id=_MARK_ID, token_type=token_type, xml=f"<{_MARK_TOKEN}/>".encode("ascii"),
                         encrypted=False, created=_MARK_CREATED, expires=_MARK_EXPIRES, applies_to=_MARK_APPLIES_TO,
                         subject="", token_hash="")
    tree = render_issue_response(RequestSecurityTokenResponse(
        version, marked, token_type_uri=_MARK_TYPE, applies_to_ns=policy_ns,
        context=_MARK_CONTEXT if context else None, request_type_uri=_MARK_REQUEST_TYPE if request_type else None,
        key_type_uri=_MARK_KEY_TYPE if key_type else None))
    marks = [_MARK_CONTEXT] if context else []
    marks += [_MARK_TYPE, format_datetime(_MARK_CREATED), format_datetime(_MARK_EXPIRES), _MARK_APPLIES_TO,
              f"<{_MARK_TOKEN}/>", _MARK_ID, _MARK_ID]
    marks += [_MARK_REQUEST_TYPE] if request_type else []
    marks += [_MARK_KEY_TYPE] if key_type else []
    return Template(tree, [mark.encode("ascii") for mark in marks])


def render_collection(version: TrustVersion, responses: list[etree._Element]) -> etree._Element:
    """A wst:RequestSecurityTokenResponseCollection (1.3 Issue, and every batch)."""
    collection = etree.Element(ns.qn(version.value, "RequestSecurityTokenResponseCollection"),
                               nsmap={_WST_PREFIX[version]: version.value})
    collection.extend(responses)
    return collection


def _bare_rstr(version: TrustVersion, context: str | None) -> etree._Element:
    nsmap = {_WST_PREFIX[version]: version.value, "wsu": ns.WSU, "wsse": ns.WSSE, "wsa": ns.WSA}
    rstr = etree.Element(ns.qn(version.value, "RequestSecurityTokenResponse"), nsmap=nsmap)
    if context is not None:
        rstr.set("Context", context)
    return rstr


def render_validate_response(response: ValidateResponse) -> etree._Element:
    """RSTR with wst:Status (Code valid/invalid, Reason); with the new token for validate-and-exchange."""
    version = response.version
    if response.issued is not None:
        rstr = render_rstr(response.issued)
    else:
        rstr = _bare_rstr(version, response.context)
        etree.SubElement(rstr, ns.qn(version.value, "TokenType")).text = version.uri("RSTR/Status")
    status = etree.SubElement(rstr, ns.qn(version.value, "Status"))
    code = "status/valid" if response.status.valid else "status/invalid"
    etree.SubElement(status, ns.qn(version.value, "Code")).text = version.uri(code)
    etree.SubElement(status, ns.qn(version.value, "Reason")).text = response.status.reason
    return rstr


def render_cancel_response(response: CancelResponse) -> etree._Element:
    """RSTR with wst:RequestedTokenCancelled."""
    rstr = _bare_rstr(response.version, response.context)
    etree.SubElement(rstr, ns.qn(response.version.value, "RequestedTokenCancelled"))
    return rstr


def render_rstr(response: RequestSecurityTokenResponse) -> etree._Element:
    """One RSTR carrying an issued token (Issue, Renew, exchange, batch entries)."""
    rstr = _skeleton(response.version, _policy_ns(response), response.token.token_type, False).__copy__()
    _fill_rstr(rstr, response)
    return rstr


def _policy_ns(response: RequestSecurityTokenResponse) -> str:
    return response.applies_to_ns or ns.WSP12


@lru_cache(maxsize=64)
def _skeleton(version: TrustVersion, policy_ns: str, token_type: TokenType, collected: bool) -> etree._Element:
    """TokenType, Lifetime, AppliesTo, RequestedSecurityToken and the two references with empty values, in an RSTRC
    when ``collected``: rendered element by element once, so a copy serialises exactly as that rendering did."""
    wst = version.value
    rstr = _bare_rstr(version, None)
    etree.SubElement(rstr, ns.qn(wst, "TokenType"))
    lifetime = etree.Element(ns.qn(wst, "Lifetime"))
    etree.SubElement(lifetime, ns.qn(ns.WSU, "Created"))
    etree.SubElement(lifetime, ns.qn(ns.WSU, "Expires"))
    rstr.append(lifetime)
    rstr.append(_applies_to(policy_ns, ""))
    etree.SubElement(rstr, ns.qn(wst, "RequestedSecurityToken"))
    etree.SubElement(rstr, ns.qn(wst, "RequestedAttachedReference")).append(_token_reference(token_type, ""))
    etree.SubElement(rstr, ns.qn(wst, "RequestedUnattachedReference")).append(_token_reference(token_type, ""))
    return render_collection(version, [rstr]) if collected else rstr


def _fill_rstr(rstr: etree._Element, response: RequestSecurityTokenResponse) -> None:
    """Set a copied skeleton's values (positions fixed by ``_skeleton``) and append what follows the references."""
    version = response.version
    wst = version.value
    token = response.token
    if response.context is not None:
        rstr.set("Context", response.context)
    token_type, lifetime, applies_to, requested, attached, unattached = rstr
    token_type.text = response.token_type_uri
    lifetime[0].text = format_datetime(token.created)
    lifetime[1].text = format_datetime(token.expires)
    applies_to[0][0].text = token.applies_to
    # The token element as the service built it: moved into the RSTR, never serialised and parsed again.
    requested.append(token.element)
    attached[0][0].text = token.token_id
    unattached[0][0].text = token.token_id
    if response.proof is not None:
        rstr.extend(render_proof(version, response.proof))
    if response.request_type_uri:
        etree.SubElement(rstr, ns.qn(wst, "RequestType")).text = response.request_type_uri
    if response.key_type_uri:
        etree.SubElement(rstr, ns.qn(wst, "KeyType")).text = response.key_type_uri


def _applies_to(policy_ns: str, address: str) -> etree._Element:
    applies = etree.Element(ns.qn(policy_ns, "AppliesTo"), nsmap={"wsp": policy_ns})
    epr = etree.SubElement(applies, ns.qn(ns.WSA, "EndpointReference"))
    etree.SubElement(epr, ns.qn(ns.WSA, "Address")).text = address
    return applies


def _token_reference(token_type: TokenType, token_id: str) -> etree._Element:
    """A SecurityTokenReference to the SAML assertion by its ID (WSS SAML Token Profile 1.1 §3.4)."""
    str_el = etree.Element(ns.qn(ns.WSSE, "SecurityTokenReference"), nsmap={"wsse": ns.WSSE, "wsse11": ns.WSSE11})
    str_el.set(ns.qn(ns.WSSE11, "TokenType"), token_type.profile_uri)
    key_id = etree.SubElement(str_el, ns.qn(ns.WSSE, "KeyIdentifier"))
    key_id.set("ValueType", token_type.key_identifier_value_type)
    key_id.text = token_id
    return str_el


def render_rst(
    version: TrustVersion,
    *,
    applies_to: str | None,
    token_type_uri: str | None = None,
    key_type_uri: str | None = None,
    claims: tuple[tuple[str, bool], ...] = (),
    claims_dialect: str = ns.IDENTITY,
    lifetime: tuple[str | None, str | None] | None = None,
    request_type: str = "Issue",
    context: str | None = None,
    targets: dict[str, etree._Element | str] | None = None,
    renewing: tuple[bool, bool] | None = None,
    extra: tuple[etree._Element, ...] = (),
) -> etree._Element:
    """A wst:RequestSecurityToken (the client side; also used to drive tests).

    ``targets`` maps RenewTarget/CancelTarget/ValidateTarget/OnBehalfOf/ActAs to the token element itself or
    to its id (sent as a SecurityTokenReference); ``renewing`` is (Allow, OK).
    """
    wst = version.value
    rst = etree.Element(ns.qn(wst, "RequestSecurityToken"), nsmap={_WST_PREFIX[version]: wst})
    if context is not None:
        rst.set("Context", context)
    if token_type_uri:
        etree.SubElement(rst, ns.qn(wst, "TokenType")).text = token_type_uri
    etree.SubElement(rst, ns.qn(wst, "RequestType")).text = version.uri(request_type)
    if applies_to is not None:
        rst.append(_applies_to(ns.WSP12, applies_to))
    if lifetime is not None:
        life = etree.SubElement(rst, ns.qn(wst, "Lifetime"))
        for local, value in zip(("Created", "Expires"), lifetime):
            if value is not None:
                etree.SubElement(life, ns.qn(ns.WSU, local), nsmap={"wsu": ns.WSU}).text = value
    if claims:
        claims_el = etree.SubElement(rst, ns.qn(wst, "Claims"), Dialect=claims_dialect)
        claim_ns = ns.AUTH if claims_dialect == ns.AUTH else ns.IDENTITY
        for uri, optional in claims:
            claim = etree.SubElement(claims_el, ns.qn(claim_ns, "ClaimType"), nsmap={"i": claim_ns}, Uri=uri)
            if optional:
                claim.set("Optional", "true")
    if key_type_uri:
        etree.SubElement(rst, ns.qn(wst, "KeyType")).text = key_type_uri
    if renewing is not None:
        etree.SubElement(rst, ns.qn(wst, "Renewing"), Allow=str(renewing[0]).lower(), OK=str(renewing[1]).lower())
    for local, target in (targets or {}).items():
        holder = etree.SubElement(rst, ns.qn(ns.WST14 if local == "ActAs" else wst, local))
        if isinstance(target, str):
            reference = etree.SubElement(holder, ns.qn(ns.WSSE, "SecurityTokenReference"), nsmap={"wsse": ns.WSSE})
            etree.SubElement(reference, ns.qn(ns.WSSE, "KeyIdentifier")).text = target
        else:
            holder.append(target)
    rst.extend(extra)
    return rst
