-- Grain: one row per deal the warehouse has seen (deals deleted in Bitrix24 stay, flagged).
SELECT
    d.id AS deal_id,
    d.title,
    d.category_id AS pipeline_id,
    d.stage_id,
    d.stage_semantic_id,
    d.type_id,
    d.source_id,
    d.opportunity AS amount,
    d.currency_id,
    nullif(d.company_id, 0) AS company_id,
    nullif(d.contact_id, 0) AS contact_id,
    nullif(d.lead_id, 0) AS lead_id,
    d.assigned_by_id AS user_id,
    timezone('{portal_tz}', d.date_create) AS created_at,
    timezone('{portal_tz}', d.date_modify) AS modified_at,
    d.begindate AS begin_date,
    d.closedate AS close_date,
    coalesce(d.closed, false) AS is_closed,
    staging.deleted_in_portal('deals', d.id) AS is_deleted
FROM raw.deals AS d
