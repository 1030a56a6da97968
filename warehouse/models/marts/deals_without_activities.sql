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
current_stage AS (
    SELECT deal_id, max(entered_at) AS entered_stage_at FROM core.fact_deal_stage
    WHERE is_current AND deal_id IN (SELECT deal_id FROM core.fact_deal WHERE status = 'open' AND NOT is_deleted)
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
    w.last_activity_at,
    CAST(floor(epoch(now.as_of - w.last_activity_at) / 86400) AS INTEGER) AS days_since_last_activity,
    c.entered_stage_at,
    CAST(floor(epoch(now.as_of - c.entered_stage_at) / 86400) AS INTEGER) AS days_in_stage,
    coalesce(w.overdue_items, 0) > 0 AS has_overdue_activity,
    coalesce(w.overdue_items, 0) AS overdue_activities
FROM core.fact_deal AS f
CROSS JOIN now
LEFT JOIN core.dim_stage AS s USING (stage_key)
LEFT JOIN intermediate.deal_work AS w USING (deal_id)
LEFT JOIN current_stage AS c USING (deal_id)
WHERE f.status = 'open' AND NOT f.is_deleted AND coalesce(w.open_items, 0) = 0
