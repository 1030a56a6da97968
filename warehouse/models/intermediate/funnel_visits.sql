-- Scope: deal_id
-- Grain: one row per stage visit of a deal that still exists, with what the funnel groups it by: the
-- pipeline visited, the deal's cohort month (the month it was created) and current manager, the stage's
-- semantics and funnel step (intermediate.funnel_stage_steps; NULL for a failure stage). Kept so that a
-- marts build redoes only the visits of the deals that changed; intermediate.funnel_steps counts it.
-- deal_id: the Bitrix24 deal ID
-- pipeline_id: the pipeline of the visited stage
-- cohort_month: the first day of the month the deal was created
-- manager_key: the deal's current responsible manager (core.dim_manager)
-- semantics: the stage's semantics: process, success or failure
-- step: the stage's funnel step, NULL outside the funnel
-- hours_in_stage: how long the visit lasted, NULL while it lasts
SELECT
    v.deal_id,
    v.pipeline_id,
    CAST(date_trunc('month', f.created_at) AS DATE) AS cohort_month,
    f.manager_key,
    s.semantics,
    st.step,
    v.hours_in_stage
FROM core.fact_deal_stage AS v
JOIN core.fact_deal AS f ON f.deal_id = v.deal_id
JOIN core.dim_stage AS s ON s.stage_key = v.stage_key
LEFT JOIN intermediate.funnel_stage_steps AS st ON st.stage_key = v.stage_key
WHERE NOT f.is_deleted
