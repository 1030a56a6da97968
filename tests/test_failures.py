"""Nothing silent: every kind of bad input and local fault gets its exit code and one line that says what to do,
and the previous warehouse (and its publication) stays exactly as it was. Then the projects that moved or were
copied keep loading into their own files.

Each case runs `b24wh` in a copy of one built project folder (`data/warehouse.duckdb`, its dlt state and its
publication), from inside that folder, as a user would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import main
from tests.conftest import free_port, portal_options
from warehouse.files import writer_lock

ROOT = Path(__file__).resolve().parents[1]
WAREHOUSE = Path("data") / "warehouse.duckdb"


@pytest.fixture(scope="module")
def portal() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(**portal_options(deals=150, seed=41)) as sim:
        yield sim


@pytest.fixture(scope="module")
def built(portal: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with a refreshed warehouse and a publication."""
    project = tmp_path_factory.mktemp("built") / "team"
    project.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BITRIX24_WEBHOOK_URL": portal.webhook_url}
    done = subprocess.run([sys.executable, "-m", "dagster_project", "refresh"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return project


def fingerprint(project: Path) -> tuple[Any, ...]:
    """What a reader of the warehouse and of its publication would notice changing."""
    warehouse = project / WAREHOUSE
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute("SELECT (SELECT count(*) FROM raw.deals), (SELECT count(*) FROM core.fact_deal), "
                             "(SELECT count(*) FROM marts.funnel), (SELECT max(finished_at) FROM meta.builds)"
                             ).fetchone()
    latest = (project / "data" / "published" / "LATEST").read_text()
    return tables, latest


def leftovers(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "data" / "published").iterdir() if ".partial" in p.name)


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    code: int
    says: str                                            # a fragment of the one line
    env: dict[str, str] | None = None
    prepare: Callable[[Path, SimulatorProcess], Any] | None = None
    offline: bool = False                                # refused before any request reaches the portal


def _write(relative: str, text: str) -> Callable[[Path, SimulatorProcess], None]:
    return lambda project, _: (project / relative).write_text(text, encoding="utf-8")


def _settings_with_plans(text: str) -> Callable[[Path, SimulatorProcess], None]:
    def prepare(project: Path, _: SimulatorProcess) -> None:
        (project / "b24wh.toml").write_text('[plans]\nplans_file = "plans.csv"\n', encoding="utf-8")
        (project / "plans.csv").write_text(text, encoding="utf-8")
    return prepare


def _corrupt(project: Path, _: SimulatorProcess) -> None:
    warehouse = project / WAREHOUSE
    warehouse.write_bytes(b"\0" * 4096 + warehouse.read_bytes()[4096:])


def _directory(project: Path, _: SimulatorProcess) -> None:
    warehouse = project / WAREHOUSE
    warehouse.rename(project / "data" / "old.duckdb")
    warehouse.mkdir()


def _hook(portal: SimulatorProcess, secret: str) -> str:
    return f"{portal.webhook_url.rstrip('/').rsplit('/', 1)[0]}/{secret}/"


CASES = [
    Case("wrong webhook secret", ["refresh"], 1, "where they are set: BITRIX24_WEBHOOK_URL or ",
         prepare=lambda p, s: os.environ.__setitem__("BITRIX24_WEBHOOK_URL", _hook(s, "wrongsecret"))),
    Case("malformed webhook URL", ["refresh"], 1, "is malformed", env={"BITRIX24_WEBHOOK_URL": "portal.bitrix24.ru"}),
    Case("no webhook URL", ["refresh"], 1, "BITRIX24_WEBHOOK_URL", env={"BITRIX24_WEBHOOK_URL": ""}),
    Case("nothing listens at the portal URL", ["refresh"], 1, "is unreachable or failing",
         env={"BITRIX24_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/rest/1/abc/"}),
    Case("unknown time zone", ["refresh"], 1, "unknown portal time zone 'Mars/Base'",
         env={"B24WH_TIMEZONE": "Mars/Base"}, offline=True),
    Case("time zone the portal disagrees with", ["refresh"], 1, "set B24WH_TIMEZONE to the portal's zone",
         env={"B24WH_TIMEZONE": "America/New_York"}),
    Case("malformed settings file", ["refresh"], 1, "b24wh.toml: not valid TOML",
         prepare=_write("b24wh.toml", "[funnel\n"), offline=True),
    Case("unknown settings key", ["refresh"], 1, "unknown key funnel.gap",
         prepare=_write("b24wh.toml", "[funnel]\ngap = 1\n"), offline=True),
    Case("plans file missing", ["refresh"], 1, "plans.csv does not exist",
         prepare=lambda p, s: (p / "b24wh.toml").write_text('[plans]\nplans_file = "plans.csv"\n'), offline=True),
    Case("plan too large for the warehouse", ["refresh"], 1, "plans.csv line 2: plan '1e400' is too large",
         prepare=_settings_with_plans("scope,id,month,metric,plan\nmanager,1,2026-10,calls,1e400\n"), offline=True),
    Case("plan not a number", ["refresh"], 1, "plans.csv line 3: plan 'many' is not a number",
         prepare=_settings_with_plans("scope,id,month,metric,plan\nmanager,1,2026-10,calls,5\n"
                                      "manager,1,2026-11,calls,many\n"), offline=True),
    Case("publication URL of no known database", ["refresh"], 1, "B24WH_PUBLISH_URL is not a usable database URL",
         env={"B24WH_PUBLISH_URL": "nosuchdb://user:pw@host/db"}, offline=True),
    Case("backfill window reversed", ["backfill", "--start", "2026-06-01", "--end", "2026-03-01"], 2,
         "--start 2026-06-01 must be before --end 2026-03-01", offline=True),
    Case("backfill date in the portal's own format", ["backfill", "--start", "01.03.2026", "--end", "2026-04-01"], 2,
         "--start '01.03.2026' is not a date", offline=True),
    Case("backfill date that is no date", ["backfill", "--start", "banana", "--end", "2026-04-01"], 2,
         "--start 'banana' is not a date", offline=True),
    Case("backfill window in the future", ["backfill", "--start", "2099-01-01", "--end", "2099-02-01"], 2,
         "is in the future", offline=True),
    Case("too little memory for the build", ["refresh"], 1, "ran out of memory within memory_limit = '1MB'",
         prepare=_write("b24wh.toml", '[warehouse]\nmemory_limit = "1MB"\n')),
    Case("warehouse path is a directory", ["refresh"], 1, "is a directory, not a file", prepare=_directory,
         offline=True),
    Case("corrupt warehouse file", ["refresh"], 1, "is damaged: move it away", prepare=_corrupt, offline=True),
    Case("publish with an unknown database URL", ["publish"], 1, "B24WH_PUBLISH_URL is not a usable database URL",
         env={"B24WH_PUBLISH_URL": "nosuchdb://x"}),
    Case("publish a warehouse that was never built", ["publish", "--warehouse", "data/other.duckdb"], 1,
         "build the warehouse first"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_line_and_leaves_the_warehouse_as_it_was(
        case: Case, built: Path, portal: SimulatorProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "team"
    shutil.copytree(built, project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    for name, value in (case.env or {}).items():
        monkeypatch.setenv(name, value)
    before = fingerprint(project)
    if case.prepare is not None:   # monkeypatch restores the environment it may change
        case.prepare(project, portal)
    portal.control.reset_stats()
    started = time.monotonic()
    code = main(case.args)
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert (code, len(lines)) == (case.code, 1), out.err
    assert lines[0].startswith(f"b24wh {case.args[0]}: ") and case.says in lines[0], lines[0]
    assert portal.webhook_url.rsplit("/", 2)[1] not in out.err + out.out, "the secret never shows"
    assert time.monotonic() - started < 30, "a refused run fails fast"
    if case.prepare not in (_corrupt, _directory):
        assert fingerprint(project) == before
    assert leftovers(project) == []
    if case.offline:
        assert sum(portal.control.requests_served().values()) == 0, "refused before any request"


def test_a_second_refresh_is_refused_while_one_holds_the_warehouse(
        built: Path, portal: SimulatorProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "team"
    shutil.copytree(built, project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    before = fingerprint(project)
    with writer_lock(project / WAREHOUSE):   # as a running refresh holds it
        assert main(["refresh"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"is locked: another refresh is writing it (PID {os.getpid()})" in lines[0]
    assert "fuser" in lines[0]
    assert fingerprint(project) == before


def _read_only(target: Path) -> list[str]:
    """A command prefix under which `target` cannot be written. Permission bits do not stop root, so as root
    the command runs in its own mount namespace with `target` bind-mounted read-only (a read-only file
    system, as a backup mount or a locked-down volume is); as anyone else, the bits are cleared."""
    if os.geteuid() != 0:
        target.chmod(0o555 if target.is_dir() else 0o444)
        return []
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "--map-root-user", "--mount", "sh", "-c", script, str(target)]


@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_read_only_warehouse_is_refused_in_one_line(what: str, built: Path, portal: SimulatorProcess,
                                                      tmp_path: Path) -> None:
    project = tmp_path / "team"
    shutil.copytree(built, project)
    before = fingerprint(project)
    target = project / "data" if what == "folder" else project / WAREHOUSE
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BITRIX24_WEBHOOK_URL": portal.webhook_url}
    try:
        done = subprocess.run([*_read_only(target), sys.executable, "-m", "dagster_project", "refresh"],
                              cwd=project, env=env, capture_output=True, text=True, timeout=300)
    finally:
        target.chmod(0o755 if target.is_dir() else 0o644)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
    assert "read-only" in lines[0] and str(project / "data") in lines[0], lines[0]
    assert fingerprint(project) == before


def _refresh(project: Path, portal: SimulatorProcess) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BITRIX24_WEBHOOK_URL": portal.webhook_url}
    done = subprocess.run([sys.executable, "-m", "dagster_project", "refresh"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_copied_or_moved_project_loads_into_its_own_warehouse(
        built: Path, portal: SimulatorProcess, tmp_path: Path) -> None:
    original = tmp_path / "team"
    shutil.copytree(built, original)
    copy = tmp_path / "new-server" / "team"
    shutil.copytree(original, copy)
    original_digest = _digest(original / WAREHOUSE)
    portal.control.apply_changes(advance=600, new_deals=4)
    deals = portal.control.truth()["rows"]["deals"]
    done = _refresh(copy, portal)
    assert str(copy / WAREHOUSE) in done.stdout
    assert fingerprint(copy)[0][1] == deals, "the new deals reached the copy"
    assert _digest(original / WAREHOUSE) == original_digest, "the original folder's warehouse was not touched"
    moved = tmp_path / "moved" / "team"
    moved.parent.mkdir()
    shutil.move(original, moved)
    portal.control.apply_changes(advance=600, new_deals=2)
    sub = moved / "reports" / "2026"
    sub.mkdir(parents=True)
    done = _refresh(sub, portal)     # from a folder inside the moved project
    assert fingerprint(moved)[0][1] == portal.control.truth()["rows"]["deals"], "the moved project loads"
    assert str(moved / WAREHOUSE) in done.stdout and not (sub / "data").exists(), "no stray warehouse"
