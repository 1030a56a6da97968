-- Key: contact_id
-- Changes: contacts
-- Grain: one row per contact (deleted ones flagged); the manager is the current responsible user.
SELECT
    c.contact_id,
    c.full_name,
    c.position,
    c.type_id,
    c.company_id,
    coalesce(s.source_key, -1) AS source_key,
    coalesce(m.manager_key, -1) AS manager_key,
    c.created_at,
    c.has_phone,
    c.has_email,
    c.is_deleted
FROM staging.contacts AS c
LEFT JOIN core.dim_source AS s ON s.source_id = c.source_id
LEFT JOIN core.dim_manager AS m ON m.user_id = c.user_id AND m.is_current
