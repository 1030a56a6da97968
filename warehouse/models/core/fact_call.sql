-- Key: call_id
-- Changes: calls
-- Grain: one row per telephony call: who, when, direction, length, outcome, the CRM record it is bound to.
SELECT
    c.call_id,
    coalesce(m.manager_key, -1) AS manager_key,
    c.user_id,
    CAST(strftime(c.started_at, '%Y%m%d') AS INTEGER) AS date_key,
    c.started_at,
    c.direction,
    c.duration_seconds,
    c.is_failed,
    c.result_code,
    c.direction = 'incoming' AND c.duration_seconds = 0 AS is_missed,
    c.crm_entity_type,
    c.crm_entity_id,
    c.activity_id
FROM staging.calls AS c
LEFT JOIN core.dim_manager AS m ON m.user_id = c.user_id AND c.started_at >= m.valid_from AND c.started_at < m.valid_to
