-- Scope of intermediate.manager_events: the records (source_type, source_id) whose events are redone. Events
-- are kept under the record they come from, so: every activity, task and deal that changed since the last
-- marts build (a deal's stage history and deletion change the deal), and the activities whose task changed
-- (a CRM task activity counts as work only while the warehouse does not hold its task).
WITH changed AS (
    SELECT change_set, key FROM meta.mart_changes
)
SELECT CASE change_set WHEN 'activities' THEN 'activity' WHEN 'tasks' THEN 'task' ELSE 'deal' END AS source_type,
       key AS source_id
FROM changed
WHERE change_set IN ('activities', 'tasks', 'deals')
UNION
SELECT 'activity', activity_id FROM core.fact_activity
WHERE task_id IN (SELECT key FROM changed WHERE change_set = 'tasks')
