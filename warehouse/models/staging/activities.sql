-- Grain: one row per activity (call, e-mail, meeting, task, to-do) that still exists in the portal.
SELECT
    a.id AS activity_id,
    CASE a.type_id WHEN 2 THEN 'call' WHEN 4 THEN 'email' WHEN 1 THEN 'meeting' WHEN 3 THEN 'task'
        WHEN 6 THEN 'todo' ELSE 'other' END AS activity_type,
    CASE WHEN a.type_id IN (2, 4) THEN CASE a.direction WHEN 1 THEN 'incoming' WHEN 2 THEN 'outgoing' END
        END AS direction,
    CASE a.owner_type_id WHEN 1 THEN 'lead' WHEN 2 THEN 'deal' WHEN 3 THEN 'contact' WHEN 4 THEN 'company'
        ELSE 'other' END AS owner_type,
    a.owner_id,
    a.responsible_id AS user_id,
    a.subject,
    timezone('{portal_tz}', a.created) AS created_at,
    timezone('{portal_tz}', a.last_updated) AS updated_at,
    timezone('{portal_tz}', a.start_time) AS start_at,
    timezone('{portal_tz}', a.end_time) AS end_at,
    timezone('{portal_tz}', a.deadline) AS deadline_at,
    coalesce(a.completed, false) AS completed,
    CASE WHEN a.type_id = 2 THEN CAST(epoch(a.end_time - a.start_time) AS BIGINT) END AS duration_seconds,
    a.type_id = 2 AND a.direction = 1 AND a.end_time = a.start_time AS is_missed_call,
    CASE WHEN a.type_id = 3 AND a.associated_entity_id > 0 THEN a.associated_entity_id END AS task_id
FROM raw.activities AS a
WHERE NOT staging.deleted_in_portal('activities', a.id)
