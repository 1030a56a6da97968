"""The simulator's method catalogue: which REST methods exist, the fields each returns and how.

An `Entity` describes one listable object: the SQL it reads, its fields (API name, SQL expression,
wire kind, descriptor type for `*.fields`) and its result shape. Methods are rows in `METHODS`.
Adding a method is a row here, not new code in the server.

Wire kinds:
- `id`/`int`: integers; numeric strings in classic methods, native ints in `crm.item.*` style methods
- `nint`: always a native int (department `SORT`, `RECORD_FILE_ID`)
- `money`: "19999.99" in classic methods, native number in item-style methods
- `str`, `yn` (`"Y"`/`"N"`), `bool` (JSON boolean), `json` (stored JSON text, e.g. `[1]`)
- `datetime`, `date` (stored as unix seconds; rendered in the portal time zone; date-only fields as midnight
  UTC written in the portal's offset; empty ones as `""` in classic methods, as live portals send them)
"""

from __future__ import annotations

from dataclasses import dataclass, field

MULTIFIELD_TYPES = ("PHONE", "EMAIL", "WEB", "IM")

# Entity type ids of the CRM (api-reference/crm/data-types.md#object_type).
LEAD, DEAL, CONTACT, COMPANY, SMART_INVOICE = 1, 2, 3, 4, 31


@dataclass(frozen=True)
class Field:
    name: str
    expr: str
    kind: str
    type: str = "string"
    title: str = ""
    status_type: str | None = None
    read_only: bool = False
    multiple: bool = False
    deprecated: bool = False

    @property
    def is_user_field(self) -> bool:
        return self.name.upper().startswith("UF_") or self.name.startswith("ufCrm")


@dataclass(frozen=True)
class Entity:
    name: str
    source: str                     # table or view
    where: str                      # rows that exist (deleted rows vanish)
    fields: tuple[Field, ...]
    id_field: str = "ID"
    item_style: bool = False        # camelCase keys and native numbers (crm.item.*, stagehistory)
    native_numbers: bool = False
    multifield_owner: int | None = None   # entity type id in the multifields table
    wrap: str | None = None         # result wrapped as {wrap: [...]}


def F(name: str, kind: str = "str", type_: str | None = None, title: str | None = None, *,
      expr: str | None = None, status_type: str | None = None, read_only: bool = False,
      multiple: bool = False, deprecated: bool = False) -> Field:
    default_type = {"id": "integer", "int": "integer", "nint": "integer", "money": "double",
                    "yn": "char", "bool": "boolean", "datetime": "datetime", "date": "date",
                    "json": "string", "str": "string"}[kind]
    return Field(name=name, expr=expr if expr is not None else _column(name), kind=kind,
                 type=type_ or default_type, title=title or name.replace("_", " ").title(),
                 status_type=status_type, read_only=read_only, multiple=multiple, deprecated=deprecated)


def _column(name: str) -> str:
    out = []
    for ch in name:
        if ch.isupper() and out and out[-1] != "_" and not name.isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _const(name: str, value: str | None, kind: str = "str", type_: str | None = None) -> Field:
    literal = "NULL" if value is None else "'" + value.replace("'", "''") + "'"
    return F(name, kind, type_, expr=literal)


def _has_multifield(owner: int, type_id: str) -> str:
    return (f"CASE WHEN EXISTS (SELECT 1 FROM multifields m WHERE m.entity_type_id = {owner} "
            f"AND m.entity_id = t.id AND m.type_id = '{type_id}') THEN 'Y' ELSE 'N' END")


_UTM = tuple(_const(f"UTM_{s}", None) for s in ("SOURCE", "MEDIUM", "CAMPAIGN", "CONTENT", "TERM"))
_ORIGIN = (_const("ORIGINATOR_ID", None), _const("ORIGIN_ID", None))
_ADDRESS = (F("ADDRESS"), _const("ADDRESS_2", None), F("ADDRESS_CITY"), _const("ADDRESS_POSTAL_CODE", None),
            _const("ADDRESS_REGION", None), _const("ADDRESS_PROVINCE", None), F("ADDRESS_COUNTRY"),
            _const("ADDRESS_COUNTRY_CODE", None))
_AUDIT = (F("ASSIGNED_BY_ID", "id", "user", "Responsible"),
          F("CREATED_BY_ID", "id", "user", "Created By", read_only=True),
          F("MODIFY_BY_ID", "id", "user", "Modified By", read_only=True),
          F("DATE_CREATE", "datetime", title="Creation Date", read_only=True),
          F("DATE_MODIFY", "datetime", title="Modification Date", read_only=True))
_LAST_ACTIVITY = (F("LAST_ACTIVITY_TIME", "datetime", read_only=True),
                  F("LAST_ACTIVITY_BY", "id", "user", read_only=True))


DEAL_ENTITY = Entity(
    name="deal", source="deals t", where="t.is_deleted = 0", multifield_owner=None,
    fields=(
        F("ID", "id", title="ID", read_only=True),
        F("TITLE", title="Title"),
        F("TYPE_ID", "str", "crm_status", "Type", status_type="DEAL_TYPE"),
        F("CATEGORY_ID", "id", "crm_category", "Sales Funnel"),
        F("STAGE_ID", "str", "crm_status", "Deal Stage", status_type="DEAL_STAGE"),
        F("STAGE_SEMANTIC_ID", title="Stage Group", read_only=True),
        F("IS_NEW", "yn", title="New Deal", read_only=True,
          expr="CASE WHEN t.stage_id LIKE '%NEW' THEN 'Y' ELSE 'N' END"),
        _const("IS_RECURRING", "N", "yn"),
        F("IS_RETURN_CUSTOMER", "yn", title="Repeat Deal"),
        _const("IS_REPEATED_APPROACH", "N", "yn"),
        F("PROBABILITY", "int", title="Probability"),
        F("CURRENCY_ID", "str", "crm_currency", "Currency"),
        F("OPPORTUNITY", "money", title="Amount"),
        _const("IS_MANUAL_OPPORTUNITY", "Y", "yn"),
        _const("TAX_VALUE", "0.00", "money"),
        F("COMPANY_ID", "id", "crm_company", "Company"),
        F("CONTACT_ID", "id", "crm_contact", "Contact", deprecated=True),
        _const("QUOTE_ID", None, "id", "crm_quote"),
        F("BEGINDATE", "date", title="Start Date"),
        F("CLOSEDATE", "date", title="Close Date"),
        _const("OPENED", "Y", "yn"),
        F("CLOSED", "yn", title="Closed"),
        F("COMMENTS", title="Comment"),
        *_AUDIT[:3],
        F("MOVED_BY_ID", "id", "user", read_only=True),
        *_AUDIT[3:],
        F("MOVED_TIME", "datetime", read_only=True),
        F("SOURCE_ID", "str", "crm_status", "Source", status_type="SOURCE"),
        F("SOURCE_DESCRIPTION", title="Additional Info about Source"),
        F("LEAD_ID", "id", "crm_lead", "Lead", read_only=True),
        _const("ADDITIONAL_INFO", None),
        _const("LOCATION_ID", None, type_="location"),
        *_ORIGIN, *_UTM, *_LAST_ACTIVITY,
        F("UF_CRM_LOSS_REASON", "str", "enumeration", "Loss reason"),
        F("UF_CRM_DEAL_CHANNEL", "str", "string", "Sales channel"),
        F("UF_CRM_CONTRACT_DATE", "date", "date", "Contract date"),
        F("UF_CRM_PRIORITY_CLIENT", "bool", "boolean", "Priority client"),
        F("UF_CRM_EXPECTED_MARGIN", "money", "double", "Expected margin, %"),
    ))

LEAD_ENTITY = Entity(
    name="lead", source="leads t", where="t.is_deleted = 0", multifield_owner=LEAD,
    fields=(
        F("ID", "id", title="ID", read_only=True),
        F("TITLE", title="Lead Name"),
        _const("HONORIFIC", None, type_="crm_status"),
        F("NAME", title="First name"), F("SECOND_NAME", title="Second name"),
        F("LAST_NAME", title="Last name"),
        F("COMPANY_TITLE", title="Company name"),
        F("COMPANY_ID", "id", "crm_company", "Company"),
        F("CONTACT_ID", "id", "crm_contact", "Contact"),
        _const("IS_RETURN_CUSTOMER", "N", "yn"),
        F("BIRTHDATE", "date", title="Date of birth"),
        F("SOURCE_ID", "str", "crm_status", "Source", status_type="SOURCE"),
        _const("SOURCE_DESCRIPTION", None),
        F("STATUS_ID", "str", "crm_status", "Status", status_type="STATUS"),
        _const("STATUS_DESCRIPTION", None),
        F("POST", title="Position"),
        F("COMMENTS", title="Comment"),
        F("CURRENCY_ID", "str", "crm_currency", "Currency"),
        F("OPPORTUNITY", "money", title="Amount"),
        _const("IS_MANUAL_OPPORTUNITY", "N", "yn"),
        F("HAS_PHONE", "yn", expr=_has_multifield(LEAD, "PHONE"), read_only=True),
        F("HAS_EMAIL", "yn", expr=_has_multifield(LEAD, "EMAIL"), read_only=True),
        _const("HAS_IMOL", "N", "yn"),
        *_AUDIT[:3], *_AUDIT[3:],
        F("DATE_CLOSED", "datetime", read_only=True),
        F("STATUS_SEMANTIC_ID", read_only=True),
        _const("OPENED", "Y", "yn"),
        *_ORIGIN,
        F("MOVED_BY_ID", "id", "user", read_only=True),
        F("MOVED_TIME", "datetime", read_only=True),
        *_ADDRESS, *_UTM, *_LAST_ACTIVITY,
        F("UF_CRM_LANDING", "str", "string", "Landing page"),
    ))

CONTACT_ENTITY = Entity(
    name="contact", source="contacts t", where="t.is_deleted = 0", multifield_owner=CONTACT,
    fields=(
        F("ID", "id", title="ID", read_only=True),
        F("POST", title="Position"),
        F("COMMENTS", title="Comment"),
        _const("HONORIFIC", None, type_="crm_status"),
        F("NAME", title="First name"), F("SECOND_NAME", title="Second name"),
        F("LAST_NAME", title="Last name"),
        _const("PHOTO", None, type_="file"),
        F("LEAD_ID", "id", "crm_lead", "Lead"),
        F("TYPE_ID", "str", "crm_status", "Contact type", status_type="CONTACT_TYPE"),
        F("SOURCE_ID", "str", "crm_status", "Source", status_type="SOURCE"),
        _const("SOURCE_DESCRIPTION", None),
        F("COMPANY_ID", "id", "crm_company", "Company"),
        F("BIRTHDATE", "date", title="Date of birth"),
        _const("EXPORT", "Y", "yn"),
        F("HAS_PHONE", "yn", expr=_has_multifield(CONTACT, "PHONE"), read_only=True),
        F("HAS_EMAIL", "yn", expr=_has_multifield(CONTACT, "EMAIL"), read_only=True),
        _const("HAS_IMOL", "N", "yn"),
        *_AUDIT[3:], *_AUDIT[:3],
        _const("OPENED", "Y", "yn"),
        *_ORIGIN, *_LAST_ACTIVITY, *_UTM, *_ADDRESS,
        F("UF_CRM_CLIENT_SEGMENT", "str", "enumeration", "Client segment"),
    ))

COMPANY_ENTITY = Entity(
    name="company", source="companies t", where="t.is_deleted = 0", multifield_owner=COMPANY,
    fields=(
        F("ID", "id", title="ID", read_only=True),
        F("TITLE", title="Company Name"),
        F("COMPANY_TYPE", "str", "crm_status", "Company type", status_type="COMPANY_TYPE"),
        F("INDUSTRY", "str", "crm_status", "Industry", status_type="INDUSTRY"),
        F("EMPLOYEES", "str", "crm_status", "Employees", status_type="EMPLOYEES"),
        F("REVENUE", "money", title="Annual revenue"),
        F("CURRENCY_ID", "str", "crm_currency", "Currency"),
        F("COMMENTS", title="Comment"),
        _const("IS_MY_COMPANY", "N", "yn"),
        *_AUDIT,
        _const("OPENED", "Y", "yn"),
        F("LEAD_ID", "id", "crm_lead", "Lead"),
        F("HAS_PHONE", "yn", expr=_has_multifield(COMPANY, "PHONE"), read_only=True),
        F("HAS_EMAIL", "yn", expr=_has_multifield(COMPANY, "EMAIL"), read_only=True),
        _const("HAS_IMOL", "N", "yn"),
        *_ORIGIN, *_LAST_ACTIVITY, *_UTM, *_ADDRESS,
        F("UF_CRM_INN", "str", "string", "Tax ID (INN)"),
    ))

ACTIVITY_ENTITY = Entity(
    name="activity", source="activities t", where="t.is_deleted = 0",
    fields=(
        F("ID", "id"), F("OWNER_ID", "id"), F("OWNER_TYPE_ID", "int"), F("TYPE_ID", "int"),
        F("PROVIDER_ID"), F("PROVIDER_TYPE_ID"), _const("PROVIDER_GROUP_ID", None),
        F("ASSOCIATED_ENTITY_ID", "id", expr="coalesce((SELECT k.id FROM tasks k WHERE k.activity_id = t.id), 0)"),
        F("SUBJECT"),
        F("CREATED", "datetime"), F("LAST_UPDATED", "datetime"), F("START_TIME", "datetime"),
        F("END_TIME", "datetime"), F("DEADLINE", "datetime"), F("COMPLETED", "yn"),
        F("STATUS", "int", expr="CASE WHEN t.completed = 'Y' THEN 2 ELSE 1 END"),
        F("RESPONSIBLE_ID", "id", "user"), F("PRIORITY", "int"),
        _const("NOTIFY_TYPE", "1", "int"), _const("NOTIFY_VALUE", "15", "int"),
        F("DESCRIPTION"), _const("DESCRIPTION_TYPE", "1", "int"), F("DIRECTION", "int"),
        _const("LOCATION", ""), _const("SETTINGS", "[]", "json"), *_ORIGIN,
        F("AUTHOR_ID", "id", "user"), F("EDITOR_ID", "id", "user"),
        _const("PROVIDER_PARAMS", "[]", "json"), _const("PROVIDER_DATA", None),
        _const("RESULT_MARK", "0", "int"), _const("RESULT_VALUE", None), _const("RESULT_SUM", None),
        _const("RESULT_CURRENCY_ID", None), _const("RESULT_STATUS", "0", "int"),
        _const("RESULT_STREAM", "0", "int"), _const("RESULT_SOURCE_ID", None),
        _const("AUTOCOMPLETE_RULE", "0", "int"),
    ))

# Stage history: UPPER_CASE keys, native ints, wrapped in `items`; leads carry STATUS_* instead.
_HISTORY_COMMON = (F("ID", "id"), F("TYPE_ID", "int"), F("OWNER_ID", "id"), F("CREATED_TIME", "datetime"))


def _history(entity_type_id: int) -> Entity:
    if entity_type_id == LEAD:
        extra = (F("STATUS_SEMANTIC_ID", expr="t.stage_semantic_id"), F("STATUS_ID", expr="t.stage_id"))
    else:
        extra = (F("CATEGORY_ID", "id"), F("STAGE_SEMANTIC_ID"), F("STAGE_ID"))
    return Entity(name=f"stagehistory{entity_type_id}", source="stage_history t",
                  where=f"t.entity_type_id = {entity_type_id} AND t.is_deleted = 0", fields=_HISTORY_COMMON + extra,
                  native_numbers=True, wrap="items")


STAGE_HISTORY_ENTITIES = {t: _history(t) for t in (LEAD, DEAL, SMART_INVOICE)}

SMART_INVOICE_ENTITY = Entity(
    name="smart_invoice", source="invoices t", where="t.is_deleted = 0", id_field="id", item_style=True,
    native_numbers=True, wrap="items",
    fields=(
        F("id", "id"), F("xmlId", expr="NULL"), F("title"), F("accountNumber"),
        F("stageId"), F("previousStageId"), F("categoryId", "id"),
        F("begindate", "date"), F("closedate", "date"), F("opportunity", "money"),
        F("isManualOpportunity", "yn", expr="'Y'"), F("taxValue", "money", expr="0"),
        F("currencyId"), F("companyId", "id"), F("contactId", "id"), F("mycompanyId", "id", expr="0"),
        F("sourceId", expr="NULL"), F("comments"), F("movedBy", "id"), F("movedTime", "datetime"),
        F("parentId2", "id"), F("createdTime", "datetime"), F("updatedTime", "datetime"),
        F("createdBy", "id"), F("updatedBy", "id"), F("assignedById", "id"), F("opened", "yn", expr="'Y'"),
    ))

STATUS_ENTITY = Entity(
    name="status", source="statuses t", where="1 = 1",
    fields=(F("ID", "id"), F("ENTITY_ID"), F("STATUS_ID"), F("NAME"), F("NAME_INIT"), F("SORT", "int"),
            F("SYSTEM", "yn"), F("CATEGORY_ID", "id"), F("COLOR"), F("SEMANTICS"),
            F("EXTRA", "json")))

CATEGORY_ENTITY = Entity(
    name="category", source="categories t", where="1 = 1", id_field="id", item_style=True,
    native_numbers=True, wrap="categories",
    fields=(F("id", "id"), F("name"), F("sort", "int"), F("entityTypeId", "int"), F("isDefault", "yn"),
            F("originId", expr="CASE WHEN t.id = 0 THEN NULL ELSE '' END"),
            F("originatorId", expr="CASE WHEN t.id = 0 THEN NULL ELSE '' END")))

USER_ENTITY = Entity(
    name="user", source="users t", where="1 = 1",
    fields=(F("ID", "id"), F("ACTIVE", "bool"), F("NAME"), F("LAST_NAME"), F("SECOND_NAME"), F("EMAIL"),
            F("LAST_LOGIN", "datetime"), F("DATE_REGISTER", "datetime"), _const("TIME_ZONE", ""),
            F("IS_ONLINE", "yn"), _const("TIMESTAMP_X", "{}", "json"),
            _const("LAST_ACTIVITY_DATE", "{}", "json"), F("PERSONAL_GENDER"), _const("PERSONAL_WWW", ""),
            F("PERSONAL_BIRTHDAY", "date"), F("PERSONAL_MOBILE"), _const("PERSONAL_CITY", ""),
            F("WORK_PHONE"),
            F("WORK_POSITION"), _const("UF_EMPLOYMENT_DATE", ""), F("UF_DEPARTMENT", "json"),
            F("USER_TYPE")))

DEPARTMENT_ENTITY = Entity(
    name="department", source="departments t", where="1 = 1",
    fields=(F("ID", "id"), F("NAME"), F("SORT", "nint"), F("PARENT", "id"), F("UF_HEAD", "id")))

CALL_ENTITY = Entity(
    name="call", source="calls t", where="1 = 1",
    fields=(F("ID", "id"), F("PORTAL_USER_ID", "id"), F("PORTAL_NUMBER"), F("PHONE_NUMBER"), F("CALL_ID"),
            _const("EXTERNAL_CALL_ID", None), _const("CALL_CATEGORY", "external"), _const("CALL_LOG", None),
            F("CALL_DURATION", "int"), F("CALL_START_DATE", "datetime"), _const("CALL_RECORD_URL", ""),
            _const("CALL_VOTE", None), _const("COST", "0.0000"), F("COST_CURRENCY"),
            F("CALL_FAILED_CODE"), F("CALL_FAILED_REASON"), F("CRM_ENTITY_TYPE"), F("CRM_ENTITY_ID", "id"),
            F("CRM_ACTIVITY_ID", "id"), _const("REST_APP_ID", None), _const("REST_APP_NAME", None),
            _const("TRANSCRIPT_ID", None), _const("TRANSCRIPT_PENDING", "N"), F("SESSION_ID", "id"),
            _const("REDIAL_ATTEMPT", None), _const("COMMENT", None),
            F("RECORD_DURATION", "str", expr="CASE WHEN t.call_duration > 0 THEN CAST(t.call_duration AS TEXT) END"),
            F("RECORD_FILE_ID", "nint"), F("CALL_TYPE", "int")))

# tasks.task.list (scope task): camelCase keys, numbers as strings (recorded live), `{"tasks": [...]}`; filters,
# order and select name fields in UPPER_CASE (`>ID`, `>=CHANGED_DATE`, `UF_CRM_TASK`).
TASK_ENTITY = Entity(
    name="task", source="tasks t", where="t.is_deleted = 0", id_field="id", wrap="tasks",
    fields=(F("id", "id"), F("title"), F("status", "int"), _const("subStatus", "-1", "int"),
            F("responsibleId", "id", expr="t.responsible_id"), F("createdBy", "id", expr="t.created_by"),
            F("createdDate", "datetime", expr="t.created_date"), F("changedDate", "datetime", expr="t.changed_date"),
            F("closedDate", "datetime", expr="t.closed_date"), F("deadline", "datetime"),
            F("ufCrmTask", "json", expr="CASE WHEN t.crm_owner_id IS NULL THEN '[]' ELSE json_array(CASE "
              "t.crm_owner_type_id WHEN 1 THEN 'L_' WHEN 2 THEN 'D_' WHEN 3 THEN 'C_' ELSE 'CO_' END "
              "|| t.crm_owner_id) END"),
            _const("group", "[]", "json")))

COMMENT_ENTITY = Entity(
    name="timeline_comment", source="timeline_comments t",
    where="(t.entity_type != 'deal' OR EXISTS (SELECT 1 FROM deals d WHERE d.id = t.entity_id AND d.is_deleted = 0))",
    fields=(F("ID", "id"), F("ENTITY_ID", "id"), F("ENTITY_TYPE"), F("CREATED", "datetime"), F("COMMENT"),
            F("AUTHOR_ID", "id"), F("FILES", "json")))

USERFIELD_ENTITY = Entity(
    name="userfield", source="userfields t", where="1 = 1",
    fields=(F("ID", "id"), F("ENTITY_ID"), F("FIELD_NAME"), F("USER_TYPE_ID"), _const("XML_ID", None),
            F("SORT", "int"), F("MULTIPLE", "yn"), F("MANDATORY", "yn"), _const("SHOW_FILTER", "E"),
            _const("SHOW_IN_LIST", "Y", "yn"), _const("EDIT_IN_LIST", "Y", "yn"),
            _const("IS_SEARCHABLE", "N", "yn"), F("SETTINGS", "json"),
            F("EDIT_FORM_LABEL", expr="t.label_en"), F("LIST_COLUMN_LABEL", expr="t.label_en"),
            F("LIST_FILTER_LABEL", expr="t.label_en"), _const("ERROR_MESSAGE", None),
            _const("HELP_MESSAGE", None)))

# User-field definitions that the generator writes (one row per UF field of the entities above).
USERFIELDS: tuple[tuple[str, str, str, str, str], ...] = (
    # entity_id, field_name, user_type_id, label_en, label_ru
    ("CRM_DEAL", "UF_CRM_LOSS_REASON", "enumeration", "Loss reason", "Причина проигрыша"),
    ("CRM_DEAL", "UF_CRM_DEAL_CHANNEL", "string", "Sales channel", "Канал продаж"),
    ("CRM_DEAL", "UF_CRM_CONTRACT_DATE", "date", "Contract date", "Дата договора"),
    ("CRM_DEAL", "UF_CRM_PRIORITY_CLIENT", "boolean", "Priority client", "Приоритетный клиент"),
    ("CRM_DEAL", "UF_CRM_EXPECTED_MARGIN", "double", "Expected margin, %", "Ожидаемая маржа, %"),
    ("CRM_LEAD", "UF_CRM_LANDING", "string", "Landing page", "Посадочная страница"),
    ("CRM_CONTACT", "UF_CRM_CLIENT_SEGMENT", "enumeration", "Client segment", "Сегмент клиента"),
    ("CRM_COMPANY", "UF_CRM_INN", "string", "Tax ID (INN)", "ИНН"),
)

USERFIELD_ENUMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # field_name -> (xml_id, value_en, value_ru) options, in SORT order; a portal holds them in its language,
    # as its administrator typed them
    "UF_CRM_LOSS_REASON": (("PRICE", "Too expensive", "Дорого"),
                           ("COMPETITOR", "Chose a competitor", "Выбрали конкурента"),
                           ("BUDGET", "No budget", "Нет бюджета"),
                           ("NO_RESPONSE", "Stopped responding", "Перестал отвечать"),
                           ("NOT_TARGET", "Not a target client", "Нецелевой клиент")),
    "UF_CRM_CLIENT_SEGMENT": (("RETAIL", "Retail", "Розница"), ("SMB", "Small business", "Малый бизнес"),
                              ("ENTERPRISE", "Enterprise", "Крупный бизнес")),
}


@dataclass(frozen=True)
class Method:
    name: str
    scope: str | None               # None: callable with any scope
    handler: str                    # list | fields | userfields | stagehistory | category | item | ...
    entity: Entity | None = None
    order_style: str = "object"     # object: order={F: ASC}; strings: sort=F&order=ASC
    filter_style: str = "object"    # object: filter={...}; toplevel: filter keys as parameters too
    extra: dict[str, str] = field(default_factory=dict)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("crm.deal.list", "crm", "list", DEAL_ENTITY),
    Method("crm.lead.list", "crm", "list", LEAD_ENTITY),
    Method("crm.contact.list", "crm", "list", CONTACT_ENTITY),
    Method("crm.company.list", "crm", "list", COMPANY_ENTITY),
    Method("crm.activity.list", "crm", "list", ACTIVITY_ENTITY),
    Method("crm.status.list", "crm", "list", STATUS_ENTITY),
    Method("crm.timeline.comment.list", "crm", "list", COMMENT_ENTITY,
           extra={"required_filter": "ENTITY_ID,ENTITY_TYPE"}),
    Method("crm.deal.fields", "crm", "fields", DEAL_ENTITY),
    Method("crm.lead.fields", "crm", "fields", LEAD_ENTITY),
    Method("crm.contact.fields", "crm", "fields", CONTACT_ENTITY),
    Method("crm.company.fields", "crm", "fields", COMPANY_ENTITY),
    Method("crm.deal.userfield.list", "crm", "userfields", USERFIELD_ENTITY, extra={"owner": "CRM_DEAL"}),
    Method("crm.lead.userfield.list", "crm", "userfields", USERFIELD_ENTITY, extra={"owner": "CRM_LEAD"}),
    Method("crm.contact.userfield.list", "crm", "userfields", USERFIELD_ENTITY,
           extra={"owner": "CRM_CONTACT"}),
    Method("crm.company.userfield.list", "crm", "userfields", USERFIELD_ENTITY,
           extra={"owner": "CRM_COMPANY"}),
    Method("crm.stagehistory.list", "crm", "stagehistory"),
    Method("crm.category.list", "crm", "category", CATEGORY_ENTITY),
    Method("crm.item.list", "crm", "item"),
    Method("user.get", "user", "list", USER_ENTITY, order_style="strings", filter_style="toplevel"),
    Method("user.current", None, "user_current", USER_ENTITY),
    Method("department.get", "department", "list", DEPARTMENT_ENTITY, order_style="strings",
           filter_style="toplevel"),
    Method("voximplant.statistic.get", "telephony", "list", CALL_ENTITY, order_style="strings"),
    Method("tasks.task.list", "task", "list", TASK_ENTITY),
    Method("scope", None, "scope"),
    Method("event.bind", None, "event_bind"),
    Method("event.unbind", None, "event_unbind"),
    Method("event.get", None, "event_get"),
    Method("batch", None, "batch"),
)}

ITEM_ENTITIES = {SMART_INVOICE: SMART_INVOICE_ENTITY}
CATEGORY_ENTITY_TYPES = (DEAL, SMART_INVOICE)
