"""What a refresh prints: one line per phase in a log, one line rewritten in place in a terminal."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from dagster_project import progress as progress_module
from dagster_project.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    return clock


def run_a_refresh(shown: Progress, clock: Clock) -> None:
    """The calls dlt and the refresh graph make: extract (with the source's Rows counter), the pipeline state's
    own extract, normalize and load, then the steps after the load."""
    dlt = shown.collector()
    with dlt("Extract bitrix24"):
        dlt.update("Resources", 0, 16)
        dlt.update("Rows", 5_000, total=20_000)
        clock.now += 1
        dlt.update("deals", 5_000)
        dlt.update("Rows", 5_000, inc_total=10_000)     # the estimate firms up: 30,000 in all
        clock.now += 1
        dlt.update("Rows", 20_000, inc_total=0)
        clock.now += 2
    with dlt("Extract bitrix24"):
        dlt.update("_dlt_pipeline_state", 1)
    with dlt("Normalize bitrix24 in 1.2"):
        dlt.update("Files", 0, 17)
        clock.now += 3
        dlt.update("Files", 17)
    with dlt("Load bitrix24 in 1.2"):
        dlt.update("Jobs", 0, inc_total=23)
        dlt.update("Jobs", 23)
        clock.now += 1
    shown.finished("extract", object())
    shown.finished("core", SimpleNamespace(mode="incremental", seconds=1.25, reason="3 tables touched"))
    shown.finished("marts", SimpleNamespace(counts=dict.fromkeys("abcdefghijk", 1), seconds=2.0))
    shown.finished("publish", SimpleNamespace(locations={"duckdb": "x", "parquet": "y"},
                                              seconds={"duckdb": 1.0, "parquet": 0.5}))


def test_a_log_gets_one_line_per_phase(clock: Clock) -> None:
    out = io.StringIO()
    run_a_refresh(Progress(out, live=False), clock)
    assert out.getvalue().splitlines() == [
        "extract  30,000 rows from the portal in 4.0 s (7,500 rows/s)",
        "load     30,000 rows into the warehouse in 4.0 s",
        "model    incremental build in 1.2 s (3 tables touched)",
        "marts    11 marts in 2.0 s",
        "publish  duckdb, parquet in 1.5 s",
    ]


def test_a_terminal_sees_the_rows_the_rate_and_the_time_left_on_one_line(clock: Clock) -> None:
    out = io.StringIO()
    shown = Progress(out, live=True)
    dlt = shown.collector()
    with dlt("Extract bitrix24"):
        clock.now += 2
        dlt.update("Rows", 10_000, total=30_000)
        assert out.getvalue() == "\r\x1b[Kextract  10,000 rows of about 30,000, 5,000 rows/s, about 4 s left"
        clock.now += 0.1
        dlt.update("Rows", 100)
        assert out.getvalue().count("\r") == 1, "redrawn at most five times a second"
        clock.now += 0.1
    shown.finished("extract", object())
    assert out.getvalue().split("\r\x1b[K")[-1] == "extract  10,100 rows from the portal in 2.2 s (4,591 rows/s)\n", \
        "the phase's last line replaces the live one"


def test_verbose_hands_dlt_its_own_display_and_silence_prints_nothing(clock: Clock) -> None:
    out = io.StringIO()
    verbose = Progress(out, verbose=True, live=False)
    assert verbose.collector() is not verbose
    silent = Progress(None)
    run_a_refresh(silent, clock)
    assert silent.collector() is silent
