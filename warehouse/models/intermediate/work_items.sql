-- Grain: one row per planned piece of work a user has: each task once (a task of the Tasks module, or a CRM
-- task activity whose task the warehouse does not hold, as when the webhook lacks the task scope) and each
-- CRM to-do. What the activity and history reports count as tasks, and what keeps a deal from being forgotten.
-- source_type: the core table the item comes from, `task` (core.fact_task) or `activity` (core.fact_activity)
SELECT 'task' AS item_type, t.task_id AS item_id, t.user_id, t.title AS subject, 'deal' AS owner_type,
       t.deal_id AS owner_id, t.deal_id, t.created_at, t.deadline_at, t.completed, t.closed_at, 'task' AS source_type
FROM core.fact_task AS t
UNION ALL
SELECT a.activity_type, a.activity_id, a.user_id, a.subject, a.owner_type, a.owner_id, a.deal_id, a.created_at,
       a.deadline_at, a.completed, CASE WHEN a.completed THEN a.updated_at END, 'activity'
FROM core.fact_activity AS a
WHERE a.activity_type = 'todo'
   OR (a.activity_type = 'task' AND NOT EXISTS (SELECT 1 FROM core.fact_task AS t WHERE t.task_id = a.task_id))
