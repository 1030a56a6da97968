"""How values travel on the wire: PHP bracket parameters, portal-time datetimes, Bitrix24 value typing.

Datetimes are stored as unix seconds and rendered in the portal's time zone with its offset
(`2024-08-30T14:29:00+02:00`), the way real portals answer. Date fields (BEGINDATE, CLOSEDATE, ...)
are stored as the unix time of local midnight and rendered as live portals write them: midnight UTC of
that date, in the portal's offset (20 March on a -05:00 portal is `2026-03-19T19:00:00-05:00`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import unquote_plus

import orjson

_KEY_RE = re.compile(r"^([^\[\]=]+)((?:\[[^\]]*\])*)=(.*)$", re.DOTALL)
_BRACKETS_RE = re.compile(r"\[([^\]]*)\]")


def parse_php_query(query: str) -> dict[str, Any]:
    """Parse `filter[>=DATE_MODIFY]=x&select[]=ID&order[ID]=ASC` into nested dicts and lists.

    Keys are split from values after the last closing bracket, so operators such as `>=` or `=%`
    inside brackets survive even when a client did not percent-encode them. `+` is a space, as in PHP.
    """
    result = _Node()
    for part in query.split("&"):
        if not part:
            continue
        match = _KEY_RE.match(part)
        if match is None:
            key, value = unquote_plus(part), ""
        else:
            key = unquote_plus(match.group(1)) + unquote_plus(match.group(2))
            value = unquote_plus(match.group(3))
        name, _, rest = key.partition("[")
        path = _BRACKETS_RE.findall("[" + rest) if rest else []
        _assign(result, [name, *path], value)
    return _listify(result)


class _Node(dict[str, Any]):
    """A parsed bracket level that knows the index PHP gives its next `[]`: one past its largest integer key."""

    next_index = 0


def _assign(target: _Node, path: list[str], value: str) -> None:
    node = target
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if key == "":
            key = str(node.next_index)
        if key.isdigit():
            node.next_index = max(node.next_index, int(key) + 1)
        if last:
            node[key] = value
        else:
            child = node.get(key)
            if not isinstance(child, _Node):
                child = _Node()
                node[key] = child
            node = child


def _listify(node: Any) -> Any:
    """PHP arrays with keys 0..n-1 become lists, like json_encode would send them."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        keys = sorted(int(k) for k in converted)
        if keys == list(range(len(keys))):
            return [converted[str(k)] for k in keys]
    return converted


def lookup(params: dict[str, Any], name: str, default: Any = None) -> Any:
    """Top-level parameter names are case-insensitive on real portals (`filter` and `FILTER`)."""
    if name in params:
        return params[name]
    lowered = name.lower()
    for key, value in params.items():
        if key.lower() == lowered:
            return value
    return default


# --- time -----------------------------------------------------------------------------------------

def format_datetime(ts: int | float | None, tz: tzinfo) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), tz).isoformat()


def format_date(ts: int | None, tz: tzinfo) -> str | None:
    """Date fields come back as midnight UTC of the date, written in the portal's offset (recorded on live
    portals: `2024-03-20T03:00:00+03:00` is 20 March)."""
    if ts is None:
        return None
    day = datetime.fromtimestamp(int(ts), tz).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC).astimezone(tz).isoformat()


_PORTAL_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y")


def parse_datetime(value: Any, tz: tzinfo) -> int | None:
    """Filter values: ISO datetimes with any offset, plain dates, or the portal's own format.

    Values without an offset are portal-local. Unparsable values return None (they match nothing,
    as `user.get` documents).
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for fmt in _PORTAL_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return int(parsed.timestamp())




def time_block(start: float, finish: float, tz: tzinfo, operating: float | None,
               reset_at: int | None, processing: float | None = None) -> dict[str, Any]:
    """The `time` object every response carries; `operating*` only where the limiter is on."""
    block: dict[str, Any] = {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": processing if processing is not None else finish - start,
        "date_start": datetime.fromtimestamp(start, tz).replace(microsecond=0).isoformat(),
        "date_finish": datetime.fromtimestamp(finish, tz).replace(microsecond=0).isoformat(),
    }
    if operating is not None:
        block["operating_reset_at"] = reset_at
        block["operating"] = operating
    return block




def dumps(obj: Any) -> bytes:
    """PHP's json_encode: compact, empty arrays stay `[]`, unicode unescaped (UTF-8)."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
