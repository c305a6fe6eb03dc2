"""Sidecars are read strictly: every fixture has one, and a typo or unknown expectation fails with the file name."""

from __future__ import annotations

from pathlib import Path

import pytest

from interop.sidecar import FixtureError, discover, load

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"
GOOD = """\
[source]
origin = "unit"
kind = "hand-written"
licence = "Apache-2.0"
provenance = "PROVENANCE.md"
about = "a test request"

[message]
role = "request"
wstrust = "1.3"
soap = "1.2"
operation = "issue"

[expect]
outcome = "success"
token_type = "saml20"
"""


def _fixture(tmp_path: Path, sidecar: str, name: str = "x.xml") -> Path:
    (tmp_path / "PROVENANCE.md").write_text("unit test\n")
    path = tmp_path / name
    path.write_text("<x/>")
    (tmp_path / (name.rsplit(".", 1)[0] + ".toml")).write_text(sidecar)
    return path


def test_every_recorded_fixture_has_a_valid_sidecar() -> None:
    fixtures = list(discover(RECORDED))
    roles = {f.message.role for f in fixtures}
    assert len(fixtures) >= 44
    assert {"request", "response", "mex", "wsdl", "token"} <= roles
    assert all(f.source.licence and f.source.about for f in fixtures)


def test_a_good_sidecar_loads(tmp_path: Path) -> None:
    fixture = load(_fixture(tmp_path, GOOD), tmp_path)
    assert fixture.message.operation == "issue"
    assert fixture.expect.token_type == "saml20"
    assert fixture.replay.path == "/services/sts"


def test_template_names_keep_their_inner_dot(tmp_path: Path) -> None:
    _fixture(tmp_path, GOOD, "adal.TEMPLATE.xml")
    (fixture,) = discover(tmp_path)
    assert fixture.name == "adal.TEMPLATE.xml"


@pytest.mark.parametrize(("change", "message"), [
    (("[expect]", "[expect]\ncolour = \"blue\""), "unknown key 'colour'"),
    (('outcome = "success"', 'outcome = "maybe"'), "outcome = 'maybe': not one of fault, success"),
    (('outcome = "success"', 'outcome = "fault"'), "fault is required"),
    (('role = "request"', 'role = "telegram"'), "role = 'telegram'"),
    (("[expect]", "[compare]\nwhy = \"x\"\n[expect]"), "takes no [compare] table"),
    (("[expect]", "[expect]\nclaims = 3"), "claims = 3: expected list"),
    (("[expect]", "[surprise]\n[expect]"), "unknown key 'surprise'"),
    (('provenance = "PROVENANCE.md"', 'provenance = "MISSING.md"'), "MISSING.md not found"),
    (('about = "a test request"\n', ""), "about is required"),
])
def test_a_broken_sidecar_fails_loudly_with_its_file_name(tmp_path: Path, change: tuple[str, str],
                                                           message: str) -> None:
    path = _fixture(tmp_path, GOOD.replace(*change))
    with pytest.raises(FixtureError) as err:
        load(path, tmp_path)
    assert str(tmp_path / "x.toml") in str(err.value)
    assert message in str(err.value)


def test_unknown_expectation_values_in_lists_fail(tmp_path: Path) -> None:
    path = _fixture(tmp_path, GOOD + 'references = ["attached", "sideways"]\n')
    with pytest.raises(FixtureError, match="'sideways' is not a known value"):
        load(path, tmp_path)


def test_a_fixture_without_sidecar_fails(tmp_path: Path) -> None:
    _fixture(tmp_path, GOOD)
    (tmp_path / "orphan.xml").write_text("<x/>")
    with pytest.raises(FixtureError, match=r"orphan.xml: no sidecar"):
        list(discover(tmp_path))


def test_a_sidecar_without_fixture_fails(tmp_path: Path) -> None:
    _fixture(tmp_path, GOOD)
    (tmp_path / "lonely.toml").write_text(GOOD)
    with pytest.raises(FixtureError, match=r"lonely.toml: a sidecar without its message"):
        list(discover(tmp_path))


def test_not_toml_fails(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match=r"x.toml"):
        load(_fixture(tmp_path, "[source\norigin ="), tmp_path)


def test_no_fixtures_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="no fixtures"):
        list(discover(tmp_path))
    with pytest.raises(FixtureError, match="no such fixtures folder"):
        list(discover(tmp_path / "absent"))


def test_a_fixture_that_is_not_xml_fails_with_its_name(tmp_path: Path) -> None:
    path = _fixture(tmp_path, GOOD)
    path.write_text("<wst:RequestSecurityToken>unclosed")
    with pytest.raises(FixtureError, match=r"x.xml: not usable XML: malformed XML"):
        load(path, tmp_path)



def test_a_fixture_with_a_dtd_is_refused(tmp_path: Path) -> None:
    path = _fixture(tmp_path, GOOD)
    path.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    with pytest.raises(FixtureError, match=r"x.xml: not usable XML: document type declarations are refused"):
        load(path, tmp_path)
