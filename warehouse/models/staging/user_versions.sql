-- Grain: one row per observed version of a user (a change of any attribute seen by a load).
SELECT
    u.id AS user_id,
    trim(concat_ws(' ', nullif(u.name, ''), nullif(u.last_name, ''))) AS full_name,
    nullif(u.work_position, '') AS position,
    coalesce(u.active, false) AND NOT u.is_deleted AS is_active,
    TRY_CAST(json_extract(u.uf_department, '$[0]') AS BIGINT) AS department_id,
    timezone('{portal_tz}', u.valid_from) AS observed_at,
    u.is_deleted
FROM raw.users AS u
