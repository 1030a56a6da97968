-- Key: deal_id
-- Changes: deals
-- Grain: one row per deal: its descriptive attributes (title, type, source, client), for slicing facts.
-- deal_id: Bitrix24 deal ID
-- title: the deal's title
-- type_id: Bitrix24 deal type (TYPE_ID)
-- source_key: where the deal came from (core.dim_source)
-- company_id: the client company (core.dim_company)
-- contact_id: the client contact (core.dim_contact)
-- lead_id: the lead it was converted from, if any
-- currency_id: the deal's currency
-- begin_date: the deal's start date as set in Bitrix24
-- close_date: the planned close date as set in Bitrix24
-- is_deleted: deleted in Bitrix24
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
