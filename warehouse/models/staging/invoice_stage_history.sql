-- Grain: one row per stage change of a smart invoice (its creation included).
SELECT
    h.id AS history_id,
    h.owner_id AS invoice_id,
    h.type_id,
    timezone('{portal_tz}', h.created_time) AS changed_at,
    h.stage_id,
    h.stage_semantic_id
FROM raw.invoice_stage_history AS h
WHERE NOT staging.deleted_in_portal('invoice_stage_history', h.id)
