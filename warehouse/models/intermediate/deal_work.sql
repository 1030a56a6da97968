-- Scope: deal_id
-- Grain: one row per open deal (in-progress stage, not deleted) with an activity or task bound to it: when it
-- was last worked on, and how much of its work is open and how much overdue, as of intermediate.settings.as_of
-- (a CRM task activity and its task count once). What marts.deals_without_activities reads, kept so that a
-- marts build redoes only the deals whose work changed or whose starts and deadlines the moment passed.
-- deal_id: the Bitrix24 deal ID
-- last_activity_at: start of the deal's latest activity of any kind so far (NULL if none has started)
-- open_items: activities and tasks not completed whose deadline has not passed (or that have none)
-- overdue_items: activities and tasks not completed whose deadline passed
WITH now AS (
    SELECT as_of FROM intermediate.settings
),
open_deals AS (
    SELECT deal_id FROM core.fact_deal WHERE status = 'open' AND NOT is_deleted AND {keys}
),
planned AS (   -- grain: one row per activity or task bound to an open deal (a CRM task activity and its task once)
    SELECT deal_id, start_at, completed, deadline_at FROM core.fact_activity
    WHERE {keys} AND deal_id IN (SELECT deal_id FROM open_deals) AND activity_type NOT IN ('task', 'todo')
    UNION ALL
    SELECT deal_id, NULL, completed, deadline_at FROM intermediate.work_items
    WHERE {keys} AND deal_id IN (SELECT deal_id FROM open_deals)
    UNION ALL   -- a CRM task activity's start still shows when the deal was last worked on
    SELECT deal_id, start_at, true, NULL FROM core.fact_activity
    WHERE {keys} AND deal_id IN (SELECT deal_id FROM open_deals) AND activity_type IN ('task', 'todo')
)
SELECT
    p.deal_id,
    max(p.start_at) FILTER (WHERE p.start_at <= now.as_of) AS last_activity_at,
    count(*) FILTER (WHERE NOT p.completed AND (p.deadline_at IS NULL OR p.deadline_at >= now.as_of)) AS open_items,
    count(*) FILTER (WHERE NOT p.completed AND p.deadline_at < now.as_of) AS overdue_items
FROM planned AS p, now
GROUP BY p.deal_id
