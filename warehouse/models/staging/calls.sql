-- Grain: one row per telephony call (voximplant statistics), kept even when its CRM activity is deleted.
SELECT
    c.id AS call_id,
    c.portal_user_id AS user_id,
    CASE c.call_type WHEN 1 THEN 'outgoing' WHEN 2 THEN 'incoming' WHEN 3 THEN 'incoming'
        WHEN 4 THEN 'callback' ELSE 'other' END AS direction,
    c.call_type,
    c.call_duration AS duration_seconds,
    timezone('{portal_tz}', c.call_start_date) AS started_at,
    c.call_failed_code AS result_code,
    c.call_failed_code <> '200' AS is_failed,
    lower(c.crm_entity_type) AS crm_entity_type,
    c.crm_entity_id,
    c.crm_activity_id AS activity_id,
    c.cost,
    c.cost_currency
FROM raw.calls AS c
