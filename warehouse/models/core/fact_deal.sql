-- Key: deal_id
-- Changes: deals
-- Grain: one row per deal (accumulating snapshot): its current stage and status, milestones and lags.
-- Deals deleted in Bitrix24 are kept with is_deleted.
-- deal_id: Bitrix24 deal ID
-- title: the deal's title
-- pipeline_id: its current pipeline (category)
-- stage_key: its current stage (core.dim_stage)
-- manager_key: the responsible user's current version (core.dim_manager)
-- user_id: the responsible Bitrix24 user
-- created_at: when it was created (portal time)
-- created_date_key: the day it was created, yyyymmdd
-- closed_at: its last move to a won or lost stage
-- closed_date_key: the day it closed, yyyymmdd, for won and lost deals
-- days_to_close: days from creation to closing
-- amount: the deal's amount (OPPORTUNITY)
-- currency_id: its currency
-- status: open, won or lost
-- stage_id: its current Bitrix24 stage ID
-- last_process_stage_key: the last in-progress stage it was in, in its current pipeline (core.dim_stage)
-- last_process_stage_id: that stage's Bitrix24 ID
-- stage_changes: how many times it changed stage
-- company_id: the client company
-- contact_id: the client contact
-- lead_id: the lead it was converted from, if any
-- source_id: where it came from (Bitrix24 source ID)
-- is_deleted: deleted in Bitrix24 (kept with its history; the reports leave it out)
-- The runner fills {keys}, which deals' history is read: all in a full build, the changed ones in an incremental
-- one (DuckDB does not push the patch's filter on deal_id through the LEFT JOINs to these aggregates).
WITH history AS (
    SELECT
        h.deal_id,
        max(h.changed_at) FILTER (WHERE h.stage_semantic_id IN ('S', 'F')) AS last_closed_at,
        count(*) FILTER (WHERE h.type_id <> 1) AS stage_changes
    FROM staging.deal_stage_history AS h
    WHERE {keys}
    GROUP BY h.deal_id
),
last_process AS (   -- grain: deal; its last in-progress stage visit in its current pipeline (the one definition)
    SELECT v.deal_id, arg_max(v.stage_key, (v.entered_at, v.history_id)) AS stage_key
    FROM (FROM core.fact_deal_stage WHERE {keys}) AS v
    JOIN core.dim_stage AS s USING (stage_key)
    JOIN staging.deals AS d ON d.deal_id = v.deal_id AND d.pipeline_id = v.pipeline_id
    WHERE s.semantics = 'process'
    GROUP BY v.deal_id
)
SELECT
    d.deal_id,
    d.title,
    d.pipeline_id,
    s.stage_key,
    coalesce(m.manager_key, -1) AS manager_key,
    d.user_id,
    d.created_at,
    staging.date_key(d.created_at) AS created_date_key,
    CASE WHEN d.stage_semantic_id IN ('S', 'F') THEN h.last_closed_at END AS closed_at,
    CASE WHEN d.stage_semantic_id IN ('S', 'F')
         THEN staging.date_key(h.last_closed_at) END AS closed_date_key,
    CASE WHEN d.stage_semantic_id IN ('S', 'F')
         THEN epoch(h.last_closed_at - d.created_at) / 86400.0 END AS days_to_close,
    d.amount,
    d.currency_id,
    CASE d.stage_semantic_id WHEN 'S' THEN 'won' WHEN 'F' THEN 'lost' ELSE 'open' END AS status,
    d.stage_id,
    lp.stage_key AS last_process_stage_key,
    ls.stage_id AS last_process_stage_id,
    coalesce(h.stage_changes, 0) AS stage_changes,
    d.company_id,
    d.contact_id,
    d.lead_id,
    d.source_id,
    d.is_deleted
FROM staging.deals AS d
LEFT JOIN history AS h USING (deal_id)
LEFT JOIN core.dim_stage AS s ON s.stage_id = d.stage_id
LEFT JOIN last_process AS lp USING (deal_id)
LEFT JOIN core.dim_stage AS ls ON ls.stage_key = lp.stage_key
LEFT JOIN core.dim_manager AS m ON m.user_id = d.user_id AND m.is_current
