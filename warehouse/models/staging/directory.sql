-- Reference: rebuilt every time; when its rows change, the build is full
-- Grain: one row per entry of a Bitrix24 directory (sources, deal types, ...), its latest attributes.
SELECT
    s.entity_id AS directory,
    s.status_id AS code,
    s.name,
    s.sort,
    s.semantics
FROM raw.statuses AS s
WHERE NOT s.is_deleted
QUALIFY row_number() OVER (PARTITION BY s.id ORDER BY s.valid_from DESC) = 1
