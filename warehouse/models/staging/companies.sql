-- Grain: one row per company the warehouse has seen (companies deleted in Bitrix24 stay, flagged).
SELECT
    c.id AS company_id,
    c.title AS company_name,
    c.company_type,
    c.industry,
    c.employees,
    c.revenue,
    c.comments,
    c.assigned_by_id AS user_id,
    timezone('{portal_tz}', c.date_create) AS created_at,
    coalesce(c.has_phone, false) AS has_phone,
    coalesce(c.has_email, false) AS has_email,
    staging.deleted_in_portal('companies', c.id) AS is_deleted
FROM raw.companies AS c
