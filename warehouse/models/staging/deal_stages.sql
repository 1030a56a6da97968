-- Grain: one row per deal-pipeline stage ever seen: its latest attributes, and whether it was deleted.
WITH versions AS (
    SELECT
        s.*,
        row_number() OVER (PARTITION BY s.id ORDER BY s.valid_from DESC) AS newest
    FROM raw.statuses AS s
),
attributes AS (
    SELECT *
    FROM versions
    WHERE NOT is_deleted AND entity_id LIKE 'DEAL_STAGE%'
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY valid_from DESC) = 1
)
SELECT
    a.status_id AS stage_id,
    CASE WHEN a.entity_id = 'DEAL_STAGE' THEN 0 ELSE CAST(split_part(a.entity_id, '_', 3) AS BIGINT) END AS pipeline_id,
    a.name AS stage_name,
    a.sort,
    CASE a.semantics WHEN 'S' THEN 'success' WHEN 'F' THEN 'failure' ELSE 'process' END AS semantics,
    (SELECT v.is_deleted FROM versions AS v WHERE v.id = a.id AND v.newest = 1) AS is_deleted
FROM attributes AS a
