"""PHP bracket parameters and portal-time values, as real clients send and real portals answer."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from b24wh_simulator import wire

TZ = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(("query", "expected"), [
    ("filter[>ID]=5&select[]=ID&select[]=TITLE&order[ID]=ASC&start=-1",
     {"filter": {">ID": "5"}, "select": ["ID", "TITLE"], "order": {"ID": "ASC"}, "start": "-1"}),
    # unencoded operators with `=` inside the brackets
    ("filter[>=DATE_MODIFY]=2024-01-01&filter[!=%TITLE]=%a", {"filter": {">=DATE_MODIFY": "2024-01-01",
                                                                       "!=%TITLE": "%a"}}),
    # fully percent-encoded keys, `+` as space, `%2B` as plus
    ("filter%5B%3E%3DDATE_CREATE%5D=2024-01-01T00%3A00%3A00%2B03%3A00&q=a+b",
     {"filter": {">=DATE_CREATE": "2024-01-01T00:00:00+03:00"}, "q": "a b"}),
    ("cmd[a]=crm.deal.list%3Fstart%3D0&halt=1", {"cmd": {"a": "crm.deal.list?start=0"}, "halt": "1"}),
    ("filter[@ID][]=1&filter[@ID][]=2", {"filter": {"@ID": ["1", "2"]}}),
    ("select[0]=ID&select[1]=NAME", {"select": ["ID", "NAME"]}),
    # as PHP numbers `[]`: one past the largest integer key so far, however it came
    ("a[]=x&a[5]=y&a[]=z&a[b]=w&a[]=v", {"a": {"0": "x", "5": "y", "6": "z", "b": "w", "7": "v"}}),
    ("cmd[d][filter][ID][]=1&cmd[d][filter][ID][]=2&cmd[e][]=3",
     {"cmd": {"d": {"filter": {"ID": ["1", "2"]}}, "e": ["3"]}}),
    ("flag", {"flag": ""}),
])
def test_php_bracket_parameters(query: str, expected: dict[str, object]) -> None:
    assert wire.parse_php_query(query) == expected


def test_top_level_names_are_case_insensitive() -> None:
    assert wire.lookup({"FILTER": {"ID": 1}}, "filter") == {"ID": 1}
    assert wire.lookup({}, "filter", "x") == "x"


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-08-30T14:29:00+02:00", "2024-08-30T15:29:00+03:00"),
    ("2024-08-30", "2024-08-30T00:00:00+03:00"),
    ("30.08.2024 14:29:00", "2024-08-30T14:29:00+03:00"),
    ("2024-08-30T11:29:00Z", "2024-08-30T14:29:00+03:00"),
])
def test_datetimes_parse_from_any_offset_and_render_in_portal_time(value: str, expected: str) -> None:
    assert wire.format_datetime(wire.parse_datetime(value, TZ), TZ) == expected


def test_unparsable_dates_match_nothing() -> None:
    assert wire.parse_datetime("yesterday", TZ) is None


def test_date_fields_render_as_midnight_utc_in_the_portals_offset() -> None:
    noon = wire.parse_datetime("2024-09-09T12:00:00+03:00", TZ)
    assert wire.format_date(noon, TZ) == "2024-09-09T03:00:00+03:00"     # as recorded on live portals
    west = ZoneInfo("America/Bogota")
    assert wire.format_date(wire.parse_datetime("2026-03-20T12:00:00-05:00", west), west) == "2026-03-19T19:00:00-05:00"
