-- Grain: one row per day × pipeline × stage × manager: deals open in that stage at the end of the day
-- (a periodic snapshot rebuilt from stage history), and their amount.
WITH days AS (
    SELECT date, date_key FROM core.dim_date
    WHERE date BETWEEN (SELECT min(entered_at)::DATE FROM core.fact_deal_stage)
                   AND (SELECT max(coalesce(exited_at, entered_at))::DATE FROM core.fact_deal_stage)
),
open_visits AS (
    SELECT v.deal_id, v.stage_key, v.pipeline_id, f.manager_key, v.amount, v.entered_at, v.exited_at
    FROM core.fact_deal_stage AS v
    JOIN core.dim_stage AS s USING (stage_key)
    JOIN core.fact_deal AS f USING (deal_id)
    WHERE s.semantics = 'process'
)
SELECT
    d.date_key,
    o.pipeline_id,
    o.stage_key,
    o.manager_key,
    count(*) AS open_deals,
    sum(o.amount) AS open_amount
FROM days AS d
JOIN open_visits AS o
    ON o.entered_at < d.date + INTERVAL 1 DAY AND (o.exited_at IS NULL OR o.exited_at >= d.date + INTERVAL 1 DAY)
GROUP BY d.date_key, o.pipeline_id, o.stage_key, o.manager_key
