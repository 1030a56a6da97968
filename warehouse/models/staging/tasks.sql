-- Grain: one row per task of the portal (tasks.task.list) that still exists: who is responsible, when it
-- was created, is due and was closed, and the deal it is bound to (the first deal of its CRM bindings).
SELECT
    t.id AS task_id,
    t.title,
    t.status,
    t.status = 5 AS completed,
    t.responsible_id AS user_id,
    t.created_by AS creator_id,
    timezone('{portal_tz}', t.created_date) AS created_at,
    timezone('{portal_tz}', t.changed_date) AS changed_at,
    timezone('{portal_tz}', t.closed_date) AS closed_at,
    timezone('{portal_tz}', t.deadline) AS deadline_at,
    TRY_CAST(substr(list_filter(from_json(coalesce(t.uf_crm_task, '[]'), '["VARCHAR"]'),
                                lambda b: b LIKE 'D\_%' ESCAPE '\')[1], 3) AS BIGINT) AS deal_id
FROM raw.tasks AS t
WHERE NOT staging.deleted_in_portal('tasks', t.id)
