"""The JSON columns' text (issued tokens' details, audit entries' detail, relying parties' claim lists).

orjson instead of the standard library: a token's details took about 10 µs of a token's CPU to encode with
``json.dumps``, a tenth of that with orjson. Both write standard JSON and read each other's: the text differs only
in spacing and in writing non-ASCII characters as themselves (UTF-8) rather than as ``\\u`` escapes, so rows written
before read back the same. As ``json.dumps`` does, keys that are not strings are written as strings, and a value
JSON cannot hold raises ``TypeError``; so does an integer beyond 64 bits, which ``json.dumps`` would write (none of
the columns holds one).
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def json_text(value: Any) -> str:
    """``value`` as JSON text (the engines' ``json_serializer``)."""
    return orjson.dumps(value, option=_OPTIONS).decode("utf-8")


def json_value(text: str | bytes) -> Any:
    """The value of JSON text (the engines' ``json_deserializer``)."""
    return orjson.loads(text)


#: What every engine is created with (``sts.store.database``, ``sts.store.postgres``).
ENGINE_OPTIONS: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": json_value}

__all__ = ["ENGINE_OPTIONS", "json_text", "json_value"]
