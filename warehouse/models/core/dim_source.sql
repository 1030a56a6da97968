-- Key: source_key
-- Reference: rebuilt every time; when its rows change, the build is full
-- Grain: one row per deal/contact source (Bitrix24's SOURCE directory), plus sources that records name
-- but the directory no longer lists; key -1 is "no source".
-- source_key: the source's key; -1 is no source
-- source_id: Bitrix24 source ID (SOURCE directory)
-- source_name: the source's name
WITH named AS (
    SELECT code AS source_id, name AS source_name FROM staging.directory WHERE directory = 'SOURCE'
),
unlisted AS (
    SELECT DISTINCT source_id, source_id AS source_name
    FROM (SELECT source_id FROM staging.deals UNION SELECT source_id FROM staging.contacts)
    WHERE source_id IS NOT NULL AND source_id NOT IN (SELECT source_id FROM named)
)
SELECT staging.surrogate_key(source_id) AS source_key, source_id, source_name
FROM (SELECT * FROM named UNION ALL SELECT * FROM unlisted)
UNION ALL
SELECT -1, NULL, 'No source'
