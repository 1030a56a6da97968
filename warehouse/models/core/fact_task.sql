-- Key: task_id
-- Changes: tasks
-- Grain: one row per task of the portal's Tasks module that still exists (CRM-bound or not): its
-- responsible manager, when it was created, is due and was closed, and the deal it is bound to.
-- The manager is the responsible user's version valid when the task was created.
-- task_id: Bitrix24 task ID (Tasks module)
-- manager_key: the responsible user's version (core.dim_manager) when it was created; -1 when unknown
-- user_id: the responsible Bitrix24 user
-- date_key: the day it was created, yyyymmdd
-- title: the task's title
-- status: Bitrix24 task status code (5: completed)
-- completed: the task is completed
-- created_at: when it was created (portal time)
-- deadline_at: when it is due
-- closed_at: when it was closed
-- deal_id: the deal it is bound to (the first of its CRM bindings)
SELECT
    t.task_id,
    coalesce(m.manager_key, -1) AS manager_key,
    t.user_id,
    staging.date_key(t.created_at) AS date_key,
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
