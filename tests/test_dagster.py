"""The Dagster code location: it loads, materialises the whole graph, and blocking checks stop the marts."""

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from assets.refresh import warehouse_refresh
from b24wh_simulator.client import SimulatorProcess
from dagster_project.definitions import defs
from dagster_project.resources import Bitrix24Resource, WarehouseResource
from tests.conftest import portal_options
from warehouse.checks import CORE_CHECKS, MART_CHECKS


def test_the_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    assert {job.name for job in defs.jobs} >= {"refresh", "reconcile", "backfill"}
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert {"bitrix24/raw/deals", "bitrix24/raw/activities", "warehouse/core/fact_deal_stage"} <= keys


def test_lineage_follows_the_sql_and_names_only_assets_of_the_code_location() -> None:
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    deps = {key: {d.asset_key.to_user_string() for d in spec.deps} for key, spec in specs.items()}
    assert deps["warehouse/core/fact_call"] == {"bitrix24/raw/calls", "warehouse/core/dim_manager"}
    assert deps["warehouse/marts/lost_reasons"] == {"bitrix24/raw/deals", "bitrix24/raw/userfields",
                                                    "warehouse/core/fact_deal", "warehouse/core/dim_stage"}
    assert "warehouse/marts/funnel" in deps["warehouse/published"] and \
        "warehouse/core/fact_call" in deps["warehouse/published"]
    assert set().union(*deps.values()) <= set(specs), "a dependency on an asset nothing defines"


@pytest.fixture(scope="module")
def portal() -> Any:
    with SimulatorProcess(**portal_options(deals=200, seed=59)) as sim:
        yield sim


def resources(portal: Any, warehouse: Path) -> dict[str, Any]:
    return {"bitrix24": Bitrix24Resource(webhook_url=portal.webhook_url),
            "warehouse": WarehouseResource(path=str(warehouse))}


def test_the_whole_graph_materialises_with_every_check_passing(portal: Any, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    result = dg.materialize([warehouse_refresh], resources=resources(portal, warehouse))
    assert result.success
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"bitrix24/raw/deals", "warehouse/core/fact_deal", "warehouse/marts/funnel", "warehouse/published"} \
        <= materialised
    with duckdb.connect(str(tmp_path / "published" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.fact_deal").fetchone()[0] \
            == portal.control.truth()["rows"]["deals"]
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(CORE_CHECKS) + len(MART_CHECKS) and all(e.passed for e in evaluations)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        deals = con.execute("SELECT count(*) FROM core.fact_deal").fetchone()[0]
    assert deals == portal.control.truth()["rows"]["deals"]


def test_a_failing_blocking_check_stops_what_is_downstream(portal: Any, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    raw_and_core = dg.AssetSelection.key_prefixes(["bitrix24", "raw"], ["warehouse", "core"])
    assert dg.materialize([warehouse_refresh], selection=raw_and_core, resources=resources(portal, warehouse)).success
    with duckdb.connect(str(warehouse)) as con:   # a deal whose responsible user the portal does not list
        con.execute("INSERT INTO raw.deals (id, title, category_id, stage_id, stage_semantic_id, assigned_by_id, "
                    "date_create, date_modify, _dlt_load_id, _dlt_id) SELECT 10000000, 'orphan', 0, 'NEW', 'P', "
                    "999999, now(), now(), 'test', 'test-orphan'")
    # No extraction this time: a refresh's deletion count would mark the portal-less deal deleted.
    result = dg.materialize([warehouse_refresh], selection=dg.AssetSelection.key_prefixes(["warehouse"]),
                            resources=resources(portal, warehouse), raise_on_error=False)
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == ["managers_known"]
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "warehouse/core/fact_deal" in materialised
    assert not {key for key in materialised if key.startswith(("warehouse/marts/", "warehouse/published"))}


def test_dg_check_defs_and_the_workspace_agree() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    dg_cli = Path(sys.executable).with_name("dg")
    done = subprocess.run([str(dg_cli), "check", "defs"], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr
    workspace = (root / "workspace.yaml").read_text(encoding="utf-8")
    assert "module_name: dagster_project.definitions" in workspace and "attribute: defs" in workspace


def cursors(warehouse: Path) -> dict[str, Any]:
    import base64
    import json
    import zlib

    with duckdb.connect(str(warehouse), read_only=True) as con:
        state = con.execute("SELECT state FROM raw._dlt_pipeline_state ORDER BY created_at DESC LIMIT 1").fetchone()[0]
    resources_state = json.loads(zlib.decompress(base64.b64decode(state)))["sources"]["bitrix24"]["resources"]
    return {name: {k: v for k, v in values.items() if k in ("cursor", "last_id")}
            for name, values in resources_state.items()}


def core_tables(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'core' ORDER BY 1").fetchall()]
        return {n: sorted(con.execute(f"SELECT * FROM core.{n}").fetchall(), key=repr) for n in names}


def test_a_backfilled_month_leaves_the_cursors_and_matches_a_full_load(portal: Any, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    assert defs.resolve_job_def("refresh").execute_in_process(resources=resources(portal, warehouse)).success
    full_cursors, full_tables = cursors(warehouse), core_tables(warehouse)
    assert full_cursors["deals"]["cursor"] and full_cursors["activities"]["cursor"]
    portal.control.reset_stats()
    month = defs.resolve_job_def("backfill").execute_in_process(partition_key="2026-03-01",
                                                                resources=resources(portal, warehouse))
    assert month.success
    assert cursors(warehouse) == full_cursors
    assert core_tables(warehouse) == full_tables
    # The month was read as a window (a few hundred deals, not the whole portal's pages), and the run
    # recorded every step as any refresh does: each asset's materialisation and each check's result.
    assert 0 < portal.control.requests_served()["http_requests"] < 10
    materialised = {e.asset_key.to_user_string() for e in month.get_asset_materialization_events()}
    assert {"bitrix24/raw/deals", "warehouse/core/fact_deal", "warehouse/marts/funnel", "warehouse/published"} \
        <= materialised
    evaluations = month.get_asset_check_evaluations()
    assert len(evaluations) == len(CORE_CHECKS) + len(MART_CHECKS) and all(e.passed for e in evaluations)


def test_the_command_line_and_dagster_run_the_same_steps() -> None:
    from dagster_project.steps import STEPS

    assert [s.name for s in STEPS] == ["extract", "core", "marts", "publish"]
    specs = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    job = defs.resolve_job_def("refresh")
    assert {n.name for n in job.graph.node_defs} == {"warehouse_refresh"}
    assert {c.name for c in warehouse_refresh.check_specs} == {c.name for s in STEPS for c in s.checks}
    assert {"bitrix24/raw/deals", "warehouse/core/fact_deal", "warehouse/marts/funnel", "warehouse/published"} <= specs
    for name in ("refresh", "reconcile", "backfill"):
        assert {n.name for n in defs.resolve_job_def(name).graph.node_defs} == {n.name for n in job.graph.node_defs}


def test_a_bad_setting_fails_the_first_step_in_one_line_before_any_request(portal: Any, tmp_path: Path) -> None:
    settings = tmp_path / "b24wh.toml"
    settings.write_text('[plans]\nplans_file = "plans.csv"\n', encoding="utf-8")
    (tmp_path / "plans.csv").write_text("scope,id,month,metric,plan\nmanager,1,2026-10,calls,1e400\n")
    portal.control.reset_stats()
    result = dg.materialize([warehouse_refresh], selection=dg.AssetSelection.key_prefixes(["bitrix24", "raw"]),
                            raise_on_error=False, resources={
        "bitrix24": Bitrix24Resource(webhook_url=portal.webhook_url),
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb"), settings_file=str(settings))})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description
    assert description == f"{tmp_path / 'plans.csv'} line 2: plan '1e400' is too large (at most 9999999999999999.99)"
    assert sum(portal.control.requests_served().values()) == 0


BAD_ORCHESTRATION = {
    "B24WH_TIMEZONE": ("Mars/Base", "unknown portal time zone 'Mars/Base'"),
    "B24WH_REFRESH_CRON": ("every minute", "B24WH_REFRESH_CRON = 'every minute' is not a cron schedule"),
    "B24WH_RECONCILE_CRON": ("61 2 * * *", "B24WH_RECONCILE_CRON = '61 2 * * *' is not a cron schedule"),
    "B24WH_BACKFILL_START": ("01.01.2020", "B24WH_BACKFILL_START = '01.01.2020' is not a date"),
}

# Loads the code location once per bad setting, in a process of its own (Dagster's own import is shared).
LOAD_WITH_EACH = """
import importlib, json, os, sys
failures = {}
for variable, value in json.loads(sys.argv[1]).items():
    os.environ[variable] = value
    try:
        importlib.import_module("dagster_project.definitions")
        failures[variable] = None
    except Exception as exc:
        failures[variable] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    del os.environ[variable]
    sys.modules.pop("dagster_project.definitions", None)
print(json.dumps(failures))
"""


def test_a_bad_orchestration_setting_stops_the_code_location_in_one_line() -> None:
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", LOAD_WITH_EACH,
                           json.dumps({k: v for k, (v, _) in BAD_ORCHESTRATION.items()})],
                          cwd=root, text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    for variable, (_, says) in BAD_ORCHESTRATION.items():
        failure = failures[variable]
        assert failure is not None, f"{variable} was accepted"
        assert failure.startswith("warehouse.settings.SettingsError: ") and says in failure and "\n" not in failure
