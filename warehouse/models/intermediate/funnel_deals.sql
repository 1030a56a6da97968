-- Scope: deal_id
-- Grain: one row per deal that still exists × pipeline it visited: how deep into that pipeline's funnel it
-- got (its deepest in-progress step there; deals skip stages) and whether it was won there, with its cohort
-- month and current manager (intermediate.funnel_visits, whose deals it is patched with).
-- deal_id: the Bitrix24 deal ID
-- pipeline_id: a pipeline the deal visited
-- cohort_month: the first day of the month the deal was created
-- manager_key: the deal's current responsible manager (core.dim_manager)
-- deepest: its deepest in-progress step in the pipeline, 0 if none
-- won: it was in the pipeline's won stage
SELECT
    deal_id,
    pipeline_id,
    any_value(cohort_month) AS cohort_month,
    any_value(manager_key) AS manager_key,
    coalesce(max(step) FILTER (WHERE semantics = 'process'), 0) AS deepest,
    bool_or(semantics = 'success') AS won
FROM intermediate.funnel_visits
GROUP BY deal_id, pipeline_id
