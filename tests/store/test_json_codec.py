"""The JSON columns' codec (orjson): standard JSON both ways with the standard library, and the engines use it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sts.store.audit import AuditTrail
from sts.store.database import open_database
from sts.store.json_codec import json_text, json_value

VALUES = [
    {"claims": [{"uri": "urn:name", "values": ["ålice", "ß", "名前", "\U0001f600"]}], "n": 3, "f": 1.5,
     "none": None, "yes": True, "nested": {"a": [1, 2, {"b": []}]}},
    [],
    {},
    "text with \"quotes\", \\ backslashes, \n newlines and \u0001 controls",
    2**63 - 1,
]


@pytest.mark.parametrize("value", VALUES)
def test_what_it_writes_the_standard_library_reads_and_the_other_way(value: object) -> None:
    assert json.loads(json_text(value)) == value
    assert json_value(json.dumps(value)) == value  # rows written before the switch read back the same
    assert json_value(json_text(value)) == value


def test_keys_and_values_as_json_dumps_takes_them() -> None:
    assert json_value(json_text({1: "one", "two": (2, 2)})) == json.loads(json.dumps({1: "one", "two": (2, 2)}))
    with pytest.raises(TypeError):
        json_text({"a set": {1, 2}})  # as json.dumps: a value JSON cannot hold is refused, not guessed at
    with pytest.raises(TypeError):
        json_text(2**64)  # unlike json.dumps (no column holds one)


def test_the_database_writes_and_reads_its_json_columns_with_it(tmp_path: Path) -> None:
    path = tmp_path / "sts.db"
    database = open_database(f"sqlite:///{path}")
    trail = AuditTrail(database.engine)
    detail = {"remote": "192.0.2.1", "name": "ålice 名前"}
    trail.record("test.codec", actor="ålice", outcome="ok", detail=detail)
    with sqlite3.connect(path) as raw:
        (text,) = raw.execute("SELECT detail FROM audit_log WHERE event = 'test.codec'").fetchone()
        assert text == json_text(detail)  # compact, UTF-8 as itself: orjson's text, not json.dumps'
        raw.execute("INSERT INTO audit_log (at, event, detail) VALUES ('2026-01-01 00:00:00.000000', 'old', ?)",
                    (json.dumps(detail),))  # a row the standard library wrote
    (old,) = trail.search(event="old")
    (new,) = trail.search(event="test.codec")
    assert old.detail == new.detail == detail
