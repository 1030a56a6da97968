-- Key: call_id
-- Changes: calls
-- Grain: one row per telephony call: who, when, direction, length, outcome, the CRM record it is bound to.
-- call_id: Bitrix24 telephony call ID
-- manager_key: the responsible user's version (core.dim_manager) when the call started; -1 when unknown
-- user_id: the Bitrix24 user on the call
-- date_key: the day the call started, yyyymmdd
-- started_at: when the call started (portal time)
-- direction: incoming, outgoing, callback or other
-- duration_seconds: the call's length
-- is_failed: the call did not connect (result code other than 200)
-- result_code: the telephony result code (200: connected)
-- is_missed: an incoming call of zero length
-- crm_entity_type: the CRM record it is bound to: lead, deal, contact, company
-- crm_entity_id: that record's ID
-- activity_id: the call's CRM activity, if any
SELECT
    c.call_id,
    coalesce(m.manager_key, -1) AS manager_key,
    c.user_id,
    staging.date_key(c.started_at) AS date_key,
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
