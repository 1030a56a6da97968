-- Key: manager_key
-- Reference: rebuilt every time; when its rows change, the build is full
-- Grain: one row per version of a user: SCD type 2 on department and position (other attributes are
-- type 1, from the latest observation). The first version of each user starts in 1900 so that facts
-- older than the first load find it; key -1 is the unknown manager.
-- manager_key: one version of a user; -1 is the unknown manager
-- user_id: Bitrix24 user ID
-- full_name: name and last name (current)
-- department_id: the department in this version
-- department_name: the department's name
-- position: job title in this version
-- is_active: the user is active and not deleted (current)
-- valid_from: when this version starts (portal time)
-- valid_to: when the next version starts (9999-12-31 for the current one)
-- is_current: the user's current version
WITH flagged AS (
    SELECT
        *,
        CASE WHEN lag(department_id) OVER w IS DISTINCT FROM department_id
                  OR lag(position) OVER w IS DISTINCT FROM position
                  OR lag(user_id) OVER w IS NULL THEN 1 ELSE 0 END AS starts_version
    FROM staging.user_versions
    WHERE NOT is_deleted
    WINDOW w AS (PARTITION BY user_id ORDER BY observed_at)
),
islands AS (
    SELECT *, sum(starts_version) OVER (PARTITION BY user_id ORDER BY observed_at) AS version_number
    FROM flagged
),
versions AS (
    SELECT user_id, version_number, min(observed_at) AS observed_from, any_value(department_id) AS department_id,
           any_value(position) AS position
    FROM islands
    GROUP BY user_id, version_number
),
latest AS (
    SELECT user_id, full_name, is_active
    FROM staging.user_versions
    QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY observed_at DESC) = 1
)
SELECT
    staging.surrogate_key((v.user_id, v.version_number)) AS manager_key,
    v.user_id,
    l.full_name,
    v.department_id,
    d.department_name,
    v.position,
    l.is_active,
    CASE WHEN v.version_number = 1 THEN TIMESTAMP '1900-01-01' ELSE v.observed_from END AS valid_from,
    coalesce(lead(v.observed_from) OVER (PARTITION BY v.user_id ORDER BY v.version_number),
             TIMESTAMP '9999-12-31') AS valid_to,
    lead(v.observed_from) OVER (PARTITION BY v.user_id ORDER BY v.version_number) IS NULL AS is_current
FROM versions AS v
JOIN latest AS l USING (user_id)
LEFT JOIN staging.departments AS d USING (department_id)
UNION ALL
SELECT -1, NULL, 'Unknown', NULL, NULL, NULL, false, TIMESTAMP '1900-01-01', TIMESTAMP '9999-12-31', true
