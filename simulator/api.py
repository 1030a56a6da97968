"""REST methods of the simulated portal, independent of HTTP: a call in, a status and a body out.

`Api.call` checks scope and the operating-time budget, runs the method's handler, models the server
time it cost (`CostModel`) and wraps the answer in the Bitrix24 envelope (`result`, `total`, `next`,
`time`). `batch` runs up to 50 commands in order with `$result[...]` substitution.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote, unquote

from b24wh_simulator import wire
from b24wh_simulator.catalogue import (
    CATEGORY_ENTITY_TYPES,
    ITEM_ENTITIES,
    METHODS,
    MULTIFIELD_TYPES,
    STAGE_HISTORY_ENTITIES,
    USERFIELD_ENUMS,
    Entity,
    Method,
)
from b24wh_simulator.config import CostModel
from b24wh_simulator.events import Events
from b24wh_simulator.limits import OperatingBudget
from b24wh_simulator.query import ApiError, Page, run_list

MAX_BATCH = 50
_REFERENCE = re.compile(r"\$result\[([^\]]*)\]((?:\[[^\]]*\])*)")
_NEXT = re.compile(r"\$next\[([^\]]*)\]")
# A reference sent percent-encoded (`%24result%5Breq_0%5D%5B49%5D%5BID%5D`), decoded before it is resolved.
_ENCODED_REFERENCE = re.compile(r"%24(?:result|next)(?:%5B[^%&=]*%5D)+", re.IGNORECASE)
_PATH = re.compile(r"\[([^\]]*)\]")
# Parameters of `user.get`/`department.get` that are not filter fields.
# Binding fields whose descriptor names the parent entity type.
_PARENT_TYPES = {"crm_lead": 1, "crm_company": 4, "crm_quote": 7}
_RESERVED = {"sort", "order", "start", "select", "filter", "admin_mode", "auth", "image_resize", "lang"}


@dataclass(frozen=True)
class Caller:
    """Who calls: the operating budget is kept per webhook or application."""

    key: str
    user_id: int
    scopes: frozenset[str]


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    cost: float


class Api:
    def __init__(self, db: sqlite3.Connection, tz: tzinfo, costs: Callable[[], CostModel],
                 budget: OperatingBudget, events: Events, application_token: Callable[[str], str],
                 unresolved_reference: str = "empty", history_ids: str = "strings") -> None:
        self.db = db
        self.tz = tz
        self.costs = costs
        self.budget = budget
        self.unresolved_reference = unresolved_reference
        self.history_ids = history_ids
        self.events = events
        self.application_token = application_token   # an application's client id -> its token

    # --- entry point -------------------------------------------------------------------------------

    def call(self, name: str, params: dict[str, Any], caller: Caller, nested: bool = False) -> Outcome:
        started = time.time()
        name = name.lower()     # a portal lower-cases method names: crm.deal.List is crm.deal.list
        method = METHODS.get(name)
        try:
            if method is None:
                raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
            if method.scope is not None and method.scope not in caller.scopes:
                raise ApiError(401, "insufficient_scope", "" if nested else
                               "The request requires higher privileges than provided by the webhook token")
            if method.handler == "batch":
                if nested:
                    raise ApiError(405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
                return self.batch(params, caller, started)
            if self.budget.blocked(caller.key, name):
                raise ApiError(429, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.")
            body, cost = self.dispatch(method, params, caller)
        except ApiError as err:
            return Outcome(err.status, err.body(), 0.0)
        operating, reset_at = self.budget.spend(caller.key, name, cost)
        finish = max(time.time(), started + cost)
        # Live portals report `operating` in every command's `result_time` entry too (recorded 2022-2025).
        body["time"] = wire.time_block(started, finish, self.tz, None if self.budget.limit <= 0 else operating,
                                       reset_at, processing=cost)
        return Outcome(200, body, cost)

    def dispatch(self, method: Method, params: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], float]:
        handler = getattr(self, f"handle_{method.handler}")
        return handler(method, params, caller)

    # --- cost model --------------------------------------------------------------------------------

    def page_cost(self, page: Page) -> float:
        c = self.costs()
        rows = len(page.rows)
        return (c.per_call + rows * (c.per_row + page.width * c.per_row_per_column)
                + page.counted_rows * c.per_counted_row + page.skipped_rows * c.per_skipped_row)

    def envelope(self, page: Page, wrap: str | None) -> tuple[dict[str, Any], float]:
        body: dict[str, Any] = {"result": {wrap: page.rows} if wrap else page.rows, "total": page.total}
        if page.next is not None:
            body["next"] = page.next
        return body, self.page_cost(page)

    # --- handlers ----------------------------------------------------------------------------------

    def list_page(self, entity: Entity, params: dict[str, Any], *, filt: Any, order: Any, strict: bool = False,
                  extra_where: str | None = None, extra_args: tuple[Any, ...] = (),
                  default_order: list[tuple[str, str]] | None = None) -> Page:
        return run_list(self.db, entity, filt=filt, select=wire.lookup(params, "select"), order=order,
                        start=wire.lookup(params, "start"), tz=self.tz, strict_filter=strict,
                        extra_where=extra_where, extra_args=extra_args, default_order=default_order)

    def handle_list(self, method: Method, params: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], float]:
        entity = method.entity
        assert entity is not None
        filt = wire.lookup(params, "filter")
        if method.filter_style == "toplevel":
            merged = dict(filt) if isinstance(filt, dict) else {}
            merged.update({k: v for k, v in params.items() if k.lower() not in _RESERVED})
            filt = merged
        required = method.extra.get("required_filter")
        if required and not (isinstance(filt, dict) and all(
                any(k.lower() == r.lower() for k in filt) for r in required.split(","))):
            raise ApiError(400, "", "Required filter fields ENTITY_ID and ENTITY_TYPE are missing.")
        if method.order_style == "strings":
            sort_field = wire.lookup(params, "sort")
            direction = wire.lookup(params, "order") or "ASC"
            order = {sort_field: direction} if isinstance(sort_field, str) and isinstance(direction, str) else None
        else:
            order = wire.lookup(params, "order")
            if order is not None and not isinstance(order, dict):
                raise ApiError(400, "", "Parameter 'order' must be array.")
        default = [("START_TIME", "ASC")] if entity.name == "activity" else None
        page = self.list_page(entity, params, filt=filt, order=order, default_order=default)
        return self.envelope(page, entity.wrap)

    def handle_fields(self, method: Method, params: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], float]:
        entity = method.entity
        assert entity is not None
        labels = self.userfield_labels()
        result: dict[str, Any] = {}
        for f in entity.fields:
            desc: dict[str, Any] = {"type": f.type, "isRequired": False, "isReadOnly": f.read_only,
                                    "isImmutable": f.name == "CATEGORY_ID", "isMultiple": f.multiple,
                                    "isDynamic": f.is_user_field, "title": f.title}
            if f.deprecated:
                desc["isDeprecated"] = True
            if f.status_type:
                desc["statusType"] = f.status_type
            if f.type in _PARENT_TYPES:
                desc["settings"] = {"parentEntityTypeId": _PARENT_TYPES[f.type]}
            if f.is_user_field:
                label = labels.get(f.name, f.title)
                desc.update({"title": f.name, "listLabel": label, "formLabel": label, "filterLabel": label})
                if f.name in USERFIELD_ENUMS:
                    desc["items"] = [{"ID": str(o[0]), "VALUE": o[2]} for o in self.enum_options(f.name)]
            result[f.name] = desc
        if entity.multifield_owner is not None:
            for type_id in MULTIFIELD_TYPES:
                result[type_id] = {"type": "crm_multifield", "isRequired": False, "isReadOnly": False,
                                   "isImmutable": False, "isMultiple": True, "isDynamic": False,
                                   "title": type_id.title()}
        return {"result": result}, self.costs().per_call

    def userfield_labels(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT field_name, label_en FROM userfields").fetchall())

    def enum_options(self, field_name: str) -> list[tuple[int, int, str, str, str]]:
        """(id, sort, value, def, xml_id) of an enumeration field's options, in order."""
        return self.db.execute(
            "SELECT e.id, e.sort, e.value, e.def, e.xml_id FROM userfield_enums e JOIN userfields f "
            "ON f.id = e.field_id WHERE f.field_name = ? ORDER BY e.sort", (field_name,)).fetchall()

    def handle_userfields(self, method: Method, params: dict[str, Any],
                          caller: Caller) -> tuple[dict[str, Any], float]:
        entity = method.entity
        assert entity is not None
        filt = wire.lookup(params, "filter")
        filt = dict(filt) if isinstance(filt, dict) else {}
        lang = next((str(v).lower() for k, v in list(filt.items()) if k.upper() == "LANG"), None)
        filt = {k: v for k, v in filt.items() if k.upper() != "LANG"}
        order = wire.lookup(params, "order")
        page = self.list_page(entity, params, filt=filt, order=order if isinstance(order, dict) else None,
                              extra_where="t.entity_id = ?", extra_args=(method.extra["owner"],))
        by_id = {row[0]: row[1:] for row in self.db.execute(
            "SELECT id, field_name, label_en, label_ru FROM userfields").fetchall()}
        for row in page.rows:
            field_name, en, ru = by_id[int(row["ID"])]
            label: Any = ru if lang == "ru" else en if lang else {"en": en, "ru": ru}
            for key in ("EDIT_FORM_LABEL", "LIST_COLUMN_LABEL", "LIST_FILTER_LABEL"):
                if key in row:
                    row[key] = label
            if field_name in USERFIELD_ENUMS:
                row["LIST"] = [{"ID": str(i), "SORT": str(s), "VALUE": v, "DEF": d, "XML_ID": x}
                               for i, s, v, d, x in self.enum_options(field_name)]
        return self.envelope(page, None)

    def entity_type(self, params: dict[str, Any]) -> int:
        raw = wire.lookup(params, "entityTypeId")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ApiError(400, "INVALID_ARG_VALUE", "Required parameter 'entityTypeId' is not set") from None

    def handle_stagehistory(self, method: Method, params: dict[str, Any],
                            caller: Caller) -> tuple[dict[str, Any], float]:
        type_id = self.entity_type(params)
        entity = STAGE_HISTORY_ENTITIES.get(type_id)
        if entity is None:
            if type_id in (3, 4, 7) or type_id >= 128:
                raise ApiError(400, "ENTITY_TYPE_NOT_SUPPORTED", f"Entity type {type_id} is not supported")
            raise ApiError(400, 0, "SHIPMENT_DOCUMENT entity is not supported" if type_id == 5 else
                           f"Entity type {type_id} is not supported")
        if self.history_ids == "strings":     # recorded on live portals in 2022-2023: "ID": "7365"
            entity = replace(entity, native_numbers=False)
        order = wire.lookup(params, "order")
        page = self.list_page(entity, params, filt=wire.lookup(params, "filter"),
                              order=order if isinstance(order, dict) else None, strict=True)
        return self.envelope(page, entity.wrap)

    def handle_category(self, method: Method, params: dict[str, Any],
                        caller: Caller) -> tuple[dict[str, Any], float]:
        type_id = self.entity_type(params)
        if type_id not in CATEGORY_ENTITY_TYPES:
            raise ApiError(400, "NOT_FOUND", "Smart process not found")
        entity = method.entity
        assert entity is not None
        page = self.list_page(entity, params, filt=wire.lookup(params, "filter"), order=wire.lookup(params, "order"),
                              extra_where="t.entity_type_id = ?", extra_args=(type_id,),
                              default_order=[("sort", "ASC")])
        return self.envelope(page, entity.wrap)

    def handle_item(self, method: Method, params: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], float]:
        type_id = self.entity_type(params)
        entity = ITEM_ENTITIES.get(type_id)
        if entity is None:
            raise ApiError(400, "NOT_FOUND", "Smart process not found")
        order = wire.lookup(params, "order")
        page = self.list_page(entity, params, filt=wire.lookup(params, "filter"),
                              order=order if isinstance(order, dict) else None, strict=True)
        return self.envelope(page, entity.wrap)

    def handle_user_current(self, method: Method, params: dict[str, Any],
                            caller: Caller) -> tuple[dict[str, Any], float]:
        entity = method.entity
        assert entity is not None
        page = run_list(self.db, entity, filt={"ID": caller.user_id}, select=None, order=None, start=-1, tz=self.tz)
        if not page.rows:
            return {"result": {}}, self.costs().per_call
        user = page.rows[0]
        # user.current writes these two in the portal's own formats, unlike user.get's `{}`.
        registered = wire.parse_datetime(user["DATE_REGISTER"], self.tz) or 0
        login = wire.parse_datetime(user["LAST_LOGIN"], self.tz) or 0
        user["TIMESTAMP_X"] = datetime.fromtimestamp(registered, self.tz).strftime("%d.%m.%Y %H:%M:%S")
        user["LAST_ACTIVITY_DATE"] = datetime.fromtimestamp(login, self.tz).strftime("%Y-%m-%d %H:%M:%S")
        return {"result": user}, self.costs().per_call

    def handle_scope(self, method: Method, params: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], float]:
        return {"result": sorted(caller.scopes)}, self.costs().per_call

    # --- event handlers (applications only) ---------------------------------------------------------

    def _application(self, caller: Caller) -> str:
        if not caller.key.startswith("app:"):
            raise ApiError(401, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method")
        return caller.key.removeprefix("app:")

    def handle_event_bind(self, method: Method, params: dict[str, Any],
                          caller: Caller) -> tuple[dict[str, Any], float]:
        client_id = self._application(caller)
        event, url = str(params.get("event") or params.get("EVENT") or ""), str(params.get("handler") or
                                                                                 params.get("HANDLER") or "")
        if not event or not url.startswith(("http://", "https://")):
            raise ApiError(400, "ERROR_ARGUMENT", "Event and handler are required")
        try:
            self.events.bind(event, url, self.application_token(client_id), client_id)
        except ValueError:
            raise ApiError(400, "ERROR_EVENT_NOT_FOUND", "Event not found") from None
        return {"result": True}, self.costs().per_call

    def handle_event_unbind(self, method: Method, params: dict[str, Any],
                            caller: Caller) -> tuple[dict[str, Any], float]:
        client_id = self._application(caller)
        removed = self.events.unbind(str(params.get("event", "")), str(params.get("handler", "")), client_id)
        return {"result": {"count": removed}}, self.costs().per_call

    def handle_event_get(self, method: Method, params: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], float]:
        client_id = self._application(caller)
        return {"result": [{"event": h.event, "handler": h.url, "auth_type": "0", "offline": 0}
                           for h in self.events.of(client_id)]}, self.costs().per_call

    # --- batch -------------------------------------------------------------------------------------

    def batch(self, params: dict[str, Any], caller: Caller, started: float) -> Outcome:
        commands = wire.lookup(params, "cmd") or {}
        halt = str(wire.lookup(params, "halt", "0")).lower() in ("1", "true", "y")
        if isinstance(commands, list):
            items = [(str(i), c) for i, c in enumerate(commands)]
        elif isinstance(commands, dict):
            items = [(str(k), c) for k, c in commands.items()]
        else:
            err = ApiError(400, "INVALID_ARG_VALUE", "Parameter 'cmd' must be array.")
            return Outcome(err.status, err.body(), 0.0)
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for name, _ in items[MAX_BATCH:]:    # commands past the 50th are refused one by one
            errors[name] = {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
        cost = 0.0
        for name, command in items[:MAX_BATCH]:
            text = self.substitute(str(command), results, nexts)
            method_name, _, query = text.partition("?")
            method_name = method_name.strip().removesuffix(".json")
            outcome = self.call(method_name, wire.parse_php_query(query), caller, nested=True)
            cost += outcome.cost
            if outcome.status != 200:
                errors[name] = {"error": outcome.body.get("error"),
                                "error_description": outcome.body.get("error_description", "")}
                if halt:
                    break
                continue
            results[name] = outcome.body["result"]
            if "total" in outcome.body:
                totals[name] = outcome.body["total"]
            if "next" in outcome.body:
                nexts[name] = outcome.body["next"]
            times[name] = outcome.body["time"]
        finish = max(time.time(), started + cost)
        # The batch's own `time` carries operating figures too; `batch` itself costs no operating time.
        operating, reset_at = self.budget.spend(caller.key, "batch", 0.0)
        body = {"result": {key: value or [] for key, value in (
            ("result", results), ("result_error", errors), ("result_total", totals),
            ("result_next", nexts), ("result_time", times))},
            "time": wire.time_block(started, finish, self.tz, None if self.budget.limit <= 0 else operating,
                                    reset_at, processing=cost)}
        return Outcome(200, body, cost)

    def substitute(self, command: str, results: dict[str, Any], nexts: dict[str, Any]) -> str:
        """Replaces `$result[cmd][path...]` with values of earlier commands and `$next[cmd]` with their next
        page's start (percent-encoded). The command is URL-decoded first, as a portal does: SDKs send
        `%24result%5Breq_0%5D...`."""
        command = _ENCODED_REFERENCE.sub(lambda m: unquote(m.group(0)), command)
        command = _NEXT.sub(lambda m: quote(str(nexts.get(m.group(1), "")), safe=""), command)

        def resolve(match: re.Match[str]) -> str:
            node: Any = results.get(match.group(1))
            for key in _PATH.findall(match.group(2)):
                if isinstance(node, list) and key.lstrip("-").isdigit() and -len(node) <= int(key) < len(node):
                    node = node[int(key)]
                elif isinstance(node, dict) and key in node:
                    node = node[key]
                else:
                    node = None
                    break
            if node is None or isinstance(node, dict | list):
                return "" if self.unresolved_reference == "empty" else match.group(0)
            if isinstance(node, bool):
                node = "1" if node else ""
            return quote(str(node), safe="")

        return _REFERENCE.sub(resolve, command)

