-- Changes: deals
-- Additive: date_key, pipeline_id, stage_key, manager_key
-- Days: SELECT min(entered_at)::DATE, max(coalesce(exited_at, entered_at))::DATE FROM core.fact_deal_stage
-- Grain: one row per day × pipeline × stage × manager: deals open in that stage at the end of the day
-- (a periodic snapshot rebuilt from stage history), and their amount (a deal without one counts as 0).
-- The runner fills {first_day} and {last_day} (the days stage history spans, from its first entry to its
-- last move) and {keys}, which deals count: all of them in a full build; in an incremental one the changed
-- deals (their old rows out, their new rows in), or the unchanged ones over the days history grew by.
-- date_key: the day, yyyymmdd (at its end)
-- pipeline_id: the pipeline
-- stage_key: the in-progress stage
-- manager_key: the deals' responsible user's version
-- open_deals: deals in that stage at the end of the day
-- open_amount: their amount (a deal without one counts as 0)
WITH days AS (
    SELECT date, date_key FROM core.dim_date
    WHERE date BETWEEN {first_day} AND {last_day}
),
open_visits AS (
    SELECT v.deal_id, v.stage_key, v.pipeline_id, f.manager_key, v.amount, v.entered_at, v.exited_at
    FROM core.fact_deal_stage AS v
    JOIN core.dim_stage AS s USING (stage_key)
    JOIN core.fact_deal AS f USING (deal_id)
    WHERE s.semantics = 'process' AND {keys}
)
SELECT
    d.date_key,
    o.pipeline_id,
    o.stage_key,
    o.manager_key,
    count(*) AS open_deals,
    sum(coalesce(o.amount, 0)) AS open_amount
FROM days AS d
JOIN open_visits AS o
    ON o.entered_at < d.date + INTERVAL 1 DAY AND (o.exited_at IS NULL OR o.exited_at >= d.date + INTERVAL 1 DAY)
GROUP BY d.date_key, o.pipeline_id, o.stage_key, o.manager_key
