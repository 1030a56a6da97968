-- Grain: one row per manager × month × record kind (contact, company): of the records a manager created
-- that month (and that still exist), how many break at least one data-quality rule (marts.data_quality).
-- user_id: the responsible manager's Bitrix24 user ID
-- manager_key: the responsible manager (core.dim_manager, current version)
-- month: first day of the month the records were created (portal time)
-- entity_type: contact or company
-- records_created: records created that month
-- records_with_problems: of them, records that break at least one rule
-- problems: rows of marts.data_quality for them (one per broken rule)
-- share_clean: the share of records that break no rule
WITH records AS (
    SELECT 'contact' AS entity_type, contact_id AS entity_id, user_id, created_at
    FROM staging.contacts WHERE NOT is_deleted
    UNION ALL
    SELECT 'company', company_id, user_id, created_at FROM staging.companies WHERE NOT is_deleted
),
problems AS (
    SELECT entity_type, entity_id, count(*) AS problems FROM marts.data_quality
    WHERE entity_type IN ('contact', 'company')
    GROUP BY ALL
)
SELECT
    r.user_id,
    coalesce(any_value(m.manager_key), -1) AS manager_key,
    CAST(date_trunc('month', r.created_at) AS DATE) AS month,
    r.entity_type,
    count(*) AS records_created,
    count(p.entity_id) AS records_with_problems,
    CAST(coalesce(sum(p.problems), 0) AS BIGINT) AS problems,
    (count(*) - count(p.entity_id)) / count(*) AS share_clean
FROM records AS r
LEFT JOIN problems AS p USING (entity_type, entity_id)
LEFT JOIN core.dim_manager AS m ON m.user_id = r.user_id AND m.is_current
GROUP BY r.user_id, month, r.entity_type
