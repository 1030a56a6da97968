-- The simulated portal's storage (SQLite). Datetimes are unix seconds; the API renders them in the
-- portal time zone. Deleted CRM rows keep `is_deleted = 1` so they can be restored (recycle bin).
-- `<table>_live (is_deleted, id)`: a range of live rows is counted (`total`, the deletion counts) from the index
-- alone, a third of the time of reading the rows.

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE departments (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, sort INTEGER NOT NULL, parent INTEGER, uf_head INTEGER
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY, active INTEGER NOT NULL, name TEXT, last_name TEXT, second_name TEXT,
    email TEXT, last_login INTEGER, date_register INTEGER, is_online TEXT, personal_gender TEXT,
    personal_birthday INTEGER, personal_mobile TEXT, work_phone TEXT, work_position TEXT,
    uf_department TEXT NOT NULL, user_type TEXT NOT NULL,
    -- generator-only attributes (never served): how this person sells
    skill REAL NOT NULL DEFAULT 1, activity_level REAL NOT NULL DEFAULT 1, sloppiness REAL NOT NULL DEFAULT 1
);

CREATE TABLE statuses (
    id INTEGER PRIMARY KEY, entity_id TEXT NOT NULL, status_id TEXT NOT NULL, name TEXT NOT NULL,
    name_init TEXT, sort INTEGER NOT NULL, system TEXT NOT NULL, category_id INTEGER, color TEXT,
    semantics TEXT, extra TEXT NOT NULL
);

CREATE TABLE categories (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, sort INTEGER NOT NULL, entity_type_id INTEGER NOT NULL,
    is_default TEXT NOT NULL
);

CREATE TABLE deals (
    id INTEGER PRIMARY KEY, title TEXT, type_id TEXT, category_id INTEGER NOT NULL, stage_id TEXT NOT NULL,
    stage_semantic_id TEXT NOT NULL, is_return_customer TEXT NOT NULL, probability INTEGER,
    currency_id TEXT, opportunity REAL, company_id INTEGER, contact_id INTEGER, begindate INTEGER,
    closedate INTEGER, closed TEXT NOT NULL, comments TEXT, assigned_by_id INTEGER NOT NULL,
    created_by_id INTEGER, modify_by_id INTEGER, moved_by_id INTEGER, date_create INTEGER NOT NULL,
    date_modify INTEGER NOT NULL, moved_time INTEGER, source_id TEXT, source_description TEXT,
    lead_id INTEGER, last_activity_time INTEGER, last_activity_by INTEGER,
    uf_crm_loss_reason TEXT, uf_crm_deal_channel TEXT, uf_crm_contract_date INTEGER,
    uf_crm_priority_client INTEGER, uf_crm_expected_margin REAL,
    is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deals_modify ON deals (date_modify);
CREATE INDEX deals_create ON deals (date_create);
CREATE INDEX deals_live ON deals (is_deleted, id);

CREATE TABLE leads (
    id INTEGER PRIMARY KEY, title TEXT, name TEXT, second_name TEXT, last_name TEXT, company_title TEXT,
    company_id INTEGER, contact_id INTEGER, birthdate INTEGER, source_id TEXT, status_id TEXT NOT NULL,
    post TEXT, comments TEXT, currency_id TEXT, opportunity REAL, assigned_by_id INTEGER NOT NULL,
    created_by_id INTEGER, modify_by_id INTEGER, date_create INTEGER NOT NULL, date_modify INTEGER NOT NULL,
    date_closed INTEGER, status_semantic_id TEXT NOT NULL, moved_by_id INTEGER, moved_time INTEGER,
    address TEXT, address_city TEXT, address_country TEXT, last_activity_time INTEGER,
    last_activity_by INTEGER, uf_crm_landing TEXT, is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX leads_modify ON leads (date_modify);
CREATE INDEX leads_live ON leads (is_deleted, id);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY, post TEXT, comments TEXT, name TEXT, second_name TEXT, last_name TEXT,
    lead_id INTEGER, type_id TEXT, source_id TEXT, company_id INTEGER, birthdate INTEGER,
    date_create INTEGER NOT NULL, date_modify INTEGER NOT NULL, assigned_by_id INTEGER NOT NULL,
    created_by_id INTEGER, modify_by_id INTEGER, last_activity_time INTEGER, last_activity_by INTEGER,
    address TEXT, address_city TEXT, address_country TEXT, uf_crm_client_segment TEXT,
    is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX contacts_modify ON contacts (date_modify);
CREATE INDEX contacts_live ON contacts (is_deleted, id);

CREATE TABLE companies (
    id INTEGER PRIMARY KEY, title TEXT, company_type TEXT, industry TEXT, employees TEXT, revenue REAL,
    currency_id TEXT, comments TEXT, assigned_by_id INTEGER NOT NULL, created_by_id INTEGER,
    modify_by_id INTEGER, date_create INTEGER NOT NULL, date_modify INTEGER NOT NULL, lead_id INTEGER,
    last_activity_time INTEGER, last_activity_by INTEGER, address TEXT, address_city TEXT,
    address_country TEXT, uf_crm_inn TEXT, is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX companies_modify ON companies (date_modify);
CREATE INDEX companies_live ON companies (is_deleted, id);

CREATE TABLE multifields (
    id INTEGER PRIMARY KEY, entity_type_id INTEGER NOT NULL, entity_id INTEGER NOT NULL,
    type_id TEXT NOT NULL, value_type TEXT NOT NULL, value TEXT NOT NULL
);
CREATE INDEX multifields_owner ON multifields (entity_type_id, entity_id, type_id);
CREATE INDEX multifields_value ON multifields (type_id, value);

CREATE TABLE activities (
    id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, owner_type_id INTEGER NOT NULL,
    type_id INTEGER NOT NULL, provider_id TEXT NOT NULL, provider_type_id TEXT, subject TEXT,
    created INTEGER NOT NULL, last_updated INTEGER NOT NULL, start_time INTEGER, end_time INTEGER,
    deadline INTEGER, completed TEXT NOT NULL, responsible_id INTEGER NOT NULL, priority INTEGER NOT NULL,
    description TEXT, direction INTEGER NOT NULL, author_id INTEGER, editor_id INTEGER,
    is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX activities_updated ON activities (last_updated);
CREATE INDEX activities_live ON activities (is_deleted, id);

-- tasks.task.list: the task behind each CRM task activity (activity_id), and the team's own tasks, some
-- bound to a deal from the Tasks module (crm_owner_* set, no activity). Status 2 pending, 3 in progress, 5 done.
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, status INTEGER NOT NULL, responsible_id INTEGER NOT NULL,
    created_by INTEGER NOT NULL, created_date INTEGER NOT NULL, changed_date INTEGER NOT NULL,
    closed_date INTEGER, deadline INTEGER, crm_owner_type_id INTEGER, crm_owner_id INTEGER, activity_id INTEGER,
    is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_changed ON tasks (changed_date);
CREATE INDEX tasks_activity ON tasks (activity_id);
CREATE INDEX tasks_live ON tasks (is_deleted, id);
CREATE INDEX activities_owner ON activities (owner_type_id, owner_id);

CREATE TABLE stage_history (
    id INTEGER PRIMARY KEY, entity_type_id INTEGER NOT NULL, type_id INTEGER NOT NULL,
    owner_id INTEGER NOT NULL, created_time INTEGER NOT NULL, category_id INTEGER,
    stage_semantic_id TEXT NOT NULL, stage_id TEXT NOT NULL, is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX stage_history_owner ON stage_history (entity_type_id, owner_id);
CREATE INDEX stage_history_keyset ON stage_history (entity_type_id, is_deleted, id);

CREATE TABLE invoices (
    id INTEGER PRIMARY KEY, title TEXT, account_number TEXT, stage_id TEXT NOT NULL, previous_stage_id TEXT,
    category_id INTEGER NOT NULL, begindate INTEGER, closedate INTEGER, opportunity REAL, currency_id TEXT,
    company_id INTEGER, contact_id INTEGER, comments TEXT, moved_by INTEGER, moved_time INTEGER,
    parent_id2 INTEGER, created_time INTEGER NOT NULL, updated_time INTEGER NOT NULL, created_by INTEGER,
    updated_by INTEGER, assigned_by_id INTEGER NOT NULL, is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX invoices_updated ON invoices (updated_time);
CREATE INDEX invoices_live ON invoices (is_deleted, id);

CREATE TABLE timeline_comments (
    id INTEGER PRIMARY KEY, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, created INTEGER NOT NULL,
    comment TEXT NOT NULL, author_id INTEGER NOT NULL, files TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_comments_owner ON timeline_comments (entity_type, entity_id);

CREATE TABLE userfields (
    id INTEGER PRIMARY KEY, entity_id TEXT NOT NULL, field_name TEXT NOT NULL, user_type_id TEXT NOT NULL,
    sort INTEGER NOT NULL, multiple TEXT NOT NULL, mandatory TEXT NOT NULL, settings TEXT NOT NULL,
    label_en TEXT NOT NULL, label_ru TEXT NOT NULL
);

CREATE TABLE userfield_enums (
    id INTEGER PRIMARY KEY, field_id INTEGER NOT NULL, sort INTEGER NOT NULL, value TEXT NOT NULL,
    def TEXT NOT NULL, xml_id TEXT NOT NULL
);

-- Data-quality defects the generator planted on purpose: the ground truth of the audit report.
CREATE TABLE planted_defects (
    entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, rule TEXT NOT NULL,
    PRIMARY KEY (entity_type, entity_id, rule)
);

-- voximplant.statistic.get: one row per call that took place (done or missed), kept after CRM deletes.
CREATE VIEW calls AS
SELECT
    a.id AS id,
    a.responsible_id AS portal_user_id,
    'reg' || (100000 + a.responsible_id) AS portal_number,
    '+7' || (9000000000 + (a.owner_id * 7919 + a.owner_type_id) % 999999999) AS phone_number,
    printf('%08X.%d.%d', (a.id * 2654435761) % 4294967296, a.start_time, a.id) AS call_id,
    a.end_time - a.start_time AS call_duration,
    a.start_time AS call_start_date,
    'RUB' AS cost_currency,
    CASE WHEN a.end_time > a.start_time THEN '200' WHEN a.direction = 1 THEN '304' ELSE '603-S' END
        AS call_failed_code,
    CASE WHEN a.end_time > a.start_time THEN 'Success call' WHEN a.direction = 1 THEN 'Missed call'
        ELSE 'Call declined' END AS call_failed_reason,
    CASE a.owner_type_id WHEN 1 THEN 'LEAD' WHEN 2 THEN 'DEAL' WHEN 3 THEN 'CONTACT' ELSE 'COMPANY' END
        AS crm_entity_type,
    a.owner_id AS crm_entity_id,
    a.id AS crm_activity_id,
    3841550000 + a.id AS session_id,
    CASE WHEN a.end_time > a.start_time THEN 9000 + a.id * 3 END AS record_file_id,
    CASE a.direction WHEN 1 THEN 2 ELSE 1 END AS call_type
FROM activities a
WHERE a.type_id = 2 AND (a.completed = 'Y' OR (a.direction = 1 AND a.end_time = a.start_time));
