-- Key: deal_id
-- Changes: deals
-- Grain: one row per deal: its descriptive attributes (title, type, source, client), for slicing facts.
SELECT
    d.deal_id,
    d.title,
    d.type_id,
    coalesce(s.source_key, -1) AS source_key,
    d.company_id,
    d.contact_id,
    d.lead_id,
    d.currency_id,
    d.begin_date,
    d.close_date,
    d.is_deleted
FROM staging.deals AS d
LEFT JOIN core.dim_source AS s ON s.source_id = d.source_id
