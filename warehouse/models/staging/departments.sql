-- Grain: one row per department ever seen: latest attributes, and whether it was removed since.
SELECT
    d.id AS department_id,
    d.name AS department_name,
    d.parent AS parent_id,
    (SELECT n.is_deleted FROM raw.departments AS n WHERE n.id = d.id ORDER BY n.valid_from DESC LIMIT 1)
        AS is_deleted
FROM raw.departments AS d
WHERE NOT d.is_deleted
QUALIFY row_number() OVER (PARTITION BY d.id ORDER BY d.valid_from DESC) = 1
