"""Publishing for BI tools: the published files' types, older storage versions, a failed publication that leaves
the previous one, and database passwords kept out of errors (readers under refreshes: test_publish_readers.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import refresh
from pipelines.bitrix24.pipeline import make_pipeline
from tests.conftest import portal_options
from tests.postgres import postgres_server
from tests.warehouse.published import rows, unlike_the_warehouse
from warehouse import publish as publish_module
from warehouse.build import transaction
from warehouse.marts import build_marts
from warehouse.publish import PUBLISHED, PublishError, publish, published_versions
from warehouse.settings import Settings


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


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
    assert pq.read_metadata(tmp_path / "parquet" / "core" / "fact_deal.parquet").row_group(0).column(0).compression \
        == "ZSTD"
    plan = pq.read_table(tmp_path / "parquet" / "marts" / "plan_fact.parquet")
    assert plan.schema.field("period_month").type == pa.date32()
    with duckdb.connect(str(built), read_only=True) as con:
        for schema, table in PUBLISHED:
            rows = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
            assert pq.read_metadata(tmp_path / "parquet" / schema / f"{table}.parquet").num_rows == rows, table


def test_every_duckdb_a_refresh_opens_uses_the_settings_threads(built: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`[warehouse] threads` (and the share Dagster gives each portal of a run) reaches dlt's load, the builds'
    transaction and the publication's own DuckDB; 5 is neither the old fixed 2 nor DuckDB's default here."""
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(built.read_bytes())
    settings = Settings(threads=5, publish_directory=tmp_path / "published", publish_duckdb=False)
    threads = "SELECT current_setting('threads')"
    seen: dict[str, int] = {}
    with make_pipeline(copy, "log", threads=settings.threads).sql_client() as client:
        seen["load"] = client.execute_sql(threads)[0][0]
    with transaction(copy, settings) as con:
        seen["build"] = con.execute(threads).fetchone()[0]  # type: ignore[index]

    def publish_parquet(con: duckdb.DuckDBPyConnection, folder: Path) -> str:
        seen["publish"] = con.execute(threads).fetchone()[0]  # type: ignore[index]
        return original(con, folder)

    original = publish_module.publish_parquet
    monkeypatch.setattr(publish_module, "publish_parquet", publish_parquet)
    publish(copy, settings)
    assert seen == {"load": 5, "build": 5, "publish": 5}
    assert (tmp_path / "published" / "parquet" / "core" / "fact_deal.parquet").is_file()


def test_an_older_storage_version_is_written_when_asked(built: Path, tmp_path: Path) -> None:
    publish(built, Settings(publish_directory=tmp_path, publish_parquet=False, duckdb_storage_version="v1.4.0"))
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{tmp_path / 'warehouse.duckdb'}' AS published (READ_ONLY)")
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'published'").fetchone()[0]
        assert tags["storage_version"] == "v1.4.0+"
        assert con.execute("SELECT count(*) FROM published.marts.funnel").fetchone()[0] > 0


def forget_origins(folder: Path, url: str, prefix: str) -> None:
    """As publications written before they recorded their origin: the next ones are full."""
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        con.execute("UPDATE meta.publication SET build_token = NULL")
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text(f"UPDATE {prefix}meta.publication SET build_token = NULL"))
    engine.dispose()


@pytest.mark.parametrize("path", ["full", "incremental"])
def test_a_publication_that_fails_midway_leaves_the_previous_one_readable(
        built: Path, tmp_path: Path, postgres: str, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    prefix = f"{path}_"
    settings = Settings(publish_directory=tmp_path, publish_sql_schema_prefix=prefix)
    first = publish(built, settings, sql_url=postgres)
    if path == "incremental":
        assert build_marts(built).mode == "incremental"   # eleven marts rebuilt or patched: redone in place
    else:
        forget_origins(tmp_path, postgres, prefix)
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
            publish(built, Settings(publish_directory=tmp_path, publish_sql_schema_prefix=prefix, **targets),
                    sql_url=postgres)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT version FROM meta.publication").fetchone()[0] == first.version
    assert published_versions(tmp_path) == [first.version]
    assert not list(tmp_path.glob(".*partial*")), "no staged file, no write-ahead log beside it"
    assert not (tmp_path / "parquet" / ".next").exists()
    killed = tmp_path / ".warehouse.20260101T000000000000Z.duckdb.partial"    # a killed publication's leftovers
    for leftover in (killed, killed.with_name(killed.name + ".wal")):
        leftover.write_bytes(b"\0" * 1024)
    monkeypatch.setattr(publish_module, "_relation", real)
    again = publish(built, Settings(publish_directory=tmp_path, publish_parquet=False,
                                    publish_sql_schema_prefix=prefix), sql_url=postgres)
    assert again.modes == dict.fromkeys(("duckdb", "sql"), path)
    assert not list(tmp_path.glob(".*partial*"))
    assert pq.read_metadata(tmp_path / "parquet" / "core" / "fact_deal.parquet").num_rows > 0
    engine = sa.create_engine(postgres)
    with engine.connect() as con:
        tables = {r[0] for r in con.execute(sa.text(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            f"WHERE table_schema IN ('{prefix}core', '{prefix}marts')"))}
        assert tables == {f"{prefix}{s}.{t}" for s, t in PUBLISHED}
        assert con.execute(sa.text(f"SELECT count(*) FROM {prefix}core.fact_deal")).scalar() > 0
        assert con.execute(sa.text(f"SELECT version FROM {prefix}meta.publication")).scalar() == again.version
    engine.dispose()


HOLDER = """
import duckdb, sys, time
from pathlib import Path
with duckdb.connect(sys.argv[1], read_only=True) as con:
    print(con.execute("SELECT version FROM meta.publication").fetchone()[0], flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.05)
    print(con.execute("SELECT version FROM meta.publication").fetchone()[0], flush=True)
"""


def test_the_oldest_version_becomes_the_next_unless_a_reader_holds_it(fresh_portal: Any, tmp_path: Path) -> None:
    """With every kept version there, a publication patches the oldest file (the one it would remove) with the
    changes of every build since that file's version, instead of copying the newest file whole; a file a reader
    holds is left to the reader, and the newest is copied instead."""
    warehouse, folder = tmp_path / "warehouse.duckdb", tmp_path / "published"
    settings = Settings(publish_directory=folder, publish_parquet=False, keep_versions=2)

    def refreshed() -> tuple[str, int]:
        fresh_portal.control.apply_changes(advance=3600, new_contacts=3, new_deals=2, stage_moves=3, field_edits=3,
                                           new_activities=3, deletions={"deal": 1, "contact": 1})
        done = refresh(warehouse, credentials=fresh_portal.webhook_url, settings=settings)
        return done.published.version, (folder / f"warehouse.{done.published.version}.duckdb").stat().st_ino

    first = refreshed()
    second = refreshed()     # one version only: the newest is copied
    third = refreshed()      # the first file, patched with the changes of the second build and the third
    assert second[1] != first[1] and third[1] == first[1], "the oldest file was reused"
    assert published_versions(folder) == [second[0], third[0]]
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as published:
        assert published.execute("SELECT version FROM meta.publication").fetchone()[0] == third[0]
        assert unlike_the_warehouse(warehouse, lambda query: rows(published, query)) == []

    stop = tmp_path / "stop"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder / f"warehouse.{second[0]}.duckdb"),
                               str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == second[0]
    fourth = refreshed()     # the oldest is held: the newest is copied
    stop.touch()
    out, err = holder.communicate(timeout=30)
    assert holder.returncode == 0 and out.strip() == second[0], f"the reader's file is left alone: {out} {err}"
    assert fourth[1] not in (second[1], third[1]) and published_versions(folder) == [third[0], fourth[0]]
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as published:
        assert unlike_the_warehouse(warehouse, lambda query: rows(published, query)) == []


def test_a_copy_of_the_warehouse_gone_its_own_way_publishes_in_full(built: Path, tmp_path: Path, postgres: str) -> None:
    """A copied project publishing to the same database as the original: after as many builds as the
    original's, the copy's last build is still not the one the database reflects (each build draws a token of
    its own), so the database is written whole from the copy, and holds the copy's rows."""
    prefix = "copies_"
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(built.read_bytes())
    original = Settings(publish_directory=tmp_path / "original", publish_parquet=False,
                        publish_sql_schema_prefix=prefix)
    publish(built, original, sql_url=postgres)
    assert build_marts(built).mode == "incremental"
    assert publish(built, original, sql_url=postgres).modes == {"duckdb": "incremental", "sql": "incremental"}
    assert build_marts(copy, as_of=datetime(2030, 1, 1)).mode == "incremental"
    from_copy = publish(copy, Settings(publish_directory=tmp_path / "copy", publish_parquet=False,
                                       publish_sql_schema_prefix=prefix), sql_url=postgres)
    assert from_copy.modes == {"duckdb": "full", "sql": "full"}
    libpq = sa.engine.make_url(postgres).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as published:
        assert unlike_the_warehouse(copy, lambda query: rows(published, query), prefix) == []


def test_a_wrong_database_password_is_reported_without_it(built: Path, tmp_path: Path, postgres: str) -> None:
    url = sa.engine.make_url(postgres).set(username="nobody", password="s3cret-pw", port=1).render_as_string(
        hide_password=False)
    with pytest.raises(PublishError) as failure:
        publish(built, Settings(publish_directory=tmp_path, publish_duckdb=False, publish_parquet=False),
                sql_url=url)
    assert "s3cret-pw" not in str(failure.value) and "publishing to sql failed" in str(failure.value)
