-- Grain: one row per stage change of a deal (its creation included), as Bitrix24 recorded it.
SELECT
    h.id AS history_id,
    h.owner_id AS deal_id,
    h.type_id,
    timezone('{portal_tz}', h.created_time) AS changed_at,
    h.category_id AS pipeline_id,
    h.stage_id,
    h.stage_semantic_id
FROM raw.deal_stage_history AS h
WHERE NOT staging.deleted_in_portal('deal_stage_history', h.id)
