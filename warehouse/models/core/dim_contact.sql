-- Key: contact_id
-- Changes: contacts
-- Grain: one row per contact (deleted ones flagged); the manager is the current responsible user.
-- contact_id: Bitrix24 contact ID
-- full_name: name and last name
-- position: job title as recorded
-- type_id: Bitrix24 contact type (TYPE_ID)
-- company_id: the contact's company (core.dim_company)
-- source_key: where the contact came from (core.dim_source)
-- manager_key: the responsible user's current version (core.dim_manager); -1 when unknown
-- created_at: when the contact was created (portal time)
-- has_phone: whether it has a phone number
-- has_email: whether it has an e-mail address
-- is_deleted: deleted in Bitrix24 (kept so that history stays whole)
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
