-- Key: stage_key
-- Reference: rebuilt every time; when its rows change, the build is full
-- Grain: one row per deal-pipeline stage, in the pipeline's order; stages deleted in Bitrix24 are kept
-- and flagged, and stages that history names but the portal never listed appear as unknown.
-- stage_key: the stage's key, the one facts use
-- pipeline_id: Bitrix24 deal pipeline (category) ID
-- pipeline_name: the pipeline's name
-- stage_id: Bitrix24 stage ID (STATUS_ID)
-- stage_name: the stage's name
-- stage_order: 1.. within the pipeline, in Bitrix24's order
-- semantics: process, success or failure
-- is_deleted: deleted in Bitrix24, or named by history but never listed
WITH listed AS (
    SELECT s.stage_id, s.pipeline_id, s.stage_name, s.sort, s.semantics, s.is_deleted
    FROM staging.deal_stages AS s
),
unlisted AS (
    SELECT DISTINCT h.stage_id, h.pipeline_id, h.stage_id AS stage_name, 100000 AS sort,
        CASE h.stage_semantic_id WHEN 'S' THEN 'success' WHEN 'F' THEN 'failure' ELSE 'process' END AS semantics,
        true AS is_deleted
    FROM staging.deal_stage_history AS h
    WHERE h.stage_id NOT IN (SELECT stage_id FROM listed)
),
stages AS (
    SELECT * FROM listed
    UNION ALL
    SELECT * FROM unlisted
)
SELECT
    staging.surrogate_key(s.stage_id) AS stage_key,
    s.pipeline_id,
    p.pipeline_name,
    s.stage_id,
    s.stage_name,
    CAST(row_number() OVER (PARTITION BY s.pipeline_id ORDER BY s.sort, s.stage_id) AS INTEGER) AS stage_order,
    s.semantics,
    s.is_deleted
FROM stages AS s
LEFT JOIN staging.pipelines AS p USING (pipeline_id)
