"""Readers in other processes query the published warehouse (DuckDB and PostgreSQL) while refreshes publish,
and never see an error or a mix of two versions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import sqlalchemy as sa

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import refresh
from tests.conftest import portal_options
from tests.postgres import postgres_server
from tests.warehouse.published import rows, unlike_the_warehouse
from warehouse.publish import publish, published_versions
from warehouse.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

# One read, one statement: a core table's rows against a mart's total, and the publication's version.
CONSISTENCY = """
SELECT (SELECT count(*) FROM core.dim_contact WHERE NOT is_deleted),
       (SELECT sum(records_created) FROM marts.data_quality_summary WHERE entity_type = 'contact'),
       (SELECT count(*) FROM core.fact_deal WHERE status = 'open' AND NOT is_deleted)
         - (SELECT sum(open_deals) FROM marts.deals_without_activities_by_manager)"""

DUCKDB_READER = f"""
import json, sys, time, duckdb
path, stop = sys.argv[1], sys.argv[2]
reads, errors, bad, versions = 0, [], 0, set()
import os
while not os.path.exists(stop):
    try:
        with duckdb.connect(path, read_only=True) as con:
            contacts, total, open_gap = con.execute('''{CONSISTENCY}''').fetchone()
            versions.add(con.execute("SELECT version FROM meta.publication").fetchone()[0])
        reads += 1
        bad += (contacts != total) + (open_gap != 0)
    except Exception as exc:
        errors.append(repr(exc))
    time.sleep(0.1)   # a busy dashboard's pace (ten reads a second), not a spin: the refreshes need the cores
print(json.dumps({{"reads": reads, "errors": errors[:5], "bad": bad, "versions": len(versions)}}))
"""

POSTGRES_READER = f"""
import json, os, sys, time, psycopg
url, stop = sys.argv[1], sys.argv[2]
reads, errors, bad, counts = 0, [], 0, set()
with psycopg.connect(url, autocommit=True) as con:
    while not os.path.exists(stop):
        try:
            contacts, total, open_gap = con.execute('''{CONSISTENCY}''').fetchone()
            reads += 1
            bad += (contacts != total) + (open_gap != 0)
            counts.add(contacts)
        except Exception as exc:
            errors.append(repr(exc))
        time.sleep(0.1)
print(json.dumps({{"reads": reads, "errors": errors[:5], "bad": bad, "versions": len(counts)}}))
"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


class Reader:
    """A process that queries the published warehouse about ten times a second until told to stop."""

    def __init__(self, script: str, target: str, folder: Path) -> None:
        self.stop = folder / f"stop-{time.monotonic_ns()}"
        self.process = subprocess.Popen([sys.executable, "-c", script, target, str(self.stop)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> dict[str, Any]:
        self.stop.touch()
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err[-2000:]
        return json.loads(out.strip().splitlines()[-1])


def test_readers_of_duckdb_and_postgres_never_fail_nor_see_a_mix_while_refreshes_publish(
        tmp_path: Path, postgres: str) -> None:
    """One reader of the published DuckDB file and one of PostgreSQL, in processes of their own, through three
    refreshes with changes; each publication after the first is incremental, in both places."""
    settings = Settings(publish_directory=tmp_path / "published", publish_parquet=False, keep_versions=2)
    warehouse, published_file = tmp_path / "warehouse.duckdb", tmp_path / "published" / "warehouse.duckdb"
    libpq = sa.engine.make_url(postgres).set(drivername="postgresql").render_as_string(hide_password=False)
    with SimulatorProcess(**portal_options(deals=250, seed=83)) as portal:
        refresh(warehouse, credentials=portal.webhook_url, settings=settings)
        sql_only = Settings(publish_duckdb=False, publish_parquet=False)
        publish(warehouse, sql_only, sql_url=postgres)
        readers = {"DuckDB": Reader(DUCKDB_READER, str(published_file), tmp_path),
                   "PostgreSQL": Reader(POSTGRES_READER, libpq, tmp_path)}
        try:
            for _ in range(3):      # each refresh adds contacts and deals, so each publication differs
                portal.control.apply_changes(advance=3600, new_contacts=5, new_deals=3, stage_moves=3,
                                             new_activities=5, field_edits=5, deletions={"deal": 1, "contact": 1})
                refreshed = refresh(warehouse, credentials=portal.webhook_url, settings=settings)
                assert refreshed.published.modes == {"duckdb": "incremental"}
                published = publish(warehouse, sql_only, sql_url=postgres)
                assert published.modes == {"sql": "incremental"}
            time.sleep(0.5)
        finally:    # the readers stop however the refreshes ended
            for reader in readers.values():
                reader.stop.touch()
        seen = {name: reader.result() for name, reader in readers.items()}
    print("readers:", seen)
    for name, reader_saw in seen.items():
        assert reader_saw["errors"] == [] and reader_saw["bad"] == 0, name
        assert reader_saw["reads"] > 50 and reader_saw["versions"] >= 2, (name, reader_saw)
    assert len(published_versions(tmp_path / "published")) == 2, "old versions are removed"
    with duckdb.connect(str(published_file), read_only=True) as published_duckdb:
        assert unlike_the_warehouse(warehouse, lambda query: rows(published_duckdb, query)) == []
    with psycopg.connect(libpq) as published_postgres:
        assert unlike_the_warehouse(warehouse, lambda query: rows(published_postgres, query)) == []
