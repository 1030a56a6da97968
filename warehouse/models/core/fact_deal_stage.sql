-- Key: history_id
-- Changes: deals
-- Grain: one row per deal per stage visit (every entry into a stage, from stage history), for deals that
-- still exist. Stage names come from the stage of the visit, never the deal's current one; the manager
-- is the deal's responsible user in the version valid when the visit began.
-- history_id: the Bitrix24 stage-history entry of the visit
-- deal_id: the deal
-- stage_key: the stage visited (core.dim_stage)
-- manager_key: the responsible user's version (core.dim_manager) when it entered; -1 when unknown
-- pipeline_id: the pipeline of the visit
-- stage_id: the Bitrix24 stage ID
-- visit_number: 1 for the first visit of this stage, 2 for a return, ...
-- entered_at: when the deal entered the stage (portal time)
-- exited_at: when it left; NULL while it is there
-- hours_in_stage: hours between entering and leaving
-- is_current: the deal is in this stage now
-- previous_stage_id: the stage it came from (NULL for the deal's first stage)
-- next_stage_id: the stage it moved to next
-- date_key: the day it entered, yyyymmdd
-- amount: the deal's current amount
WITH visits AS (
    SELECT
        h.history_id,
        h.deal_id,
        h.pipeline_id,
        h.stage_id,
        h.changed_at AS entered_at,
        lead(h.changed_at) OVER w AS exited_at,
        lag(h.stage_id) OVER w AS previous_stage_id,
        lead(h.stage_id) OVER w AS next_stage_id,
        row_number() OVER (PARTITION BY h.deal_id, h.stage_id ORDER BY h.changed_at, h.history_id) AS visit_number
    FROM staging.deal_stage_history AS h
    WINDOW w AS (PARTITION BY h.deal_id ORDER BY h.changed_at, h.history_id)
)
SELECT
    v.history_id,
    v.deal_id,
    s.stage_key,
    coalesce(m.manager_key, -1) AS manager_key,
    v.pipeline_id,
    v.stage_id,
    CAST(v.visit_number AS INTEGER) AS visit_number,
    v.entered_at,
    v.exited_at,
    epoch(v.exited_at - v.entered_at) / 3600.0 AS hours_in_stage,
    v.exited_at IS NULL AS is_current,
    v.previous_stage_id,
    v.next_stage_id,
    staging.date_key(v.entered_at) AS date_key,
    d.amount
FROM visits AS v
JOIN staging.deals AS d ON d.deal_id = v.deal_id AND NOT d.is_deleted
JOIN core.dim_stage AS s ON s.stage_id = v.stage_id
LEFT JOIN core.dim_manager AS m
    ON m.user_id = d.user_id AND v.entered_at >= m.valid_from AND v.entered_at < m.valid_to
