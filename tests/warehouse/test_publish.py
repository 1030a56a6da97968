"""Publishing for BI tools: readers in other processes query the published warehouse while refreshes
publish, and never see an error or a mix of two versions; a failed publication leaves the previous one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import refresh
from tests.conftest import portal_options
from tests.postgres import postgres_server
from warehouse import publish as publish_module
from warehouse.publish import PUBLISHED, PublishError, publish, published_versions
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
print(json.dumps({{"reads": reads, "errors": errors[:5], "bad": bad, "versions": len(versions)}}))
"""

POSTGRES_READER = f"""
import json, os, sys, psycopg
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
print(json.dumps({{"reads": reads, "errors": errors[:5], "bad": bad, "versions": len(counts)}}))
"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


class Reader:
    """A process that queries the published warehouse in a tight loop until told to stop."""

    def __init__(self, script: str, target: str, folder: Path) -> None:
        self.stop = folder / f"stop-{time.monotonic_ns()}"
        self.process = subprocess.Popen([sys.executable, "-c", script, target, str(self.stop)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> dict[str, Any]:
        self.stop.touch()
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err[-2000:]
        return json.loads(out.strip().splitlines()[-1])


def refreshes_while_reading(tmp_path: Path, settings: Settings, reader_script: str, target: str,
                            sql_url: str | None = None) -> dict[str, Any]:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=250, seed=83)) as portal:
        refresh(warehouse, credentials=portal.webhook_url, settings=settings)
        if sql_url:
            publish(warehouse, settings, sql_url=sql_url)
        reader = Reader(reader_script, target, tmp_path)
        for _ in range(4):      # each refresh adds contacts and deals, so each publication differs
            portal.control.apply_changes(advance=3600, new_contacts=5, new_deals=3, stage_moves=3, new_activities=5)
            refresh(warehouse, credentials=portal.webhook_url, settings=settings)
            if sql_url:
                publish(warehouse, Settings(publish_duckdb=False, publish_parquet=False), sql_url=sql_url)
        time.sleep(0.5)
        return reader.result()


def test_duckdb_readers_never_fail_nor_see_a_mix_while_refreshes_publish(tmp_path: Path) -> None:
    settings = Settings(publish_directory=tmp_path / "published", publish_parquet=False, keep_versions=2)
    seen = refreshes_while_reading(tmp_path, settings, DUCKDB_READER, str(tmp_path / "published" / "warehouse.duckdb"))
    assert seen["errors"] == [] and seen["bad"] == 0
    assert seen["reads"] > 50 and seen["versions"] >= 2, seen
    print("DuckDB reader:", seen)
    assert len(published_versions(tmp_path / "published")) == 2, "old versions are removed"


def test_postgres_readers_never_fail_nor_see_a_mix_while_refreshes_publish(tmp_path: Path, postgres: str) -> None:
    settings = Settings(publish_directory=tmp_path / "published", publish_parquet=False)
    libpq = sa.engine.make_url(postgres).set(drivername="postgresql").render_as_string(hide_password=False)
    seen = refreshes_while_reading(tmp_path, settings, POSTGRES_READER, libpq, sql_url=postgres)
    print("PostgreSQL reader:", seen)
    assert seen["errors"] == [] and seen["bad"] == 0
    assert seen["reads"] > 50 and seen["versions"] >= 2, seen


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    warehouse = tmp_path_factory.mktemp("publish") / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=200, seed=89)) as portal:
        refresh(warehouse, credentials=portal.webhook_url, settings=Settings(publish_duckdb=False,
                                                                             publish_parquet=False))
    return warehouse


def test_parquet_files_read_back_with_their_types(built: Path, tmp_path: Path) -> None:
    publish(built, Settings(publish_directory=tmp_path, publish_duckdb=False))
    deal = pq.read_table(tmp_path / "parquet" / "core" / "fact_deal.parquet")
    assert deal.schema.field("created_at").type == pa.timestamp("us")
    assert deal.schema.field("amount").type == pa.decimal128(18, 2)
    assert deal.schema.field("deal_id").type == pa.int64() and deal.schema.field("is_deleted").type == pa.bool_()
    day = pq.read_table(tmp_path / "parquet" / "core" / "dim_date.parquet")
    assert day.schema.field("date").type == pa.date32() and day.schema.field("date_key").type == pa.int32()
    plan = pq.read_table(tmp_path / "parquet" / "marts" / "plan_fact.parquet")
    assert plan.schema.field("period_month").type == pa.date32()
    with duckdb.connect(str(built), read_only=True) as con:
        for schema, table in PUBLISHED:
            rows = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
            assert pq.read_metadata(tmp_path / "parquet" / schema / f"{table}.parquet").num_rows == rows, table


def test_an_older_storage_version_is_written_when_asked(built: Path, tmp_path: Path) -> None:
    publish(built, Settings(publish_directory=tmp_path, publish_parquet=False, duckdb_storage_version="v1.4.0"))
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{tmp_path / 'warehouse.duckdb'}' AS published (READ_ONLY)")
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'published'").fetchone()[0]
        assert tags["storage_version"] == "v1.4.0+"
        assert con.execute("SELECT count(*) FROM published.marts.funnel").fetchone()[0] > 0


def test_a_publication_that_fails_midway_leaves_the_previous_one_readable(
        built: Path, tmp_path: Path, postgres: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(publish_directory=tmp_path)
    first = publish(built, settings, sql_url=postgres)
    real = publish_module._relation
    calls = {"n": 0}

    def fail_on_the_tenth_table(schema: str, table: str) -> str:
        calls["n"] += 1
        if calls["n"] == 10:
            raise OSError("No space left on device")
        return real(schema, table)

    monkeypatch.setattr(publish_module, "_relation", fail_on_the_tenth_table)
    for targets in ({"publish_parquet": False}, {"publish_duckdb": False}, {"publish_duckdb": False,
                                                                            "publish_parquet": False}):
        calls["n"] = 0
        with pytest.raises(PublishError, match="No space left on device"):
            publish(built, Settings(publish_directory=tmp_path, **targets), sql_url=postgres)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT version FROM meta.publication").fetchone()[0] == first.version
    assert published_versions(tmp_path) == [first.version]
    assert not list(tmp_path.glob(".*partial*")), "no staged file, no write-ahead log beside it"
    assert not (tmp_path / "parquet" / ".next").exists()
    killed = tmp_path / ".warehouse.20260101T000000000000Z.duckdb.partial"    # a killed publication's leftovers
    for leftover in (killed, killed.with_name(killed.name + ".wal")):
        leftover.write_bytes(b"\0" * 1024)
    publish(built, Settings(publish_directory=tmp_path, publish_parquet=False))
    assert not list(tmp_path.glob(".*partial*"))
    assert pq.read_metadata(tmp_path / "parquet" / "core" / "fact_deal.parquet").num_rows > 0
    engine = sa.create_engine(postgres)
    with engine.connect() as con:
        tables = {r[0] for r in con.execute(sa.text(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('core', 'marts')"))}
        assert tables == {f"{s}.{t}" for s, t in PUBLISHED}
        assert con.execute(sa.text("SELECT count(*) FROM core.fact_deal")).scalar() > 0
    engine.dispose()


def test_a_wrong_database_password_is_reported_without_it(built: Path, tmp_path: Path, postgres: str) -> None:
    url = sa.engine.make_url(postgres).set(username="nobody", password="s3cret-pw", port=1).render_as_string(
        hide_password=False)
    with pytest.raises(PublishError) as failure:
        publish(built, Settings(publish_directory=tmp_path, publish_duckdb=False, publish_parquet=False),
                sql_url=url)
    assert "s3cret-pw" not in str(failure.value) and "publishing to sql failed" in str(failure.value)
