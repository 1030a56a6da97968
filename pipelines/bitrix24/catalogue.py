"""The entity catalogue: one row per Bitrix24 entity the warehouse loads. Everything else is driven by it.

Columns of a row: the REST method and its fixed parameters, the result shape, the id field and how the
method orders, the cursor of incremental loads (a modification time, or the id for append-only
entities, or none for small directories reloaded whole), the creation field backfills can use, the
fields to select (narrow, custom `UF_*` fields discovered at run time), their types, the scope it needs,
and how rows are written: merge on the id, or `versions` for small directories whose history matters
(users, departments, stages, pipelines): a row each time a record changes or disappears, written
insert-only on (id, version, previous version), so a rerun can never add a version twice.

Types: `id` (BIGINT), `int`, `money` (DECIMAL(18,2)), `float`, `datetime` (timestamp with time zone),
`date`, `yn` (Y/N as boolean), `bool`, `str`, `json` (kept as text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_DEAL_TYPES = {
    "ID": "id", "TITLE": "str", "TYPE_ID": "str", "CATEGORY_ID": "id", "STAGE_ID": "str", "STAGE_SEMANTIC_ID": "str",
    "IS_RETURN_CUSTOMER": "yn", "PROBABILITY": "int", "CURRENCY_ID": "str", "OPPORTUNITY": "money",
    "COMPANY_ID": "id", "CONTACT_ID": "id", "LEAD_ID": "id", "BEGINDATE": "date", "CLOSEDATE": "date",
    "CLOSED": "yn", "ASSIGNED_BY_ID": "id", "CREATED_BY_ID": "id", "MODIFY_BY_ID": "id", "MOVED_BY_ID": "id",
    "DATE_CREATE": "datetime", "DATE_MODIFY": "datetime", "MOVED_TIME": "datetime", "SOURCE_ID": "str",
    "LAST_ACTIVITY_TIME": "datetime", "LAST_ACTIVITY_BY": "id", "COMMENTS": "str", "OPENED": "yn",
}
_LEAD_TYPES = {
    "ID": "id", "TITLE": "str", "NAME": "str", "LAST_NAME": "str", "SECOND_NAME": "str", "COMPANY_TITLE": "str",
    "COMPANY_ID": "id", "CONTACT_ID": "id", "SOURCE_ID": "str", "STATUS_ID": "str", "STATUS_SEMANTIC_ID": "str",
    "CURRENCY_ID": "str", "OPPORTUNITY": "money", "ASSIGNED_BY_ID": "id", "CREATED_BY_ID": "id",
    "DATE_CREATE": "datetime", "DATE_MODIFY": "datetime", "DATE_CLOSED": "datetime", "MOVED_TIME": "datetime",
    "HAS_PHONE": "yn", "HAS_EMAIL": "yn", "COMMENTS": "str", "POST": "str",
}
_CONTACT_TYPES = {
    "ID": "id", "NAME": "str", "SECOND_NAME": "str", "LAST_NAME": "str", "POST": "str", "COMMENTS": "str",
    "TYPE_ID": "str", "SOURCE_ID": "str", "COMPANY_ID": "id", "LEAD_ID": "id", "BIRTHDATE": "date",
    "HAS_PHONE": "yn", "HAS_EMAIL": "yn", "ASSIGNED_BY_ID": "id", "CREATED_BY_ID": "id", "MODIFY_BY_ID": "id",
    "DATE_CREATE": "datetime", "DATE_MODIFY": "datetime", "ADDRESS_CITY": "str", "LAST_ACTIVITY_TIME": "datetime",
}
_COMPANY_TYPES = {
    "ID": "id", "TITLE": "str", "COMPANY_TYPE": "str", "INDUSTRY": "str", "EMPLOYEES": "str", "REVENUE": "money",
    "CURRENCY_ID": "str", "COMMENTS": "str", "HAS_PHONE": "yn", "HAS_EMAIL": "yn", "ASSIGNED_BY_ID": "id",
    "CREATED_BY_ID": "id", "MODIFY_BY_ID": "id", "DATE_CREATE": "datetime", "DATE_MODIFY": "datetime",
    "LEAD_ID": "id", "ADDRESS_CITY": "str", "LAST_ACTIVITY_TIME": "datetime",
}
_ACTIVITY_TYPES = {
    "ID": "id", "OWNER_ID": "id", "OWNER_TYPE_ID": "int", "TYPE_ID": "int", "PROVIDER_ID": "str",
    "PROVIDER_TYPE_ID": "str", "SUBJECT": "str", "CREATED": "datetime", "LAST_UPDATED": "datetime",
    "START_TIME": "datetime", "END_TIME": "datetime", "DEADLINE": "datetime", "COMPLETED": "yn", "STATUS": "int",
    "RESPONSIBLE_ID": "id", "AUTHOR_ID": "id", "DIRECTION": "int", "PRIORITY": "int", "ASSOCIATED_ENTITY_ID": "id",
}
_HISTORY_TYPES = {"ID": "id", "TYPE_ID": "int", "OWNER_ID": "id", "CREATED_TIME": "datetime", "CATEGORY_ID": "id",
                  "STAGE_SEMANTIC_ID": "str", "STAGE_ID": "str", "STATUS_ID": "str", "STATUS_SEMANTIC_ID": "str"}
_INVOICE_TYPES = {
    "id": "id", "title": "str", "accountNumber": "str", "stageId": "str", "previousStageId": "str",
    "categoryId": "id", "begindate": "date", "closedate": "date", "opportunity": "money", "currencyId": "str",
    "companyId": "id", "contactId": "id", "parentId2": "id", "createdTime": "datetime", "updatedTime": "datetime",
    "movedTime": "datetime", "createdBy": "id", "updatedBy": "id", "assignedById": "id", "movedBy": "id",
}
_CALL_TYPES = {
    "ID": "id", "PORTAL_USER_ID": "id", "PHONE_NUMBER": "str", "CALL_ID": "str", "CALL_TYPE": "int",
    "CALL_DURATION": "int", "CALL_START_DATE": "datetime", "CALL_FAILED_CODE": "str", "CALL_FAILED_REASON": "str",
    "CRM_ENTITY_TYPE": "str", "CRM_ENTITY_ID": "id", "CRM_ACTIVITY_ID": "id", "COST": "money",
    "COST_CURRENCY": "str",
}
# tasks.task.list answers camelCase keys (`changedDate`) to UPPER_CASE filters, order and select (`CHANGED_DATE`).
_TASK_TYPES = {"id": "id", "title": "str", "status": "int", "responsibleId": "id", "createdBy": "id",
               "createdDate": "datetime", "changedDate": "datetime", "closedDate": "datetime", "deadline": "datetime",
               "ufCrmTask": "json"}
_USER_TYPES = {"ID": "id", "ACTIVE": "bool", "NAME": "str", "LAST_NAME": "str", "SECOND_NAME": "str",
               "EMAIL": "str", "WORK_POSITION": "str", "UF_DEPARTMENT": "json", "USER_TYPE": "str",
               "DATE_REGISTER": "datetime"}
_DEPARTMENT_TYPES = {"ID": "id", "NAME": "str", "SORT": "int", "PARENT": "id", "UF_HEAD": "id"}
_STATUS_TYPES = {"ID": "id", "ENTITY_ID": "str", "STATUS_ID": "str", "NAME": "str", "SORT": "int", "SYSTEM": "yn",
                 "CATEGORY_ID": "id", "SEMANTICS": "str", "COLOR": "str"}
_CATEGORY_TYPES = {"id": "id", "name": "str", "sort": "int", "entityTypeId": "int", "isDefault": "yn"}
_USERFIELD_TYPES = {"ID": "id", "ENTITY_ID": "str", "FIELD_NAME": "str", "USER_TYPE_ID": "str", "SORT": "int",
                    "MULTIPLE": "yn", "MANDATORY": "yn", "EDIT_FORM_LABEL": "str", "LIST_COLUMN_LABEL": "str",
                    "SETTINGS": "json"}


@dataclass(frozen=True)
class Entity:
    name: str                                  # dlt resource and raw table
    method: str
    types: dict[str, str]                      # selected fields and their types
    params: dict[str, Any] = field(default_factory=dict)
    shape: str = "list"                        # list | items | categories
    id_field: str = "ID"
    order: str = "object"                      # object: order={ID: ASC}; strings: SORT/ORDER; none: offset paging
    cursor: str | None = None                  # incremental field; == id_field for append-only; None: snapshot
    created: str | None = None                 # creation field (backfill by creation date)
    scope: str = "crm"
    userfields: str | None = None              # method listing this entity's custom fields
    multifields: tuple[str, ...] = ()          # PHONE, EMAIL: child tables
    write: str = "merge"                       # merge | versions
    filter_key: str = "filter"                 # FILTER for voximplant
    sweep: bool = True                         # deleted rows are found by the id-only sweep
    camel_rows: bool = False                   # rows answer camelCase keys to UPPER_CASE requests (tasks)
    optional: bool = False                     # a webhook without its scope loads the rest, with a warning

    @property
    def incremental(self) -> bool:
        return self.cursor is not None and self.cursor != self.id_field

    @property
    def append_only(self) -> bool:
        return self.cursor == self.id_field

    @property
    def snapshot(self) -> bool:
        return self.cursor is None

    def select(self, custom: tuple[str, ...] = ()) -> list[str]:
        names = [*self.types, *custom, *self.multifields]
        return [_upper_snake(n) for n in names] if self.camel_rows else names

    @property
    def id_key(self) -> str:
        """The id's key in the rows (`id` where a request says `ID`, as tasks answer)."""
        return self.row_key(self.id_field)

    def row_key(self, field: str) -> str:
        """The key rows carry for a field a request names (`CHANGED_DATE` -> `changedDate` for tasks)."""
        if not self.camel_rows:
            return field
        head, *rest = field.lower().split("_")
        return head + "".join(part.title() for part in rest)


def _upper_snake(name: str) -> str:
    return "".join(f"_{c}" if c.isupper() else c for c in name).upper()


ENTITIES: tuple[Entity, ...] = (
    Entity("deals", "crm.deal.list", _DEAL_TYPES, cursor="DATE_MODIFY", created="DATE_CREATE",
           userfields="crm.deal.userfield.list"),
    Entity("deal_stage_history", "crm.stagehistory.list", _HISTORY_TYPES, params={"entityTypeId": 2}, shape="items",
           cursor="ID", created="CREATED_TIME"),
    Entity("leads", "crm.lead.list", _LEAD_TYPES, cursor="DATE_MODIFY", created="DATE_CREATE",
           userfields="crm.lead.userfield.list", multifields=("PHONE", "EMAIL")),
    Entity("lead_status_history", "crm.stagehistory.list", _HISTORY_TYPES, params={"entityTypeId": 1},
           shape="items", cursor="ID", created="CREATED_TIME"),
    Entity("contacts", "crm.contact.list", _CONTACT_TYPES, cursor="DATE_MODIFY", created="DATE_CREATE",
           userfields="crm.contact.userfield.list", multifields=("PHONE", "EMAIL")),
    Entity("companies", "crm.company.list", _COMPANY_TYPES, cursor="DATE_MODIFY", created="DATE_CREATE",
           userfields="crm.company.userfield.list", multifields=("PHONE", "EMAIL")),
    Entity("activities", "crm.activity.list", _ACTIVITY_TYPES, cursor="LAST_UPDATED", created="CREATED"),
    Entity("invoices", "crm.item.list", _INVOICE_TYPES, params={"entityTypeId": 31}, shape="items", id_field="id",
           cursor="updatedTime", created="createdTime"),
    Entity("invoice_stage_history", "crm.stagehistory.list", _HISTORY_TYPES, params={"entityTypeId": 31},
           shape="items", cursor="ID", created="CREATED_TIME"),
    Entity("calls", "voximplant.statistic.get", _CALL_TYPES, order="strings", cursor="ID",
           created="CALL_START_DATE", scope="telephony", filter_key="FILTER", sweep=False),
    Entity("tasks", "tasks.task.list", _TASK_TYPES, shape="tasks", cursor="CHANGED_DATE", created="CREATED_DATE",
           scope="task", camel_rows=True, optional=True),
    Entity("users", "user.get", _USER_TYPES, order="strings", scope="user", write="versions", sweep=False),
    Entity("departments", "department.get", _DEPARTMENT_TYPES, order="none", scope="department", write="versions",
           sweep=False),
    Entity("statuses", "crm.status.list", _STATUS_TYPES, order="none", write="versions", sweep=False),
    Entity("pipelines", "crm.category.list", _CATEGORY_TYPES, params={"entityTypeId": 2}, shape="categories",
           id_field="id", order="none", write="versions", sweep=False),
    Entity("userfields", "crm.deal.userfield.list", _USERFIELD_TYPES, order="none", sweep=False),
)

# Custom-field definitions are read from every entity that has them (the `userfields` row's method
# is the first of these); `ENTITY_ID` (CRM_DEAL, CRM_LEAD, ...) tells them apart.
USERFIELD_METHODS = tuple(e.userfields for e in ENTITIES if e.userfields)

BY_NAME = {e.name: e for e in ENTITIES}

# dlt column hints per type.
COLUMN_TYPES: dict[str, dict[str, Any]] = {
    "id": {"data_type": "bigint"}, "int": {"data_type": "bigint"},
    "money": {"data_type": "decimal", "precision": 18, "scale": 2}, "float": {"data_type": "double"},
    "datetime": {"data_type": "timestamp"}, "date": {"data_type": "date"}, "yn": {"data_type": "bool"},
    "bool": {"data_type": "bool"}, "str": {"data_type": "text"}, "json": {"data_type": "text"},
}

# Custom field types -> column types.
USERFIELD_COLUMN_TYPES = {"enumeration": "id", "integer": "int", "double": "float", "date": "date",
                          "datetime": "datetime", "boolean": "bool", "money": "str", "crm_status": "str"}
