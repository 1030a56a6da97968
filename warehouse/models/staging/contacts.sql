-- Grain: one row per contact the warehouse has seen (contacts deleted in Bitrix24 stay, flagged).
SELECT
    c.id AS contact_id,
    trim(concat_ws(' ', nullif(c.name, ''), nullif(c.second_name, ''), nullif(c.last_name, ''))) AS full_name,
    c.name AS first_name,
    c.last_name,
    c.post AS position,
    c.comments,
    c.type_id,
    c.source_id,
    nullif(c.company_id, 0) AS company_id,
    c.assigned_by_id AS user_id,
    timezone('{portal_tz}', c.date_create) AS created_at,
    coalesce(c.has_phone, false) AS has_phone,
    coalesce(c.has_email, false) AS has_email,
    staging.deleted_in_portal('contacts', c.id) AS is_deleted
FROM raw.contacts AS c
