-- Grain: one row per deal pipeline (Bitrix24 deal category) ever seen: latest attributes, deleted flag.
SELECT
    p.id AS pipeline_id,
    p.name AS pipeline_name,
    p.sort,
    (SELECT n.is_deleted FROM raw.pipelines AS n WHERE n.id = p.id ORDER BY n.valid_from DESC LIMIT 1) AS is_deleted
FROM raw.pipelines AS p
WHERE NOT p.is_deleted
QUALIFY row_number() OVER (PARTITION BY p.id ORDER BY p.valid_from DESC) = 1
