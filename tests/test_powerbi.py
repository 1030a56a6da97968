"""The Power BI project in powerbi/ (PBIP, semantic model in TMDL), checked as far as it can be without Power BI:
the files follow the TMDL grammar (tests/tmdl.py), every table and column is in the publication with a type
Power BI reads as declared (Parquet and PostgreSQL), every relationship joins on a key unique on its one
side, dim_date is the date table, and every field a measure or a visual names exists in the model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from dagster_project.cli import refresh
from tests.postgres import postgres_server
from tests.tmdl import Node, TmdlError, parse
from warehouse.powerbi import project_files
from warehouse.publish import publish
from warehouse.settings import Settings

PROJECT = Path(__file__).resolve().parents[1] / "powerbi"
ROUTES = ("parquet", "postgresql")

# The published types Power BI reads as each declared data type (stated here, apart from warehouse/powerbi.py).
PARQUET_TYPES = {"int64": {"BIGINT", "INTEGER"}, "decimal": {"DECIMAL(18,2)", "DECIMAL(38,2)"},
                 "double": {"DOUBLE"}, "dateTime": {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"},
                 "boolean": {"BOOLEAN"}, "string": {"VARCHAR"}}
POSTGRES_TYPES = {"int64": {"bigint", "integer"}, "decimal": {"numeric"}, "double": {"double precision"},
                  "dateTime": {"date", "timestamp without time zone", "timestamp with time zone"},
                  "boolean": {"boolean"}, "string": {"text", "character varying"}}


def model(route: str) -> dict[str, Node]:
    """The route's tables, by name, as the TMDL files declare them."""
    tables = {}
    for path in sorted((PROJECT / route / "b24wh.SemanticModel" / "definition" / "tables").glob("*.tmdl")):
        (table,) = parse(path.read_text(encoding="utf-8"), str(path))
        tables[table.name] = table
    return tables


def members(table: Node, kind: str) -> dict[str, Node]:
    return {c.name: c for c in table.children if c.type == kind}


def relationships(route: str) -> list[Node]:
    path = PROJECT / route / "b24wh.SemanticModel" / "definition" / "relationships.tmdl"
    return parse(path.read_text(encoding="utf-8"), str(path))


def source_of(table: Node) -> tuple[str, str]:
    """(schema, table) a partition reads, from its M source."""
    (partition,) = members(table, "partition").values()
    found = re.search(r'"\\(core|marts)\\(\w+)\.parquet"|Schema = "(core|marts)", Item = "(\w+)"',
                      partition.properties["source"])
    assert found, partition.properties["source"]
    return (found[1], found[2]) if found[1] else (found[3], found[4])


@pytest.fixture(scope="module")
def published(portal: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A warehouse refreshed from the shared portal and published to Parquet, DuckDB and PostgreSQL."""
    folder = tmp_path_factory.mktemp("powerbi")
    settings = Settings(publish_directory=folder / "published")
    refresh(folder / "warehouse.duckdb", credentials=portal.webhook_url, settings=settings)
    with postgres_server() as url:
        publish(folder / "warehouse.duckdb", Settings(publish_duckdb=False, publish_parquet=False), sql_url=url)
        yield {"duckdb": folder / "published" / "warehouse.duckdb", "parquet": folder / "published" / "parquet",
               "postgres": url}


def test_every_file_follows_the_tmdl_grammar() -> None:
    files = sorted(PROJECT.rglob("*.tmdl"))
    assert len(files) >= 2 * 25
    for path in files:
        parse(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize(("text", "why"), [
    ("table x\n    lineageTag: 1\n", "indentation must be tabs"),
    ("table x\n\tlineageTag: 1\n\t\tdataType: int64\n", "one tab below"),
    ("table my table\n", "not an object"),
    ("table x\n\tcolumn a\n\t\tdataType: text\n", "dataType must be one of"),
    ("table x\n\tcolumn a\n\t\tisKey: yes\n", "a flag takes no value"),
    ("table x\n\tcolumn a\n\t\tcolour: red\n", "not a property or child of a column"),
    ("relationship r\n\tfromColumn: a.b\n\tcrossFilteringBehavior: sideways\n", "must be one of"),
    ("/// about nothing\n", "describes nothing"),
])
def test_the_grammar_check_refuses_what_power_bi_would(text: str, why: str) -> None:
    with pytest.raises(TmdlError, match=why):
        parse(text, "sample.tmdl")


def test_the_project_is_what_the_publication_writes(published: dict[str, Any]) -> None:
    """The committed files follow the models: regenerate with `python -m warehouse.powerbi <published file>
    powerbi` after a model changes."""
    written = project_files(published["duckdb"])
    committed = {str(p.relative_to(PROJECT)): p.read_text(encoding="utf-8") for p in PROJECT.rglob("*")
                 if p.is_file()}
    assert sorted(committed) == sorted(written)
    stale = [name for name, text in written.items() if committed[name] != text]
    assert stale == [], "powerbi/ is out of date: python -m warehouse.powerbi <published warehouse.duckdb> powerbi"


def test_every_column_is_published_to_parquet_with_a_type_power_bi_reads_as_declared(
        published: dict[str, Any]) -> None:
    tables = model("parquet")
    assert len(tables) >= 20
    with duckdb.connect() as con:
        for table in tables.values():
            schema, name = source_of(table)
            path = published["parquet"] / schema / f"{name}.parquet"
            types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                                     f"read_parquet('{path}'))").fetchall())
            for column in members(table, "column").values():
                declared = column.properties["dataType"]
                assert column.properties["sourceColumn"] in types, f"{name}.{column.name} is not published"
                assert types[column.properties["sourceColumn"]] in PARQUET_TYPES[declared], \
                    f"{name}.{column.name}: {types[column.name]} read as {declared}"


def test_every_column_is_published_to_postgresql_with_a_type_power_bi_reads_as_declared(
        published: dict[str, Any]) -> None:
    engine = sa.create_engine(published["postgres"])
    with engine.connect() as con:
        types = {(s, t, c): d for s, t, c, d in con.execute(sa.text(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema IN ('core', 'marts')")).fetchall()}
    engine.dispose()
    for table in model("postgresql").values():
        schema, name = source_of(table)
        assert members(table, "partition")[table.name].properties["mode"] == "directQuery"
        for column in members(table, "column").values():
            found = types.get((schema, name, column.properties["sourceColumn"]))
            assert found in POSTGRES_TYPES[column.properties["dataType"]], f"{name}.{column.name}: {found}"


def test_relationships_are_many_to_one_single_direction_on_keys_unique_on_the_one_side(
        published: dict[str, Any]) -> None:
    for route in ROUTES:
        tables = model(route)
        found = relationships(route)
        assert len(found) >= 25
        with duckdb.connect(str(published["duckdb"]), read_only=True) as con:
            for relationship in found:
                assert "crossFilteringBehavior" not in relationship.properties, "single direction (the default)"
                assert "fromCardinality" not in relationship.properties and \
                    "toCardinality" not in relationship.properties, "many to one (the default)"
                (many_table, many_column), (one_table, one_column) = (
                    relationship.properties[end].split(".") for end in ("fromColumn", "toColumn"))
                assert many_column in members(tables[many_table], "column")
                assert one_column in members(tables[one_table], "column")
                one_schema, _ = source_of(tables[one_table])
                many_schema, _ = source_of(tables[many_table])
                rows, keys, nulls = con.execute(
                    f"SELECT count(*), count(DISTINCT {one_column}), count(*) - count({one_column}) "
                    f"FROM {one_schema}.{one_table}").fetchone()  # type: ignore[misc]
                assert rows == keys and nulls == 0, f"{one_table}.{one_column} is not unique"
                if one_table == "dim_deal":
                    continue   # an invoice may bill a deal deleted before the first load: Power BI's blank deal
                orphans = con.execute(
                    f"SELECT count(*) FROM {many_schema}.{many_table} WHERE {many_column} IS NOT NULL AND "
                    f"{many_column} NOT IN (SELECT {one_column} FROM {one_schema}.{one_table})").fetchone()[0]  # type: ignore[index]
                assert orphans == 0, f"{many_table}.{many_column} has keys {one_table} lacks (no unknown member)"
        inactive = {r.properties["fromColumn"] for r in found if r.properties.get("isActive") == "false"}
        assert inactive == {"fact_deal.closed_date_key", "fact_invoice.paid_date_key"}, "closing dates: USERELATIONSHIP"


def test_dim_date_is_the_date_table(published: dict[str, Any]) -> None:
    for route in ROUTES:
        dates = model(route)["dim_date"]
        assert dates.properties.get("dataCategory") == "Time"
        keys = [c for c in members(dates, "column").values() if c.properties.get("isKey")]
        assert [(k.name, k.properties["dataType"]) for k in keys] == [("date", "dateTime")]
        assert [t for t in model(route).values() if t.properties.get("dataCategory") == "Time"] == [dates]
    with duckdb.connect(str(published["duckdb"]), read_only=True) as con:
        days, distinct, span = con.execute("SELECT count(*), count(DISTINCT date), max(date) - min(date) + 1 "
                                           "FROM core.dim_date").fetchone()  # type: ignore[misc]
    assert days == distinct == span, "one row per day, no day missing"


def test_measures_and_the_report_page_name_only_what_the_model_has() -> None:
    for route in ROUTES:
        tables = model(route)
        measures = {m for t in tables.values() for m in members(t, "measure")}
        assert {"Deals reached", "Conversion from previous", "Is gap", "Plan", "Fact", "Plan %",
                "Forgotten deals", "Lost share"} <= measures
        for table in tables.values():
            for measure in members(table, "measure").values():
                dax = measure.expression or ""
                for ref_table, ref_column in re.findall(r"(\w+)\[(\w+)\]", dax):
                    assert ref_column in members(tables[ref_table], "column"), f"{measure.name}: {ref_table}"
                for ref in re.findall(r"(?<![\w\]])\[([^\]]+)\]", dax):
                    assert ref in measures, f"{measure.name} names a measure the model lacks: {ref}"
        page = PROJECT / route / "b24wh.Report" / "definition" / "pages"
        order = json.loads((page / "pages.json").read_text(encoding="utf-8"))["pageOrder"]
        visuals = [json.loads(p.read_text(encoding="utf-8"))
                   for p in (page / order[0] / "visuals").rglob("visual.json")]
        kinds = {v["visual"]["visualType"] for v in visuals}
        assert {"funnel", "tableEx", "card"} <= kinds
        for visual in visuals:
            for role in visual["visual"]["query"]["queryState"].values():
                for projection in role["projections"]:
                    (kind, field), = projection["field"].items()
                    table = tables[field["Expression"]["SourceRef"]["Entity"]]
                    assert field["Property"] in members(table, "column" if kind == "Column" else "measure"), \
                        f"{visual['name']}: {field}"
        report = json.loads((PROJECT / route / "b24wh.Report" / "definition.pbir").read_text(encoding="utf-8"))
        assert report["datasetReference"]["byPath"]["path"] == "../b24wh.SemanticModel"
