-- Key: company_id
-- Changes: companies
-- Grain: one row per company (deleted ones flagged); the manager is the current responsible user.
-- company_id: Bitrix24 company ID
-- company_name: the company's name
-- company_type: Bitrix24 company type (COMPANY_TYPE)
-- industry: Bitrix24 industry code
-- employees: Bitrix24 size band (EMPLOYEES)
-- revenue: annual revenue as recorded
-- manager_key: the responsible user's current version (core.dim_manager); -1 when unknown
-- created_at: when the company was created (portal time)
-- has_phone: whether it has a phone number
-- has_email: whether it has an e-mail address
-- is_deleted: deleted in Bitrix24 (kept so that history stays whole)
SELECT
    c.company_id,
    c.company_name,
    c.company_type,
    c.industry,
    c.employees,
    c.revenue,
    coalesce(m.manager_key, -1) AS manager_key,
    c.created_at,
    c.has_phone,
    c.has_email,
    c.is_deleted
FROM staging.companies AS c
LEFT JOIN core.dim_manager AS m ON m.user_id = c.user_id AND m.is_current
