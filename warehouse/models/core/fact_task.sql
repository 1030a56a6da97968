-- Key: task_id
-- Changes: tasks
-- Grain: one row per task of the portal's Tasks module that still exists (CRM-bound or not): its
-- responsible manager, when it was created, is due and was closed, and the deal it is bound to.
-- The manager is the responsible user's version valid when the task was created.
SELECT
    t.task_id,
    coalesce(m.manager_key, -1) AS manager_key,
    t.user_id,
    CAST(strftime(t.created_at, '%Y%m%d') AS INTEGER) AS date_key,
    t.title,
    t.status,
    t.completed,
    t.created_at,
    t.deadline_at,
    t.closed_at,
    t.deal_id
FROM staging.tasks AS t
LEFT JOIN core.dim_manager AS m
    ON m.user_id = t.user_id AND t.created_at >= m.valid_from AND t.created_at < m.valid_to
