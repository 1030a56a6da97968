-- Grain: one row per smart invoice (entity type 31) the warehouse has seen.
SELECT
    i.id AS invoice_id,
    i.title,
    i.account_number,
    i.stage_id,
    i.opportunity AS amount,
    i.currency_id,
    nullif(i.parent_id2, 0) AS deal_id,
    nullif(i.company_id, 0) AS company_id,
    nullif(i.contact_id, 0) AS contact_id,
    i.assigned_by_id AS user_id,
    timezone('{portal_tz}', i.created_time) AS created_at,
    timezone('{portal_tz}', i.moved_time) AS moved_at,
    i.begindate AS issue_date,
    i.closedate AS due_date,
    staging.deleted_in_portal('invoices', i.id) AS is_deleted
FROM raw.invoices AS i
