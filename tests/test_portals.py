"""Many portals in one deployment: listed in b24wh.toml, each on its own files, credentials and schemas, and a
portal that fails fails alone (the Dagster side: tests/test_portals_dagster.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from b24wh_simulator.client import SimulatorProcess
from dagster_project.portals import PortalChoiceError, scopes
from pipelines.bitrix24.credentials import portal_credentials
from pipelines.bitrix24.errors import ConfigurationError
from tests.conftest import Rest
from tests.portals import (
    SETTINGS,
    b24wh,
    load_settings_text,
    partner_days,
    portal_deals,
    published_figures,
    published_version,
    settings_file,
    three_portals,
    wall_answers,
    warehouse_deals,
    wrong_secret,
)
from tests.postgres import postgres_server
from warehouse.settings import Settings, SettingsError, load_settings

__all__ = ["three_portals"]   # the module's fixture

# --- the list, as the settings file gives it ---------------------------------------------------------------


def test_listed_portals_get_their_own_files_schemas_and_credentials_name(tmp_path: Path) -> None:
    settings = load_settings(settings_file(tmp_path, SETTINGS))
    north, south, east = scopes(settings, every=True)
    assert [s.name for s in (north, south, east)] == ["north", "south", "east"]
    assert north.portal and north.portal.credentials == "north"
    assert south.portal and (south.portal.credentials, south.portal.plan) == ("south_portal", "enterprise")
    assert east.timezone == "Asia/Vladivostok"
    assert north.warehouse.name == "warehouse.duckdb" and north.warehouse.parent.name == "north"
    assert len({s.warehouse for s in (north, south, east)}) == 3
    assert north.settings.publish_directory == north.warehouse.parent / "published"
    assert east.settings.publish_directory == tmp_path / "bi" / "east"
    assert [s.settings.publish_sql_schema_prefix for s in (north, south, east)] == ["north_", "south_", "east_"]
    assert [s.name for s in scopes(settings, ["east"])] == ["east"]


@pytest.mark.parametrize(("text", "says"), [
    ('[portals.North]\ntimezone = "Europe/Moscow"\n', "lower-case letters"),
    ('[portals.north]\ncredentials = "https://north.bitrix24.ru/rest/1/secret/"\n', "never the webhook"),
    ('[portals.north]\nwebhook = "x"\n', "unknown key portals.north.webhook"),
    ('[portals.north]\ntimezone = "Mars/Olympus"\n', "unknown portal time zone"),
    ('[portals]\nnorth = "x"\n', "[portals.acme]"),
])
def test_a_malformed_portal_is_refused_naming_the_key(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(settings_file(tmp_path, text))
    assert says in str(raised.value)


def test_two_portals_sharing_a_warehouse_are_refused(tmp_path: Path) -> None:
    settings = load_settings(settings_file(tmp_path, '[portals.a]\nwarehouse = "w.duckdb"\n'
                                                     '[portals.b]\nwarehouse = "w.duckdb"\n'))
    with pytest.raises(SettingsError, match="portals a and b share the warehouse"):
        scopes(settings, ["a"])


def test_naming_portals_must_match_the_list() -> None:
    listed = load_settings_text("[portals.north]\n[portals.south]\n")
    with pytest.raises(PortalChoiceError, match="--portal NAME, or --all; listed: north, south"):
        scopes(listed)
    with pytest.raises(PortalChoiceError, match="no portal 'west'"):
        scopes(listed, ["west"])
    with pytest.raises(PortalChoiceError, match="--warehouse does not go with listed portals"):
        scopes(listed, ["north"], warehouse=Path("/tmp/w.duckdb"))
    with pytest.raises(PortalChoiceError, match="no portals are listed"):
        scopes(Settings(), ["north"])
    single = scopes(Settings(), warehouse=Path("/tmp/w.duckdb"))
    assert [(s.name, s.warehouse, s.source_options()) for s in single] == [(None, Path("/tmp/w.duckdb"), {})]


def test_a_portals_credentials_come_only_from_its_own_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", "https://single.bitrix24.ru/rest/1/single/")
    monkeypatch.setenv("SOURCES__BITRIX24__CREDENTIALS", "https://single.bitrix24.ru/rest/1/single/")
    monkeypatch.setenv("PORTALS__NORTH__CREDENTIALS", "https://north.bitrix24.ru/rest/7/northsecret/")
    monkeypatch.setenv("PORTALS__SOUTH_PORTAL__CREDENTIALS__PORTAL", "https://south.bitrix24.ru")
    monkeypatch.setenv("PORTALS__SOUTH_PORTAL__CREDENTIALS__CLIENT_ID", "app.1")
    monkeypatch.setenv("PORTALS__SOUTH_PORTAL__CREDENTIALS__CLIENT_SECRET", "s")
    monkeypatch.setenv("PORTALS__SOUTH_PORTAL__CREDENTIALS__REFRESH_TOKEN", "r")
    north = portal_credentials("north").auth()
    assert (north.portal, north.user_id) == ("https://north.bitrix24.ru", 7)  # type: ignore[union-attr]
    assert portal_credentials("south_portal").auth().portal == "https://south.bitrix24.ru"
    with pytest.raises(ConfigurationError) as missing:
        portal_credentials("east")
    assert "PORTALS__EAST__CREDENTIALS" in str(missing.value) and "single" not in str(missing.value)
    # and the messages that ask to check them name where this portal's are set, webhook or OAuth
    assert north.set_at == "PORTALS__NORTH__CREDENTIALS or [portals.north.credentials] in .dlt/secrets.toml"
    assert portal_credentials("south_portal").auth().set_at.startswith("PORTALS__SOUTH_PORTAL__CREDENTIALS or ")
    monkeypatch.setenv("PORTALS__WEST__CREDENTIALS", "")
    with pytest.raises(ConfigurationError, match=r"URL is not set: .*\(PORTALS__WEST__CREDENTIALS or "):
        portal_credentials("west").auth()



# --- three portals with overlapping ids, refreshed from the command line -----------------------------------


def test_each_portal_loads_only_its_own_rows_and_one_that_fails_fails_alone(
        three_portals: dict[str, SimulatorProcess], tmp_path: Path) -> None:
    project = tmp_path / "partner"
    (project / "plans").mkdir(parents=True)
    settings_file(project, SETTINGS)
    users = [int(u["ID"]) for u in Rest(three_portals["north"].webhook_url).call("user.get")["result"]]
    (project / "plans" / "north.csv").write_text("scope,id,month,metric,plan\n" + "".join(
        f"manager,{user},2026-10,won_amount,1000000\n" for user in users), encoding="utf-8")
    truth = {name: portal_deals(sim) for name, sim in three_portals.items()}
    ids = [{i for i, _ in rows} for rows in truth.values()]
    assert ids[0] & ids[1] & ids[2], "the portals share deal ids, so a mix-up would show"
    assert truth["north"] != truth["south"], "and the same ids carry different deals"
    env = {"PORTALS__NORTH__CREDENTIALS": three_portals["north"].webhook_url,
           "PORTALS__SOUTH_PORTAL__CREDENTIALS": wrong_secret(three_portals["south"].webhook_url),
           "PORTALS__EAST__CREDENTIALS": three_portals["east"].webhook_url,
           # a single-portal setting must never stand in for a listed portal's credentials
           "BITRIX24_WEBHOOK_URL": three_portals["north"].webhook_url}
    with postgres_server() as url:
        env["B24WH_PUBLISH_URL"] = url
        first = b24wh(project, "refresh", "--all", env=env)
        failures = first.stderr.strip().splitlines()
        assert first.returncode == 1 and len(failures) == 1, first.stderr[-3000:]
        assert failures[0].startswith("b24wh refresh [south]: ") and "webhook" in failures[0], failures
        # where this portal's credentials are set, not every place a credential can be
        assert failures[0].endswith("where they are set: PORTALS__SOUTH_PORTAL__CREDENTIALS or "
                                    "[portals.south_portal.credentials] in .dlt/secrets.toml"), failures
        assert wrong_secret(three_portals["south"].webhook_url).rstrip("/").rsplit("/", 1)[1] not in first.stderr
        folders = {name: project / "data" / "portals" / name for name in truth}
        south = folders["south"] / "warehouse.duckdb"
        if south.exists():   # dlt may have opened it, but nothing was loaded
            with duckdb.connect(str(south), read_only=True) as con:
                assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name IN ('raw', 'core') AND "
                                   "NOT starts_with(table_name, '_dlt')").fetchone() == (0,)
        for name in ("north", "east"):
            assert warehouse_deals(folders[name] / "warehouse.duckdb") == truth[name], name
        assert warehouse_deals(folders["north"] / "published" / "warehouse.duckdb") == truth["north"]
        assert warehouse_deals(project / "bi" / "east" / "warehouse.duckdb") == truth["east"]
        engine = sa.create_engine(url)
        with engine.connect() as con:
            schemas = set(sa.inspect(con).get_schema_names())
            assert {"north_core", "north_marts", "east_core", "east_marts"} <= schemas
            assert not {"south_core", "core"} & schemas
            for name in ("north", "east"):
                rows = set(con.execute(sa.text(f"SELECT deal_id, title FROM {name}_core.fact_deal "
                                               "WHERE NOT is_deleted")).fetchall())
                assert rows == truth[name], name
        assert "Partner summary: " in first.stdout
        days = partner_days(project / "data" / "partner" / "summary.duckdb")
        assert days["south"] == [{"day": date.today(), "deals": None, "won": None, "plan_percent": None,
                                  "forgotten": None, "published": False, "error": days["south"][0]["error"]}]
        assert failures[0].split(": ", 1)[1] in days["south"][0]["error"]
        for name in ("north", "east"):
            published = folders[name] / "published" if name == "north" else project / "bi" / "east"
            expected = published_figures(published / "warehouse.duckdb")
            assert sum(d["deals"] for d in days[name]) == len(truth[name]), name
            assert sum(d["won"] for d in days[name]) == expected["won"], name
            newest = days[name][-1]
            assert (newest["day"], newest["forgotten"], newest["published"], newest["error"]) == (
                expected["today"], expected["forgotten"], True, None), name
            assert not any(d["published"] or d["forgotten"] is not None for d in days[name][:-1]), name
        october = {d["day"]: d["plan_percent"] for d in days["north"] if d["day"].month == 10}
        won_october = published_figures(folders["north"] / "published" / "warehouse.duckdb")["won_october"]
        assert won_october > 0 and october[date(2026, 10, 31)] == round(
            100 * won_october / (1_000_000 * len(users)), 1) > 0
        assert all(d["plan_percent"] is None for d in days["east"]), "no plans, no percentage"
        with engine.connect() as con:
            assert con.execute(sa.text("SELECT count(*) FROM partner.portal_daily")).scalar() == sum(
                len(v) for v in days.values())

        status = b24wh(project, "status", "--portal", "south", env=env)
        shown = status.stdout + status.stderr
        assert "south" in shown and failures[0].split(": ", 1)[1] in shown, shown

        north_before = hashlib.sha256((folders["north"] / "warehouse.duckdb").read_bytes()).hexdigest()
        env["PORTALS__SOUTH_PORTAL__CREDENTIALS"] = three_portals["south"].webhook_url
        second = b24wh(project, "refresh", "--portal", "south", env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        assert warehouse_deals(folders["south"] / "warehouse.duckdb") == truth["south"]
        assert hashlib.sha256((folders["north"] / "warehouse.duckdb").read_bytes()).hexdigest() == north_before
        with engine.connect() as con:
            rows = set(con.execute(sa.text("SELECT deal_id, title FROM south_core.fact_deal WHERE NOT is_deleted")))
            assert rows == truth["south"]
        days = partner_days(project / "data" / "partner" / "summary.duckdb")
        assert days["south"][-1]["error"] is None and sum(d["deals"] for d in days["south"]) == len(truth["south"])
        assert days["north"][-1]["published"], "the other portals stay in the summary"
        engine.dispose()

    walls = wall_answers({name: folder / "published" for name, folder in folders.items() if name != "east"}
                         | {"east": project / "bi" / "east"})
    for name in truth:
        assert walls[name] == published_version(folders[name] / "published" if name != "east"
                                                else project / "bi" / "east"), name
    assert walls["east with north's token"] == 401 and walls["no portal"] == 401

    unnamed = b24wh(project, "refresh", env=env)
    assert unnamed.returncode == 2 and "--portal NAME, or --all; listed: north, south, east" in unnamed.stderr
    every = b24wh(project, "status", "--all", "--json", env=env)
    assert every.returncode == 0, every.stderr
    reports = json.loads(every.stdout)
    assert {name: reports[name]["warehouse"] for name in reports} == {
        name: str(folders[name] / "warehouse.duckdb") for name in truth}
    assert {e["entity"]: e["rows"] for e in reports["east"]["entities"]}["deals"] == len(truth["east"])


def test_a_portal_that_is_down_or_whose_disk_is_full_fails_alone_and_a_rerun_completes_it(
        three_portals: dict[str, SimulatorProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

    from dagster_project.cli import main
    from tests.conftest import free_port

    project = tmp_path / "partner"
    project.mkdir()
    settings_file(project, "[portals.north]\n\n[portals.east]\ntimezone = \"Asia/Vladivostok\"\n\n[portals.west]\n")
    for name, value in {"B24WH_HOME": str(project), "B24WH_CONFIG": str(project / "b24wh.toml"),
                        "PORTALS__NORTH__CREDENTIALS": three_portals["north"].webhook_url,
                        "PORTALS__EAST__CREDENTIALS": three_portals["east"].webhook_url,
                        "PORTALS__WEST__CREDENTIALS": f"http://127.0.0.1:{free_port()}/rest/1/abc/"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("B24WH_PUBLISH_URL", raising=False)
    real = DuckDbSqlClient.execute_query

    def east_disk_full(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if "/east/" in str(self.credentials.database) and "INSERT" in str(query).upper():
            raise OSError(28, "No space left on device")
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(DuckDbSqlClient, "execute_query", east_disk_full)
    assert main(["refresh", "--all"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2, errors
    assert errors[0].startswith("b24wh refresh [east]: ") and "is full" in errors[0], errors
    assert errors[1].startswith("b24wh refresh [west]: ") and "unreachable" in errors[1], errors
    folders = {name: project / "data" / "portals" / name for name in ("north", "east", "west")}
    assert warehouse_deals(folders["north"] / "warehouse.duckdb") == portal_deals(three_portals["north"])
    monkeypatch.setattr(DuckDbSqlClient, "execute_query", real)
    assert main(["refresh", "--portal", "east"]) == 0
    assert warehouse_deals(folders["east"] / "warehouse.duckdb") == portal_deals(three_portals["east"])
    days = partner_days(project / "data" / "partner" / "summary.duckdb")
    assert days["east"][-1]["error"] is None and "unreachable" in days["west"][-1]["error"]


def test_one_oauth_application_on_many_portals_keeps_each_portals_tokens_apart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json as json_

    from pipelines.bitrix24.credentials import Bitrix24OAuthCredentials

    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / ".b24wh"
    folder.mkdir()
    (folder / "oauth-app.1.json").write_text(json_.dumps({"access_token": "north-access",
                                                          "refresh_token": "north-refresh"}), encoding="utf-8")

    def auth(portal: str) -> Any:
        return Bitrix24OAuthCredentials(portal=portal, client_id="app.1", client_secret="s",
                                        refresh_token=f"{portal}-configured").auth()

    north, south = auth("https://north.bitrix24.ru"), auth("https://south.bitrix24.ru")
    assert north.token_file == folder / "oauth-north.bitrix24.ru-app.1.json"
    assert south.token_file == folder / "oauth-south.bitrix24.ru-app.1.json"
    assert north.refresh_token == "north-refresh", "the file from before portals is taken over once"
    assert south.refresh_token == "https://south.bitrix24.ru-configured" and not (folder / "oauth-app.1.json").exists()
    south.token_file.write_text(json_.dumps({"portal": "https://north.bitrix24.ru", "refresh_token": "x",
                                             "access_token": "y"}), encoding="utf-8")
    again = auth("https://south.bitrix24.ru")
    assert (again.refresh_token, again.access_token) == ("https://south.bitrix24.ru-configured", ""), \
        "another portal's tokens are never used"
