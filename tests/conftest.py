"""Shared fixtures: simulated portals run as real HTTP servers in their own processes."""

from __future__ import annotations

import functools
import inspect
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from b24wh_simulator.client import SimulatorProcess
from tests import system_packages

if TYPE_CHECKING:
    import dagster as dg

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLES = FIXTURES / "bitrix24-examples"   # the vendor's documented examples
RECORDED = FIXTURES / "bitrix24-real"       # responses recorded on live portals (they win where the two differ)
ANCHOR = "2026-11-02T18:00:00"


def pytest_configure(config: pytest.Config) -> None:
    """The suite's processes keep the bytecode they compile, even where PYTHONDONTWRITEBYTECODE is set (some
    machine images set it). The suite starts a few hundred Python processes (its workers, the simulators, `b24wh`
    commands, Dagster's), each importing the project's modules: without cached bytecode each compiled them from
    source again, and every worker rewrote every test module: about 6 % of the suite's CPU, measured. Set here,
    before pytest-xdist starts its workers, so that they and every process they start inherit it. The bytecode
    goes to the `__pycache__` folders git ignores."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False


def pytest_sessionstart(session: pytest.Session) -> None:
    """Chromium and PostgreSQL, which some tests drive, are installed when missing (tests/system_packages.py)."""
    system_packages.ensure()


# What starts another process: a simulated portal, a command, PostgreSQL, Chromium.
_PROCESSES = ("SimulatorProcess(", "subprocess.", "handmade_warehouse(", "postgres_server(", "sync_playwright(")


@functools.cache
def _source(function: Any) -> str | None:
    """The function's source, read once however many tests and fixtures lead to it (None: it has none)."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return None


def _starts_processes(function: Any, seen: set[Any] | None = None) -> bool:
    """Whether the function starts a process, itself or through a helper of the tests it calls."""
    seen = set() if seen is None else seen
    if function in seen:
        return False
    seen.add(function)
    source = _source(function)
    if source is None:
        return False
    if any(marker in source for marker in _PROCESSES):
        return True
    module = inspect.getmodule(function)
    helpers = (getattr(module, name, None) for name in getattr(getattr(function, "__code__", None), "co_names", ()))
    return any(_starts_processes(helper, seen) for helper in helpers
               if inspect.isfunction(helper) and helper.__module__.startswith("tests"))


# pytest-xdist hands its workers whole files (`--dist loadfile`), in collection order (`--no-loadscope-reorder`):
# the slowest files go first, so that none of them starts last while the other workers sit idle. Slowest first
# as measured on 2 cores (2026-12-02, sixth session: 21 to 96 s each under four workers); the files not listed
# follow in pytest's order.
SLOWEST_FIRST = ("pipelines/test_extract.py", "test_cli.py", "warehouse/test_publish.py", "test_portals.py",
                 "test_wall.py", "test_dagster.py", "warehouse/test_marts_incremental.py", "test_failures.py",
                 "pipelines/test_exactly_once.py", "warehouse/test_build.py", "test_events.py",
                 "warehouse/test_publish_readers.py", "test_configuration.py", "test_portals_dagster.py",
                 "warehouse/test_timezones.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts a process, itself or through a fixture, is an integration test; the others are the
    fast lane (`pytest -m "not integration"`). The slowest files are run first (SLOWEST_FIRST)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        fixtures = [d.func for defs in (info.name2fixturedefs.values() if info else ()) for d in defs]
        if any(_starts_processes(f) for f in [getattr(item, "function", None), *fixtures]):
            item.add_marker(pytest.mark.integration)
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.relative_to(Path(__file__).parent).as_posix(), len(rank)))


@pytest.fixture
def dagster_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance as `dagster dev` makes one from the project's `dagster_home/dagster.yaml` (its pools, its
    event log storage), in a folder of its own."""
    import dagster as dg  # here, not for every test module

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(Path(__file__).resolve().parents[1] / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def portal_options(**overrides: Any) -> dict[str, Any]:
    """A small deterministic portal with a frozen clock and limits out of the way."""
    options: dict[str, Any] = {"deals": 300, "seed": 11, "anchor": ANCHOR, "clock": "frozen",
                               "rate": 1000, "burst": 100000, "operating_limit": 0}
    options.update(overrides)
    return options


@pytest.fixture(scope="session", autouse=True)
def _simulator_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generated portals are cached for the session; parallel workers (pytest-xdist) share one cache."""
    base = tmp_path_factory.getbasetemp()
    os.environ.setdefault("B24SIM_CACHE", str((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)
                                              / "portal-cache"))


@pytest.fixture(scope="session")
def portal() -> Iterator[SimulatorProcess]:
    """A read-only portal shared by the tests that do not change data or settings."""
    with SimulatorProcess(**portal_options()) as sim:
        yield sim


@pytest.fixture(scope="module")
def _changeable_portal() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(**portal_options(deals=150, seed=5)) as sim:
        yield sim


@pytest.fixture
def fresh_portal(_changeable_portal: SimulatorProcess) -> SimulatorProcess:
    """A portal as generated, for tests that change data, limits or faults: one process per test file, reset
    before each test to its generated rows, clock, limits, costs, faults and counters."""
    _changeable_portal.control.reset()
    return _changeable_portal


class Rest:
    """A plain HTTP client of one webhook: the way an integration calls a portal."""

    def __init__(self, webhook_url: str) -> None:
        self.url = webhook_url
        self.session = requests.Session()

    def post(self, method: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.session.post(self.url + method, json=body or {}, timeout=60)

    def call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.post(method, body)
        assert response.status_code == 200, response.text
        return response.json()

    def all_rows(self, method: str, body: dict[str, Any] | None = None, id_key: str = "ID") -> list[dict[str, Any]]:
        """Every row by ID keyset paging (`start=-1`)."""
        rows: list[dict[str, Any]] = []
        last = 0
        while True:
            params = dict(body or {})
            params.update({"order": {id_key: "ASC"}, "filter": {**params.get("filter", {}), f">{id_key}": last},
                           "start": -1})
            result = self.call(method, params)["result"]
            page = result["items"] if isinstance(result, dict) else result
            rows += page
            if len(page) < 50:
                return rows
            last = int(page[-1][id_key])


@pytest.fixture(scope="session")
def rest(portal: SimulatorProcess) -> Rest:
    return Rest(portal.webhook_url)


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def recorded(name: str) -> Any:
    """The body (or list of bodies) a live portal answered, from `tests/fixtures/bitrix24-real`."""
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))["response"]
