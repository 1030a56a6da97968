-- Key: company_id
-- Changes: companies
-- Grain: one row per company (deleted ones flagged); the manager is the current responsible user.
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
