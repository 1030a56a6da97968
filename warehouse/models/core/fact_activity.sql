-- Key: activity_id
-- Changes: activities
-- Grain: one row per activity that still exists: type, direction, owner, times, completion, call length.
-- The manager is the responsible user's version valid when the activity was created.
-- activity_id: Bitrix24 activity ID
-- manager_key: the responsible user's version (core.dim_manager) when it was created; -1 when unknown
-- user_id: the responsible Bitrix24 user
-- date_key: the day it starts (else was created), yyyymmdd
-- activity_type: call, email, meeting, task, todo or other
-- direction: incoming or outgoing for calls and e-mails
-- owner_type: the CRM record it belongs to: lead, deal, contact, company or other
-- owner_id: that record's ID
-- deal_id: the deal, when the owner is a deal
-- subject: the activity's subject
-- created_at: when it was created (portal time)
-- start_at: when it starts
-- end_at: when it ends
-- deadline_at: when it is due
-- updated_at: when it last changed
-- completed: marked done
-- duration_seconds: a call's length
-- is_missed_call: an incoming call of zero length
-- task_id: the Tasks-module task behind a CRM task activity (core.fact_task)
SELECT
    a.activity_id,
    coalesce(m.manager_key, -1) AS manager_key,
    a.user_id,
    staging.date_key(coalesce(a.start_at, a.created_at)) AS date_key,
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
