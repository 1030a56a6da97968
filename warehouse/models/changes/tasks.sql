-- Keys: task_id of every task loaded, deleted or restored since the last build.
SELECT id AS key FROM raw.tasks
WHERE _dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT x.id FROM staging.deletions AS x
WHERE x.entity = 'tasks' AND x._dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
