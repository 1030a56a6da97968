"""Typing rows: Bitrix24's strings become ids, decimals, timestamps, dates and booleans.

A page of a flat entity (no nested lists) becomes one Arrow table (`typed_table`), which dlt writes to Parquet
as it is: no row-by-row normalisation, the costliest part of a large load. Entities with nested lists (phone
and e-mail multifields, user-field options) stay rows (`typed_row`), which dlt splits into child tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def to_int(value: Any) -> int | None:
    if _empty(value):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


def to_money(value: Any) -> Decimal | None:
    if _empty(value):
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None


def to_float(value: Any) -> float | None:
    if _empty(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def to_datetime(value: Any) -> datetime | None:
    if _empty(value) or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def to_date(value: Any) -> date | None:
    """Date-only fields (BEGINDATE, CLOSEDATE, BIRTHDATE, date custom fields) come as midnight UTC of the
    date, written in the portal's offset (`2026-03-19T19:00:00-05:00` is 20 March): the date is the UTC
    date of the value, never the local one, which is a day early west of UTC."""
    parsed = to_datetime(value)
    if parsed is not None:
        return parsed.astimezone(UTC).date() if parsed.tzinfo is not None else parsed.date()
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def to_bool(value: Any) -> bool | None:
    if _empty(value):
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().upper() in ("Y", "1", "TRUE")


def to_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False) if value else None
    return str(value)


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "id": to_int, "int": to_int, "money": to_money, "float": to_float, "datetime": to_datetime, "date": to_date,
    "yn": to_bool, "bool": to_bool, "str": to_str, "json": to_json,
}


def typed_row(row: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    """Converts the fields named in `types`; other fields (multifields, nested lists) pass through."""
    return {key: CONVERTERS[types[key]](value) if key in types else value for key, value in row.items()}


# The Arrow type of each kind, as dlt types the same column from rows (COLUMN_TYPES in the catalogue).
ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.int64(), "int": pa.int64(), "money": pa.decimal128(18, 2), "float": pa.float64(),
    "datetime": pa.timestamp("us", tz="UTC"), "date": pa.date32(), "yn": pa.bool_(), "bool": pa.bool_(),
    "str": pa.string(), "json": pa.string(),
}
_NAMING = NamingConvention()


def arrow_schema(types: dict[str, str], key: str) -> pa.Schema:
    """The table schema of an entity's typed fields, named as dlt names columns (snake_case); the primary
    `key` is never NULL."""
    return pa.schema([pa.field(_NAMING.normalize_identifier(name), ARROW_TYPES[kind], nullable=name != key)
                      for name, kind in types.items()])


def typed_table(rows: list[dict[str, Any]], types: dict[str, str], schema: pa.Schema) -> pa.Table:
    """A page as one Arrow table of the fields named in `types` (a field a row lacks is NULL)."""
    return pa.Table.from_arrays([typed_column([row.get(key) for row in rows], kind) for key, kind in types.items()],
                                schema=schema)


def typed_column(values: list[Any], kind: str) -> pa.Array:
    """A column of one kind as the converters above type it. The common shapes (all strings, or all the
    target's own type, with "" and None for empty) are parsed by Arrow in one call; anything Arrow does not
    parse exactly as the converter would (other formats, mixed types, extra precision) goes value by value."""
    target = ARROW_TYPES[kind]
    if kind in _ARROW_PARSED:
        try:
            column = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            column = None
        if column is not None and column.type in _ARROW_PARSED[kind]:
            try:
                return _parsed(column, kind, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
    return pa.array([CONVERTERS[kind](value) for value in values], type=target)


# Per kind, the inferred column types Arrow parses exactly as the kind's converter does.
_ARROW_PARSED: dict[str, tuple[pa.DataType, ...]] = {
    "id": (pa.string(), pa.int64(), pa.null()), "int": (pa.string(), pa.int64(), pa.null()),
    "money": (pa.string(), pa.null()), "datetime": (pa.string(), pa.null()), "date": (pa.string(), pa.null()),
    "yn": (pa.string(), pa.bool_(), pa.null()), "bool": (pa.string(), pa.bool_(), pa.null()),
    "str": (pa.string(), pa.null()),
}
_TRUE = pa.array(["Y", "1", "TRUE"])


def _parsed(column: pa.Array, kind: str, target: pa.DataType) -> pa.Array:
    if column.type != pa.string() or kind == "str":
        return column.cast(target)
    column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)   # "" is empty, as None
    if kind in ("yn", "bool"):
        truth = pc.is_in(pc.utf8_upper(pc.utf8_trim_whitespace(column)), value_set=_TRUE)
        return pc.if_else(pc.is_null(column), pa.scalar(None, pa.bool_()), truth)
    if kind == "date":   # the UTC date of the instant, as to_date reads it
        return column.cast(pa.timestamp("us", tz="UTC")).cast(target)
    return column.cast(target)
