"""What a refresh prints while it works: one line per phase.

    extract  345,120 rows from the portal in 21.4 s (16,127 rows/s)
    load     345,120 rows into the warehouse in 15.9 s
    model    full build in 3.1 s (first build)
    marts    11 marts in 2.2 s
    publish  duckdb, parquet in 1.6 s

In a terminal the phase under way is one line rewritten in place; during extraction it shows the rows so far,
the rate and about how long is left (the walkers' estimate of what they have still to read, which firms up
as the id ranges are probed). In a log (not a terminal) each phase writes its line once, when it ends.
`verbose` shows dlt's own progress as well: rows and rates per table every few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

import dlt
from dlt.common.runtime.collector import Collector

REDRAW_SECONDS = 0.2


class Progress(Collector):
    """dlt's collector for the extract and load phases, and the line of each later step (`finished`)."""

    def __init__(self, out: TextIO | None, *, verbose: bool = False, live: bool | None = None) -> None:
        self.out = out      # None: silent (the `--every` loop prints one line per turn of its own)
        self.verbose = verbose
        self.live = out is not None and (out.isatty() if live is None else live)
        self.phase: str | None = None
        self.started = 0.0
        self.rows = 0
        self.expected: int | None = None
        self.counters: dict[str, tuple[int, int | None]] = {}   # dlt's Files and Jobs: done, total
        self.drawn = 0.0

    def collector(self) -> Collector:
        """What dlt reports to: this display, or with `verbose` dlt's own (bars in a terminal, else a log)."""
        if not self.verbose:
            return self
        return dlt.progress.tqdm() if self.live else dlt.progress.log(log_period=5.0, dump_system_stats=False)

    # --- dlt's collector interface ---------------------------------------------------------------

    def _start(self, step: str) -> None:
        phase = "extract" if step.startswith("Extract") else "load"
        if phase != self.phase:      # the pipeline state's own extract step stays in the extract phase
            self._end()
            self.phase, self.started, self.counters = phase, time.monotonic(), {}

    def update(self, name: str, inc: int = 1, total: int | None = None, inc_total: int | None = None,
               message: str | None = None, label: str | None = None) -> None:
        if label:
            return
        if name == "Rows":
            self.rows += inc
            if total is not None:
                self.expected = total
            elif inc_total and self.expected is not None:
                self.expected += inc_total
        elif name in ("Files", "Jobs"):
            done, known = self.counters.get(name, (0, None))
            if inc_total:
                known = (known or 0) + inc_total
            self.counters[name] = (done + inc, total if total is not None else known)
        self._draw()

    def _stop(self) -> None:
        pass

    # --- the steps after the load ----------------------------------------------------------------

    def finished(self, step: str, result: Any) -> None:
        """A step of the refresh graph is done: the load's line, or the step's own."""
        self._end()
        if step in STEP_LINES:
            label, describe = STEP_LINES[step]
            self._write(f"{label:<8} {describe(result)}\n")

    # --- drawing ---------------------------------------------------------------------------------

    def _line(self) -> str:
        seconds = time.monotonic() - self.started
        rate = self.rows / seconds if seconds > 0 else 0.0
        if self.phase == "extract":
            text = f"extract  {self.rows:,} rows"
            if self.expected and self.expected > self.rows:
                text += f" of about {self.expected:,}"
            text += f", {rate:,.0f} rows/s"
            if rate > 0 and self.expected and self.expected > self.rows:
                text += f", about {_duration((self.expected - self.rows) / rate)} left"
            return text
        parts = [f"{name.lower()} {done}/{total}" if total else f"{name.lower()} {done}"
                 for name, (done, total) in self.counters.items()]
        return "load     " + (", ".join(parts) if parts else "starting")

    def _draw(self) -> None:
        if not self.live or self.verbose or self.phase is None:
            return
        now = time.monotonic()
        if now - self.drawn >= REDRAW_SECONDS:
            self.drawn = now
            self._write(f"\r\x1b[K{self._line()}")

    def _end(self) -> None:
        """The phase under way is over: its final line."""
        if self.phase is None:
            return
        seconds = time.monotonic() - self.started
        if self.phase == "extract":
            rate = f" ({self.rows / seconds:,.0f} rows/s)" if seconds > 0 and self.rows else ""
            line = f"extract  {self.rows:,} rows from the portal in {seconds:.1f} s{rate}"
        else:
            line = f"load     {f'{self.rows:,} rows ' if self.rows else ''}into the warehouse in {seconds:.1f} s"
        self.phase = None
        self._write(("\r\x1b[K" if self.live and not self.verbose else "") + line + "\n")

    def _write(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text)
            self.out.flush()


# The line of each step after the load: its label and its result in a few words.
STEP_LINES: dict[str, tuple[str, Callable[[Any], str]]] = {
    "core": ("model", lambda built: f"{built.mode} build in {built.seconds:.1f} s ({built.reason})"),
    "marts": ("marts", lambda built: f"{len(built.counts)} marts in {built.seconds:.1f} s"),
    "publish": ("publish", lambda published: f"{', '.join(published.locations)} in "
                                             f"{sum(published.seconds.values()):.1f} s"),
}


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"
