-- Key: activity_id
-- Changes: activities
-- Grain: one row per activity that still exists: type, direction, owner, times, completion, call length.
-- The manager is the responsible user's version valid when the activity was created.
SELECT
    a.activity_id,
    coalesce(m.manager_key, -1) AS manager_key,
    a.user_id,
    CAST(strftime(coalesce(a.start_at, a.created_at), '%Y%m%d') AS INTEGER) AS date_key,
    a.activity_type,
    a.direction,
    a.owner_type,
    a.owner_id,
    CASE WHEN a.owner_type = 'deal' THEN a.owner_id END AS deal_id,
    a.subject,
    a.created_at,
    a.start_at,
    a.end_at,
    a.deadline_at,
    a.updated_at,
    a.completed,
    a.duration_seconds,
    a.is_missed_call,
    a.task_id
FROM staging.activities AS a
LEFT JOIN core.dim_manager AS m
    ON m.user_id = a.user_id AND a.created_at >= m.valid_from AND a.created_at < m.valid_to
