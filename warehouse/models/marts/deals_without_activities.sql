-- Key: deal_id
-- Grain: one row per open deal (in-progress stage, not deleted) with nothing planned: no open activity and
-- no open task bound to it, so nobody is selling to that client ("forgotten deals"). Open means not
-- completed, with a deadline not yet passed (or none), as of intermediate.settings.as_of.
-- deal_id: the Bitrix24 deal ID
-- title: the deal's title
-- manager_key: the deal's current responsible manager (core.dim_manager)
-- user_id: that manager's Bitrix24 user ID
-- pipeline_id: the deal's pipeline (category) id
-- stage_id: the deal's current stage id
-- stage_name: the deal's current stage name
-- amount: the deal's amount
-- currency_id: the amount's currency
-- last_activity_at: start of the deal's latest activity of any kind so far (NULL if it never had one)
-- days_since_last_activity: whole days from last_activity_at to now (NULL if it never had one)
-- entered_stage_at: when the deal entered its current stage
-- days_in_stage: whole days the deal has been in its current stage
-- has_overdue_activity: the deal has an activity or a task not completed whose deadline passed
-- overdue_activities: how many such activities and tasks
WITH now AS (
    SELECT as_of FROM intermediate.settings
),
open_deals AS (
    SELECT deal_id FROM core.fact_deal WHERE status = 'open' AND NOT is_deleted
),
planned AS (   -- grain: one row per activity or task bound to an open deal (a CRM task activity and its task once)
    SELECT deal_id, start_at, completed, deadline_at FROM core.fact_activity
    WHERE deal_id IN (SELECT deal_id FROM open_deals) AND activity_type NOT IN ('task', 'todo')
    UNION ALL
    SELECT deal_id, NULL, completed, deadline_at FROM intermediate.work_items
    WHERE deal_id IN (SELECT deal_id FROM open_deals)
    UNION ALL   -- a CRM task activity's start still shows when the deal was last worked on
    SELECT deal_id, start_at, true, NULL FROM core.fact_activity
    WHERE deal_id IN (SELECT deal_id FROM open_deals) AND activity_type IN ('task', 'todo')
),
activity AS (
    SELECT
        p.deal_id,
        max(p.start_at) FILTER (WHERE p.start_at <= now.as_of) AS last_activity_at,
        count(*) FILTER (WHERE NOT p.completed AND (p.deadline_at IS NULL OR p.deadline_at >= now.as_of)) AS open_now,
        count(*) FILTER (WHERE NOT p.completed AND p.deadline_at < now.as_of) AS overdue
    FROM planned AS p, now
    GROUP BY p.deal_id
),
current_stage AS (
    SELECT deal_id, max(entered_at) AS entered_stage_at FROM core.fact_deal_stage
    WHERE is_current AND deal_id IN (SELECT deal_id FROM open_deals)
    GROUP BY deal_id
)
SELECT
    f.deal_id,
    f.title,
    f.manager_key,
    f.user_id,
    f.pipeline_id,
    f.stage_id,
    s.stage_name,
    f.amount,
    f.currency_id,
    a.last_activity_at,
    CAST(floor(epoch(now.as_of - a.last_activity_at) / 86400) AS INTEGER) AS days_since_last_activity,
    c.entered_stage_at,
    CAST(floor(epoch(now.as_of - c.entered_stage_at) / 86400) AS INTEGER) AS days_in_stage,
    coalesce(a.overdue, 0) > 0 AS has_overdue_activity,
    coalesce(a.overdue, 0) AS overdue_activities
FROM core.fact_deal AS f
CROSS JOIN now
LEFT JOIN core.dim_stage AS s USING (stage_key)
LEFT JOIN activity AS a USING (deal_id)
LEFT JOIN current_stage AS c USING (deal_id)
WHERE f.status = 'open' AND NOT f.is_deleted AND coalesce(a.open_now, 0) = 0
