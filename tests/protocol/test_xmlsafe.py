
import pytest

from sts.errors import InvalidRequest
from sts.protocol.xmlsafe import id_map, parse
from paths import FIXTURES  # type: ignore[import-not-found]

HOSTILE = FIXTURES / "hostile"


@pytest.mark.parametrize("name", ["billion-laughs.xml", "xxe-file.xml", "xxe-network.xml"])
def test_doctype_documents_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest, match="document type"):
        parse((HOSTILE / name).read_bytes())


def test_doctype_in_utf16_is_refused() -> None:
    data = (HOSTILE / "xxe-file.xml").read_text().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(InvalidRequest):
        parse(data.encode("utf-16"))


def test_xinclude_is_not_processed() -> None:
    root = parse((HOSTILE / "xinclude.xml").read_bytes())
    assert b"root:" not in __import__("lxml.etree").etree.tostring(root)
    assert root.find(".//{http://www.w3.org/2001/XInclude}include") is not None


def test_depth_limit() -> None:
    with pytest.raises(InvalidRequest, match="nesting"):
        parse((HOSTILE / "deep-nesting.xml").read_bytes(), max_depth=64)


def test_size_limit() -> None:
    with pytest.raises(InvalidRequest, match="exceeds"):
        parse(b"<a>" + b" " * 2000 + b"</a>", max_bytes=1000)


def test_malformed() -> None:
    with pytest.raises(InvalidRequest, match="malformed"):
        parse(b"<a><b></a>")


def test_comments_dropped() -> None:
    root = parse(b"<a><!-- x --><b>t</b></a>")
    assert [child.tag for child in root] == ["b"]


def test_processing_instructions_refused() -> None:
    """Issue 12: refused, no longer dropped (tests/protocol/test_processing_instructions.py has the rest)."""
    with pytest.raises(InvalidRequest, match="processing instruction"):
        parse(b"<a><!-- x --><?pi y?><b>t</b></a>")


def test_duplicate_ids_are_an_error() -> None:
    root = parse(b'<a><b ID="x"/><c ID="x"/></a>')
    with pytest.raises(InvalidRequest, match="duplicate"):
        id_map(root)


def test_id_map_finds_every_id_kind() -> None:
    root = parse(
        b'<a xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">'
        b'<b wsu:Id="u"/><c ID="i"/><d AssertionID="s"/><e Id="p"/></a>'
    )
    assert set(id_map(root)) == {"u", "i", "s", "p"}
