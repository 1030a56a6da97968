-- Keys: call_id of every call loaded since the last build (calls are never deleted or edited).
SELECT id AS key FROM raw.calls
WHERE _dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
