"""The Power BI project (PBIP) in `powerbi/`: a semantic model in TMDL and a first report page, per route.

    powerbi/parquet/b24wh.pbip       Import from the published Parquet folder (parameter ParquetFolder)
    powerbi/postgresql/b24wh.pbip    DirectQuery on the PostgreSQL publication (PostgresServer, PostgresDatabase)

The model holds the star schema's tables and the marts a report needs, with the columns, types and
descriptions of a published warehouse file; the relationships of `docs/power-bi.md` (many-to-one, single
direction; closing dates inactive); `dim_date` marked as the date table; the DAX measures of
`docs/power-bi.md`; and a page with the funnel and its gaps, plan against fact and the forgotten deals.

The files are written from a publication, so they follow the models:
`python -m warehouse.powerbi data/published/warehouse.duckdb powerbi` (tests/test_powerbi.py checks that
the committed project is what this writes).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

NAME = "b24wh"
_NAMESPACE = uuid.UUID("9b0f6c3e-3f57-4c1b-9a55-2d0c6a1f7e42")   # lineage tags stay the same from one write to the next

# The model's tables: the whole star schema, and the marts the measures and the page read.
TABLES: tuple[tuple[str, str], ...] = (
    *(("core", t) for t in ("dim_date", "dim_manager", "dim_stage", "dim_deal", "dim_source", "dim_contact",
                             "dim_company", "dim_activity_type", "fact_deal", "fact_deal_stage", "fact_activity",
                             "fact_call", "fact_invoice", "fact_task", "fact_pipeline_daily")),
    *(("marts", t) for t in ("funnel", "funnel_team", "lost_reasons", "deals_without_activities",
                              "deals_without_activities_by_manager", "plan_fact", "manager_activity",
                              "data_quality", "user_history")),
)
DATE_TABLE, DATE_COLUMN = "dim_date", "date"


@dataclass(frozen=True)
class Relationship:
    many: str          # table[column] on the many side
    one: str           # table[column] on the one side (unique there)
    active: bool = True


def _many_to(one: str, *many: str, active: bool = True) -> list[Relationship]:
    return [Relationship(m, one, active) for m in many]


RELATIONSHIPS: tuple[Relationship, ...] = (
    *_many_to("dim_manager[manager_key]", "fact_deal[manager_key]", "fact_deal_stage[manager_key]",
              "fact_activity[manager_key]", "fact_call[manager_key]", "fact_invoice[manager_key]",
              "fact_pipeline_daily[manager_key]", "funnel[manager_key]", "lost_reasons[manager_key]",
              "deals_without_activities[manager_key]", "manager_activity[manager_key]", "data_quality[manager_key]",
              "user_history[manager_key]"),
    *_many_to("dim_stage[stage_key]", "fact_deal[stage_key]", "fact_deal_stage[stage_key]",
              "fact_pipeline_daily[stage_key]"),
    *_many_to("dim_date[date_key]", "fact_deal[created_date_key]", "fact_deal_stage[date_key]",
              "fact_activity[date_key]", "fact_call[date_key]", "fact_invoice[issued_date_key]",
              "fact_pipeline_daily[date_key]"),
    *_many_to("dim_date[date_key]", "fact_deal[closed_date_key]", "fact_invoice[paid_date_key]", active=False),
    *_many_to("dim_deal[deal_id]", "fact_deal_stage[deal_id]", "fact_invoice[deal_id]"),
    *_many_to("dim_source[source_key]", "dim_deal[source_key]"),
)


@dataclass(frozen=True)
class Measure:
    table: str
    name: str
    dax: str
    format: str = "#,0"


PERCENT = "0.0%"
MEASURES: tuple[Measure, ...] = (
    # The funnel (marts.funnel_team; marts.funnel per manager)
    Measure("funnel_team", "Deals reached", "SUM ( funnel_team[deals_reached] )"),
    Measure("funnel_team", "Deals at first step",
            "CALCULATE ( [Deals reached], funnel_team[stage_order] = 1,\n"
            "    REMOVEFILTERS ( funnel_team[stage_order], funnel_team[stage_name], funnel_team[stage_id] ) )"),
    Measure("funnel_team", "Deals at previous step",
            "VAR step = SELECTEDVALUE ( funnel_team[stage_order] )\n"
            "RETURN CALCULATE ( [Deals reached], funnel_team[stage_order] = step - 1,\n"
            "    REMOVEFILTERS ( funnel_team[stage_order], funnel_team[stage_name], funnel_team[stage_id] ) )"),
    Measure("funnel_team", "Conversion from previous", "DIVIDE ( [Deals reached], [Deals at previous step] )",
            PERCENT),
    Measure("funnel_team", "Conversion from first", "DIVIDE ( [Deals reached], [Deals at first step] )", PERCENT),
    Measure("funnel_team", "Median step conversion",
            "MEDIANX ( FILTER ( ALLSELECTED ( funnel_team[stage_order] ), funnel_team[stage_order] > 1 ),\n"
            "    [Conversion from previous] )", PERCENT),
    Measure("funnel_team", "Is gap",
            "VAR conversion = [Conversion from previous]\n"
            "RETURN IF ( [Deals at previous step] >= 10\n"
            "    && ( conversion < 0.3 || conversion < 0.75 * [Median step conversion] ), 1, 0 )", "0"),
    Measure("funnel_team", "Lost deals", "SUM ( funnel_team[deals_lost] )"),
    Measure("funnel_team", "Lost amount", "SUM ( funnel_team[amount_lost] )"),
    # Lost reasons (marts.lost_reasons)
    Measure("lost_reasons", "Lost share",
            "DIVIDE ( SUM ( lost_reasons[deals_lost] ), CALCULATE ( SUM ( lost_reasons[deals_lost] ),\n"
            "    REMOVEFILTERS ( lost_reasons[reason_name], lost_reasons[reason_field_value] ) ) )", PERCENT),
    # Forgotten deals (marts.deals_without_activities)
    Measure("deals_without_activities", "Forgotten deals", "COUNTROWS ( deals_without_activities )"),
    Measure("deals_without_activities", "Forgotten share",
            "DIVIDE ( [Forgotten deals], SUM ( deals_without_activities_by_manager[open_deals] ) )", PERCENT),
    Measure("deals_without_activities", "Forgotten with overdue work",
            "CALCULATE ( [Forgotten deals], deals_without_activities[has_overdue_activity] )"),
    # Plan versus fact (marts.plan_fact; slice by scope and metric)
    Measure("plan_fact", "Plan", "SUM ( plan_fact[plan] )"),
    Measure("plan_fact", "Fact", "SUM ( plan_fact[fact] )"),
    Measure("plan_fact", "Plan %", "DIVIDE ( [Fact], [Plan] )", PERCENT),
    Measure("plan_fact", "Expected by today", "SUM ( plan_fact[expected_by_today] )"),
    Measure("plan_fact", "Ahead of pace", "[Fact] - [Expected by today]"),
    Measure("plan_fact", "Forecast", "SUM ( plan_fact[forecast] )"),
    # Manager activity (marts.manager_activity; filter period_grain to one grain)
    Measure("manager_activity", "Calls",
            "SUM ( manager_activity[calls_outgoing] ) + SUM ( manager_activity[calls_incoming] )"),
    Measure("manager_activity", "Idle working days",
            "CALCULATE ( COUNTROWS ( manager_activity ), manager_activity[period_grain] = \"day\",\n"
            "    manager_activity[calls_outgoing] + manager_activity[emails_outgoing]\n"
            "        + manager_activity[meetings] + manager_activity[tasks_closed] = 0 )"),
)


@dataclass(frozen=True)
class Visual:
    name: str
    kind: str                                           # Power BI's visualType
    position: tuple[int, int, int, int]                 # x, y, width, height on a 1280 x 720 page
    fields: tuple[tuple[str, str], ...]                 # (query role, table[column] or table[[measure]])
    title: str


PAGE = "sales_director"
VISUALS: tuple[Visual, ...] = (
    Visual("funnel", "funnel", (16, 16, 400, 340), (("Category", "funnel_team[stage_name]"),
                                                   ("Y", "funnel_team[[Deals reached]]")), "Funnel: deals reached"),
    Visual("funnel_gaps", "tableEx", (432, 16, 400, 340),
           (("Values", "funnel_team[pipeline_name]"), ("Values", "funnel_team[stage_name]"),
            ("Values", "funnel_team[[Deals reached]]"), ("Values", "funnel_team[[Conversion from previous]]"),
            ("Values", "funnel_team[[Is gap]]")), "Where deals disappear (gap = 1)"),
    Visual("forgotten_count", "card", (848, 16, 416, 110), (("Values", "deals_without_activities[[Forgotten deals]]"),),
           "Forgotten deals: open, nothing planned"),
    Visual("forgotten", "tableEx", (848, 142, 416, 562),
           (("Values", "dim_manager[full_name]"), ("Values", "deals_without_activities[title]"),
            ("Values", "deals_without_activities[stage_name]"), ("Values", "deals_without_activities[amount]"),
            ("Values", "deals_without_activities[days_since_last_activity]")), "Forgotten deals"),
    Visual("plan_fact", "tableEx", (16, 372, 816, 332),
           (("Values", "plan_fact[scope_name]"), ("Values", "plan_fact[metric]"), ("Values", "plan_fact[[Plan]]"),
            ("Values", "plan_fact[[Fact]]"), ("Values", "plan_fact[[Plan %]]"),
            ("Values", "plan_fact[[Expected by today]]")), "Plan against fact"),
)


@dataclass(frozen=True)
class Route:
    parameters: tuple[tuple[str, str], ...]     # M parameters: name, default value
    mode: str                                   # the partitions' storage mode
    source: str                                 # M body; {schema} and {table} are filled in


ROUTES: dict[str, Route] = {
    "parquet": Route((("ParquetFolder", "C:\\b24wh\\data\\published\\parquet"),), "import",
                     'let\n\tSource = Parquet.Document(File.Contents(ParquetFolder & "\\{schema}\\{table}.parquet"))\n'
                     "in\n\tSource"),
    "postgresql": Route((("PostgresServer", "localhost:5432"), ("PostgresDatabase", "b24wh")), "directQuery",
                        "let\n\tSource = PostgreSQL.Database(PostgresServer, PostgresDatabase),\n"
                        '\tData = Source{{[Schema = "{schema}", Item = "{table}"]}}[Data]\nin\n\tData'),
}


def data_type(duckdb_type: str) -> str:
    """The Power BI data type of a published column (the same on both routes)."""
    if duckdb_type in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER"):
        return "int64"
    if duckdb_type.startswith("DECIMAL"):
        return "decimal"
    if duckdb_type in ("DOUBLE", "FLOAT", "REAL"):
        return "double"
    if duckdb_type in ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"):
        return "dateTime"
    if duckdb_type == "BOOLEAN":
        return "boolean"
    if duckdb_type == "VARCHAR":
        return "string"
    raise ValueError(f"no Power BI type for the published type {duckdb_type}")


def quoted(name: str) -> str:
    """A TMDL object name: quoted in single quotes when it holds a space or one of . = : '."""
    return f"'{name.replace(chr(39), chr(39) * 2)}'" if re.search(r"[\s.=:']", name) else name


def tag(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _description(text: str | None, indent: str) -> list[str]:
    return [f"{indent}/// {line}" for line in (text or "").splitlines() if line.strip()]


def _indented(text: str, indent: str) -> list[str]:
    return [f"{indent}{line}" for line in text.splitlines()]


def table_tmdl(schema: str, table: str, columns: list[tuple[str, str, str | None]], comment: str | None,
               route: Route) -> str:
    lines = [*_description(comment, ""), f"table {quoted(table)}", f"\tlineageTag: {tag(table)}"]
    if table == DATE_TABLE:
        lines.append("\tdataCategory: Time")
    for measure in (m for m in MEASURES if m.table == table):
        body = measure.dax.splitlines()
        lines += ["", f"\tmeasure {quoted(measure.name)} = " + (body[0] if len(body) == 1 else "")]
        if len(body) > 1:
            lines[-1] = lines[-1].rstrip()
            lines += _indented(measure.dax, "\t\t\t")
        lines += [f"\t\tformatString: {measure.format}", f"\t\tlineageTag: {tag(table, 'measure', measure.name)}"]
    for name, kind, text in columns:
        lines += ["", *_description(text, "\t"), f"\tcolumn {quoted(name)}", f"\t\tdataType: {data_type(kind)}"]
        if table == DATE_TABLE and name == DATE_COLUMN:
            lines += ["\t\tisKey", "\t\tformatString: yyyy-mm-dd"]
        if name.endswith("_key"):
            lines.append("\t\tisHidden")
        lines += [f"\t\tlineageTag: {tag(table, name)}", "\t\tsummarizeBy: none", f"\t\tsourceColumn: {name}"]
    lines += ["", f"\tpartition {quoted(table)} = m", f"\t\tmode: {route.mode}", "\t\tsource ="]
    lines += _indented(route.source.format(schema=schema, table=table), "\t\t\t\t")
    return "\n".join(lines) + "\n"


def relationships_tmdl() -> str:
    lines: list[str] = []
    for r in RELATIONSHIPS:
        many_table, many_column = r.many[:-1].split("[")
        one_table, one_column = r.one[:-1].split("[")
        lines += [f"relationship {tag('relationship', r.many, r.one)}"]
        if not r.active:
            lines.append("\tisActive: false")
        lines += [f"\tfromColumn: {quoted(many_table)}.{quoted(many_column)}",
                  f"\ttoColumn: {quoted(one_table)}.{quoted(one_column)}", ""]
    return "\n".join(lines)


def model_tmdl() -> str:
    lines = ["model Model", "\tculture: en-US", "\tdefaultPowerBIDataSourceVersion: powerBI_V3",
             "\tdiscourageImplicitMeasures", "\tsourceQueryCulture: en-US", "",
             "annotation __PBI_TimeIntelligenceEnabled = 0", ""]
    lines += [f"ref table {quoted(t)}" for _, t in TABLES]
    return "\n".join(lines) + "\n"


def expressions_tmdl(route: Route) -> str:
    lines: list[str] = []
    for name, default in route.parameters:
        lines += [f'expression {name} = "{default}" meta [IsParameterQuery = true, Type = "Text", '
                  "IsParameterQueryRequired = true]", f"\tlineageTag: {tag('parameter', name)}", "",
                  "\tannotation PBI_ResultType = Text", ""]
    return "\n".join(lines)


def _field(reference: str) -> dict[str, object]:
    table, rest = reference.split("[", 1)
    if rest.startswith("["):
        return {"Measure": {"Expression": {"SourceRef": {"Entity": table}}, "Property": rest[1:-2]}}
    return {"Column": {"Expression": {"SourceRef": {"Entity": table}}, "Property": rest[:-1]}}


def visual_json(visual: Visual, order: int) -> dict[str, object]:
    roles: dict[str, list[dict[str, object]]] = {}
    for role, reference in visual.fields:
        field = _field(reference)
        inner = next(iter(field.values()))
        entity = inner["Expression"]["SourceRef"]["Entity"]  # type: ignore[index]
        roles.setdefault(role, []).append({"field": field, "queryRef": f"{entity}.{inner['Property']}",  # type: ignore[index]
                                           "nativeQueryRef": inner["Property"]})  # type: ignore[index]
    x, y, width, height = visual.position
    title = {"title": [{"properties": {
        "show": {"expr": {"Literal": {"Value": "true"}}},
        "text": {"expr": {"Literal": {"Value": f"'{visual.title}'"}}}}}]}
    return {"$schema": "https://developer.microsoft.com/json-schemas/fabric/item/report/definition/"
                       "visualContainer/1.4.0/schema.json",
            "name": visual.name,
            "position": {"x": x, "y": y, "z": order, "width": width, "height": height, "tabOrder": order},
            "visual": {"visualType": visual.kind,
                       "query": {"queryState": {role: {"projections": p} for role, p in roles.items()}},
                       "visualContainerObjects": title}}


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def project_files(published: Path) -> dict[str, str]:
    """Every file of the project, by its path under `powerbi/`, from a published warehouse file."""
    with duckdb.connect(str(published), read_only=True) as con:
        columns: dict[tuple[str, str], list[tuple[str, str, str | None]]] = {key: [] for key in TABLES}
        for schema, table, name, kind, comment in con.execute(
                "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
                "WHERE schema_name IN ('core', 'marts') ORDER BY schema_name, table_name, column_index").fetchall():
            if (schema, table) in columns:
                columns[(schema, table)].append((name, kind, comment))
        comments = {(s, t): c for s, t, c in con.execute(
            "SELECT schema_name, table_name, comment FROM duckdb_tables()").fetchall()}
    missing = [f"{s}.{t}" for (s, t), found in columns.items() if not found]
    if missing:
        raise ValueError(f"{published} lacks {', '.join(missing)}: publish a complete warehouse first")
    files: dict[str, str] = {}
    for route_name, route in ROUTES.items():
        root = f"{route_name}/{NAME}"
        model = f"{root}.SemanticModel"
        report = f"{root}.Report"
        files[f"{route_name}/{NAME}.pbip"] = _json({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/pbip/pbipProperties/1.0.0/schema.json",
            "version": "1.0", "artifacts": [{"report": {"path": f"{NAME}.Report"}}],
            "settings": {"enableAutoRecovery": True}})
        files[f"{model}/.platform"] = _json({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/"
                       "2.0.0/schema.json",
            "metadata": {"type": "SemanticModel", "displayName": NAME},
            "config": {"version": "2.0", "logicalId": tag(route_name, "model")}})
        files[f"{model}/definition.pbism"] = _json({"version": "4.0", "settings": {}})
        files[f"{model}/definition/database.tmdl"] = f"database {NAME}\n\tcompatibilityLevel: 1567\n"
        files[f"{model}/definition/model.tmdl"] = model_tmdl()
        files[f"{model}/definition/expressions.tmdl"] = expressions_tmdl(route)
        files[f"{model}/definition/relationships.tmdl"] = relationships_tmdl()
        for schema, table in TABLES:
            files[f"{model}/definition/tables/{table}.tmdl"] = table_tmdl(
                schema, table, columns[(schema, table)], comments.get((schema, table)), route)
        files[f"{report}/.platform"] = _json({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/"
                       "2.0.0/schema.json",
            "metadata": {"type": "Report", "displayName": NAME},
            "config": {"version": "2.0", "logicalId": tag(route_name, "report")}})
        files[f"{report}/definition.pbir"] = _json({
            "version": "4.0", "datasetReference": {"byPath": {"path": f"../{NAME}.SemanticModel"}}})
        definition = f"{report}/definition"
        files[f"{definition}/version.json"] = _json({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/item/report/definition/versionMetadata/"
                       "1.0.0/schema.json", "version": "2.0.0"})
        files[f"{definition}/report.json"] = _json({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/item/report/definition/report/2.4.0/"
                       "schema.json",
            "themeCollection": {"baseTheme": {"name": "CY24SU10", "reportVersionAtImport": "5.59",
                                              "type": "SharedResources"}},
            "layoutOptimization": "None"})
        files[f"{definition}/pages/pages.json"] = _json({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/item/report/definition/pagesMetadata/"
                       "1.0.0/schema.json", "pageOrder": [PAGE], "activePageName": PAGE})
        files[f"{definition}/pages/{PAGE}/page.json"] = _json({
            "$schema": "https://developer.microsoft.com/json-schemas/fabric/item/report/definition/page/1.4.0/"
                       "schema.json",
            "name": PAGE, "displayName": "Sales director", "displayOption": "FitToPage", "height": 720,
            "width": 1280})
        for order, visual in enumerate(VISUALS):
            files[f"{definition}/pages/{PAGE}/visuals/{visual.name}/visual.json"] = _json(visual_json(visual, order))
    return files


def write_project(published: Path, folder: Path) -> list[Path]:
    """Writes the project under `folder` (replacing the files it writes); returns their paths."""
    written = []
    for relative, text in project_files(published).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m warehouse.powerbi <published warehouse.duckdb> <output folder, such as powerbi>")
    paths = write_project(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{len(paths)} files written under {sys.argv[2]}")
