-- Grain: one row per funnel step of a pipeline: its in-progress stages in their order, then its won stage
-- (deleted stages left out).
-- stage_key: the stage (core.dim_stage)
-- pipeline_id: its pipeline
-- pipeline_name: the pipeline's name
-- stage_id: the stage's Bitrix24 ID
-- stage_name: the stage's name
-- semantics: process (in progress) or success (won)
-- step: its place in the pipeline's funnel, from 1
SELECT
    stage_key, pipeline_id, pipeline_name, stage_id, stage_name, semantics,
    CAST(row_number() OVER (PARTITION BY pipeline_id ORDER BY semantics = 'success', stage_order) AS INTEGER) AS step
FROM core.dim_stage
WHERE NOT is_deleted AND semantics IN ('process', 'success')
