-- Key: entity_type, entity_id, rule
-- Scope: entity_type, entity_id
-- Grain: one row per record × broken rule: contacts and companies that still exist, and open deals. The
-- rules: phone_in_comment (a phone number written in the comments while the phone field is empty),
-- lowercase_name (a contact's first or last name, or a company's name, starting with a lower-case
-- Cyrillic or Latin letter), no_phone_no_email, bad_phone (a phone that cannot be normalised),
-- duplicate (another record of the same kind has the same normalised phone or e-mail),
-- empty_policy_field (fields the settings require, left empty) and no_planned_activity (an open deal
-- with nothing planned, as in marts.deals_without_activities).
-- entity_type: contact, company or deal
-- entity_id: the record's Bitrix24 ID
-- title: the contact's full name, the company's or the deal's title
-- user_id: the responsible manager's Bitrix24 user ID
-- manager_key: the responsible manager (core.dim_manager, current version)
-- created_at: when the record was created (portal time)
-- rule: the broken rule
-- details: what broke it: the phone found in the comments, the name, the shared phone or e-mail, the empty fields
WITH existing AS (   -- every contact and company that still exists: a duplicate may be any of them
    SELECT 'contact' AS entity_type, contact_id AS entity_id FROM staging.contacts WHERE NOT is_deleted
    UNION ALL
    SELECT 'company', company_id FROM staging.companies WHERE NOT is_deleted
),
records AS (   -- the records whose rules are judged, with what the rules read: {keys} is all of them, or those
               -- a patch redoes (DuckDB would not push the patch's filter into a CTE read this many times)
    SELECT * FROM (
        SELECT 'contact' AS entity_type, contact_id AS entity_id, full_name AS title, user_id, created_at, comments,
               [first_name, last_name] AS names
        FROM staging.contacts WHERE NOT is_deleted
        UNION ALL
        SELECT 'company', company_id, company_name, user_id, created_at, comments, [company_name]
        FROM staging.companies WHERE NOT is_deleted
    )
    WHERE {keys}
),
points AS (
    SELECT p.entity_type, p.entity_id, p.kind, p.value,
           CASE p.kind WHEN 'PHONE' THEN staging.normalise_phone(p.value) ELSE lower(trim(p.value)) END AS normalised
    FROM intermediate.contact_points AS p
    JOIN existing AS e USING (entity_type, entity_id)
),
comment_phones AS (
    SELECT r.entity_type, r.entity_id, trim(c.candidate) AS candidate
    FROM records AS r, unnest(regexp_extract_all(r.comments, '\+?\d[\d ()-]{7,}\d')) AS c(candidate)
    WHERE staging.normalise_phone(c.candidate) IS NOT NULL
),
shared AS (
    SELECT entity_type, kind, normalised FROM points WHERE normalised IS NOT NULL
    GROUP BY ALL HAVING count(DISTINCT entity_id) > 1
),
broken AS (
    SELECT r.entity_type, r.entity_id, 'phone_in_comment' AS rule, first(c.candidate ORDER BY c.candidate) AS details
    FROM records AS r JOIN comment_phones AS c USING (entity_type, entity_id)
    WHERE NOT EXISTS (SELECT 1 FROM points AS p WHERE p.entity_type = r.entity_type AND p.entity_id = r.entity_id
                      AND p.kind = 'PHONE')
    GROUP BY ALL
    UNION ALL
    SELECT r.entity_type, r.entity_id, 'lowercase_name', string_agg(n, ', ')
    FROM records AS r, unnest(r.names) AS t(n)
    WHERE regexp_matches(n, '^[a-zа-яё]')
    GROUP BY ALL
    UNION ALL
    SELECT r.entity_type, r.entity_id, 'no_phone_no_email', NULL
    FROM records AS r
    WHERE NOT EXISTS (SELECT 1 FROM points AS p WHERE p.entity_type = r.entity_type AND p.entity_id = r.entity_id)
    UNION ALL
    SELECT entity_type, entity_id, 'bad_phone', string_agg(value, ', ')
    FROM points WHERE kind = 'PHONE' AND normalised IS NULL
    GROUP BY ALL
    UNION ALL
    SELECT p.entity_type, p.entity_id, 'duplicate',
           string_agg(lower(p.kind) || ' ' || p.normalised, ', ' ORDER BY p.kind, p.normalised)
    FROM points AS p JOIN shared AS s USING (entity_type, kind, normalised)
    GROUP BY ALL
    UNION ALL
    SELECT entity_type, entity_id, 'empty_policy_field', fields FROM intermediate.policy_gaps
    UNION ALL
    SELECT 'deal', deal_id, 'no_planned_activity', 'open deal with nothing planned (no open activity or task)'
    FROM marts.deals_without_activities
)
SELECT
    b.entity_type,
    b.entity_id,
    coalesce(r.title, d.title) AS title,
    coalesce(r.user_id, d.user_id) AS user_id,
    coalesce(m.manager_key, -1) AS manager_key,
    coalesce(r.created_at, d.created_at) AS created_at,
    b.rule,
    b.details
FROM broken AS b
LEFT JOIN records AS r USING (entity_type, entity_id)
LEFT JOIN core.fact_deal AS d ON b.entity_type = 'deal' AND d.deal_id = b.entity_id
LEFT JOIN core.dim_manager AS m ON m.user_id = coalesce(r.user_id, d.user_id) AND m.is_current
