-- Scope of marts.user_history: the records (entity_type, entity_id) whose events are redone. Events are filed
-- under the record they are about, so: every deal, contact, company and invoice that changed since the last
-- marts build; the records changed activities and tasks belonged to before (meta.replaced_*) and belong to
-- now; and the owners of activities whose task changed (a CRM task activity counts only without its task).
-- Records without an owner are (NULL, NULL).
WITH changed AS (
    SELECT change_set, key FROM meta.mart_changes
),
activities AS (
    SELECT owner_type, owner_id FROM meta.replaced_fact_activity
    UNION ALL
    SELECT owner_type, owner_id FROM core.fact_activity
    WHERE activity_id IN (SELECT key FROM changed WHERE change_set = 'activities')
    UNION ALL   -- a branch of its own: DuckDB applies each IN as it reads, an OR of them only after
    SELECT owner_type, owner_id FROM core.fact_activity
    WHERE task_id IN (SELECT key FROM changed WHERE change_set = 'tasks')
),
tasks AS (
    SELECT deal_id FROM meta.replaced_fact_task
    UNION ALL
    SELECT deal_id FROM core.fact_task WHERE task_id IN (SELECT key FROM changed WHERE change_set = 'tasks')
)
SELECT CASE change_set WHEN 'deals' THEN 'deal' WHEN 'contacts' THEN 'contact' WHEN 'companies' THEN 'company'
                       ELSE 'invoice' END AS entity_type,
       key AS entity_id
FROM changed
WHERE change_set IN ('deals', 'contacts', 'companies', 'invoices')
UNION
SELECT owner_type, owner_id FROM activities           -- as activities are filed
UNION
SELECT CASE WHEN owner_id IS NULL THEN NULL ELSE owner_type END, owner_id FROM activities   -- as to-dos are
UNION
SELECT CASE WHEN deal_id IS NULL THEN NULL ELSE 'deal' END, deal_id FROM tasks
