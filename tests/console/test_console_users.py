"""The console's users, explain, tokens and audit pages and their JSON API: form and JSON in, the core's answer out."""

from __future__ import annotations

import base64
import getpass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from console_support import ADMIN, ADMIN_PASSWORD  # type: ignore[import-not-found]
from starlette.testclient import TestClient

from sts.cli.main import main
from sts.home import CLAIMS, DEMO_RP_ENDPOINT
from sts.model import Claim, TokenDetails, TokenRecord
from sts.runtime import Runtime
from sts.uris import TokenType

GIVEN, SURNAME, UPN = f"{CLAIMS}/givenname", f"{CLAIMS}/surname", f"{CLAIMS}/upn"
STRONG = "a long enough password"


def basic() -> dict[str, str]:
    token = base64.b64encode(f"{ADMIN}:{ADMIN_PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_add_user_with_the_picker_and_a_short_name(client: TestClient, admin: str, runtime: Runtime) -> None:
    added = client.post("/console/users", data={"csrf": admin, "name": "carol", "password": "pw",
                                                "claims": "surname=Crane", "claim_name": "givenname",
                                                "claim_value": "Carol"})
    assert added.status_code == 303
    user = runtime.stores.users.get("carol")
    assert user is not None and [(c.uri, c.values) for c in user.claims] == [(SURNAME, ("Crane",)),
                                                                            (GIVEN, ("Carol",))]
    page = client.get("/console/users").text
    assert '<datalist id="claim-names">' in page and '<option value="emailaddress">' in page
    assert f'<code title="{GIVEN}">givenname</code> = Carol' in page


def test_unknown_name_is_refused_and_unknown_uri_warned(client: TestClient, admin: str, runtime: Runtime) -> None:
    refused = client.post("/console/users", data={"csrf": admin, "name": "dan", "password": "pw",
                                                  "claims": "bogusclaimname=x"})
    assert refused.status_code == 400 and 'id="claims-error"' in refused.text
    assert "unknown claim name" in refused.text and runtime.stores.users.get("dan") is None
    warned = client.post("/console/users", data={"csrf": admin, "name": "dan", "password": "pw",
                                                 "claims": "urn:example:shoe=42"})
    assert warned.status_code == 200 and "Warning: claim URI urn:example:shoe is not in the claim dictionary" in \
        warned.text
    assert runtime.stores.users.get("dan") is not None


def test_admin_password_policy_in_the_console(client: TestClient, admin: str, runtime: Runtime) -> None:
    short = client.post("/console/users", data={"csrf": admin, "name": "erin", "password": "short", "admin": "1"})
    assert short.status_code == 400 and 'id="password-error"' in short.text and "at least 12" in short.text
    client.post("/console/users", data={"csrf": admin, "name": "erin", "password": "pw"})
    refused = client.post("/console/users/erin", data={"csrf": admin, "action": "promote", "password": "erin"})
    assert refused.status_code == 400 and 'id="promote-error"' in refused.text
    assert client.post("/console/users/erin", data={"csrf": admin, "action": "promote",
                                                    "password": STRONG}).status_code == 303
    record = runtime.stores.users.get("erin")
    assert record is not None and record.admin
    assert client.post("/console/users/erin", data={"csrf": admin, "action": "demote"}).status_code == 303
    own = client.post(f"/console/users/{ADMIN}", data={"csrf": admin, "action": "remove"})
    assert own.status_code == 400 and "you cannot remove your own account" in own.text


def test_explain_page_optional_and_required_claims(client: TestClient, admin: str, runtime: Runtime) -> None:
    runtime.stores.users.add("bob", "pw", [(GIVEN, "Bob")])
    optional = client.post("/console/explain", data={"csrf": admin, "user": "bob", "rp": DEMO_RP_ENDPOINT,
                                                     "claims": "givenname\nupn?"})
    assert optional.status_code == 200 and "Would issue" in optional.text
    assert "optional, and the user has no value for it" in optional.text
    required = client.post("/console/explain", data={"csrf": admin, "user": "bob", "rp": DEMO_RP_ENDPOINT,
                                                     "claim_name": "upn"})
    assert "Would refuse" in required.text and "Refused: bob lacks the requested claim upn" in required.text
    assert "wst:RequestFailed" in required.text
    picked_optional = client.post("/console/explain", data={"csrf": admin, "user": "bob", "rp": DEMO_RP_ENDPOINT,
                                                            "claim_name": "upn", "claim_optional": "1"})
    assert "Would issue" in picked_optional.text
    ghost = client.post("/console/explain", data={"csrf": admin, "user": "ghost", "rp": DEMO_RP_ENDPOINT})
    assert "Refused: no user named ghost" in ghost.text
    bad = client.post("/console/explain", data={"csrf": admin, "user": "bob", "rp": DEMO_RP_ENDPOINT,
                                                "claims": "bogusclaimname"})
    assert bad.status_code == 400 and 'id="claims-error"' in bad.text


def test_explain_api_optional_and_required(client: TestClient, runtime: Runtime) -> None:
    body = {"user": "alice", "rp": DEMO_RP_ENDPOINT}
    optional = client.post("/console/api/explain", headers=basic(), json={**body, "claims": ["upn?"]}).json()
    assert optional["ok"] is True and optional["omitted"][0]["uri"] == UPN
    required = client.post("/console/api/explain", headers=basic(), json={**body, "claims": ["upn"]}).json()
    assert required["ok"] is False and required["problem"] == "alice lacks the requested claim upn"
    assert required["fault"]["code"] == "wst:RequestFailed"
    refused = client.post("/console/api/explain", headers=basic(), json={**body, "claims": ["bogusclaimname"]})
    assert refused.status_code == 400 and "unknown claim name" in refused.json()["errors"]["claims"]


def _token(runtime: Runtime, token_id: str) -> None:
    now = datetime.now(UTC)
    details = TokenDetails(claims=(Claim(GIVEN, ("Alice",)),), encrypted=False)
    runtime.stores.tokens.put(TokenRecord(token_id, TokenType.SAML20, "alice", DEMO_RP_ENDPOINT, now,
                                          now + timedelta(hours=1), details=details))


def test_token_detail_is_a_table_without_reprs(client: TestClient, admin: str, runtime: Runtime) -> None:
    _token(runtime, "_t1")
    page = client.get("/console/tokens/_t1").text
    assert '<table class="list" id="token-claims">' in page
    assert f"<td>givenname</td><td><code>{GIVEN}</code></td><td>Alice</td>" in page
    assert "<td>—</td>" in page  # delegation, data encryption ... were never set
    for repr_text in ("[{", "{&#39;uri", "None", "[]", "&#39;values&#39;"):
        assert repr_text not in page
    assert client.get("/console/tokens/_missing").status_code == 404
    assert client.post("/console/tokens/_t1/cancel", data={"csrf": admin}).headers["location"].endswith(
        "cancelled=1")
    assert client.post("/console/tokens/_t1/cancel", data={"csrf": admin}).headers["location"].endswith(
        "cancelled=0")
    assert client.get("/console/tokens?status=bogus").status_code == 400


def test_token_api(client: TestClient, runtime: Runtime) -> None:
    _token(runtime, "_t2")
    [listed] = client.get("/console/api/tokens?subject=alice", headers=basic()).json()
    assert listed["claims"] == [{"name": "givenname", "uri": GIVEN, "values": ["Alice"]}]
    assert listed["details"]["Encrypted"] == "no"
    assert client.post("/console/api/tokens/_t2/cancel", headers=basic()).json() == {"cancelled": True}
    again = client.post("/console/api/tokens/_t2/cancel", headers=basic())
    assert again.status_code == 409 and again.json()["cancelled"] is False
    assert client.post("/console/api/tokens/_nope/cancel", headers=basic()).status_code == 404


def test_user_api(client: TestClient, runtime: Runtime) -> None:
    created = client.post("/console/api/users", headers=basic(),
                          json={"name": "gus", "password": "pw", "claims": {"givenname": "Gus"}})
    assert created.status_code == 201 and created.json() == {"name": "gus", "warnings": []}
    listed = {u["name"]: u for u in client.get("/console/api/users", headers=basic()).json()}
    assert listed["gus"]["claims"] == {GIVEN: ["Gus"]}
    weak = client.patch("/console/api/users/gus", headers=basic(), json={"admin": True, "password": "pw"})
    assert weak.status_code == 400 and "at least 12" in weak.json()["errors"]["password"]
    promoted = client.patch("/console/api/users/gus", headers=basic(), json={"admin": True, "password": STRONG})
    assert promoted.status_code == 200 and promoted.json()["admin"] is True
    assert client.patch("/console/api/users/nobody", headers=basic(), json={"disabled": True}).status_code == 404
    assert client.delete(f"/console/api/users/{ADMIN}", headers=basic()).status_code == 400
    entries = client.get("/console/api/audit?action=admin.add&actor=root", headers=basic()).json()
    assert [(e["subject"], e["outcome"]) for e in entries] == [("gus", "ok"), ("gus", "refused")]


def test_a_cli_change_shows_in_the_audit_page(client: TestClient, admin: str, console_home: Path) -> None:
    result = CliRunner().invoke(main, ["--home", str(console_home), "user", "add", "hal", "--password", "pw",
                                       "--claim", "givenname=Hal"])
    assert result.exit_code == 0, result.output
    page = client.get("/console/audit?event=user.*").text
    assert f"<td>user.add</td><td>cli:{getpass.getuser()}</td><td>ok</td><td>hal</td>" in page
    assert "created: name=hal" in page
    assert client.get("/console/audit?since=yesterday").status_code == 400


def test_accessibility_of_the_pages_with_results(client: TestClient, admin: str, runtime: Runtime) -> None:
    from a11y import check_page  # type: ignore[import-not-found]

    _token(runtime, "_t3")
    check_page(client.get(f"/console/users/{ADMIN}").text, "administrator's user page")
    check_page(client.get("/console/tokens/_t3").text, "token detail")
    check_page(client.get("/console/audit").text, "audit with entries")
    for claims in ("givenname\nupn?", "upn"):
        check_page(client.post("/console/explain", data={"csrf": admin, "user": "alice", "rp": DEMO_RP_ENDPOINT,
                                                         "claims": claims}).text, f"explain {claims!r}")
    check_page(client.post("/console/users/alice", data={"csrf": admin, "action": "promote",
                                                         "password": "x"}).text, "refused promotion")
