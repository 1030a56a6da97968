-- Scope of intermediate.deal_work: the deals (deal_id) whose row is redone. Every deal that changed since the
-- last marts build (opened, closed, deleted or restored); the deals changed activities and tasks belonged to
-- before (meta.replaced_*) and belong to now, and those of activities whose task changed (a CRM task activity
-- counts as work only while the warehouse does not hold its task); and the deals with an activity or task whose
-- start or deadline the moment passed since the last marts build (from that moment to this one, both included).
WITH changed AS (
    SELECT change_set, key FROM meta.mart_changes
),
last AS (   -- the last marts build's moment
    SELECT as_of FROM meta.mart_builds ORDER BY finished_at DESC LIMIT 1
),
deals AS (   -- each condition a branch of its own, which DuckDB applies as it reads (an OR it would apply after)
    SELECT key AS deal_id FROM changed WHERE change_set = 'deals'
    UNION ALL
    SELECT deal_id FROM meta.replaced_fact_activity
    UNION ALL
    SELECT deal_id FROM core.fact_activity WHERE activity_id IN (SELECT key FROM changed WHERE change_set = 'activities')
    UNION ALL
    SELECT deal_id FROM core.fact_activity WHERE task_id IN (SELECT key FROM changed WHERE change_set = 'tasks')
    UNION ALL
    SELECT deal_id FROM meta.replaced_fact_task
    UNION ALL
    SELECT deal_id FROM core.fact_task WHERE task_id IN (SELECT key FROM changed WHERE change_set = 'tasks')
    UNION ALL
    SELECT deal_id FROM core.fact_activity
    WHERE start_at BETWEEN (SELECT as_of FROM last) AND (SELECT as_of FROM intermediate.settings)
    UNION ALL
    SELECT deal_id FROM core.fact_activity
    WHERE deadline_at BETWEEN (SELECT as_of FROM last) AND (SELECT as_of FROM intermediate.settings)
    UNION ALL
    SELECT deal_id FROM core.fact_task
    WHERE deadline_at BETWEEN (SELECT as_of FROM last) AND (SELECT as_of FROM intermediate.settings)
)
SELECT deal_id FROM deals WHERE deal_id IS NOT NULL
