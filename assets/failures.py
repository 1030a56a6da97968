"""A failing step shows in the Dagster UI as the command line shows it: one line saying what happened and what
to do (a local file, the portal, a setting), never a driver's traceback."""
# No `from __future__ import annotations` here, as in the other asset modules.

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from dagster_project.cli import one_line


@contextmanager
def in_one_line(warehouse: Path) -> Iterator[None]:
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        raise dg.Failure(description=one_line(exc, warehouse), allow_retries=False) from None
