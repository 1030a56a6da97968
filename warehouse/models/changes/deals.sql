-- Keys: deal_id of every deal whose row, stage history, deletion or restore was loaded since the last build.
SELECT id AS key FROM raw.deals
WHERE _dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT owner_id FROM raw.deal_stage_history
WHERE _dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT x.id FROM staging.deletions AS x
WHERE x.entity = 'deals' AND x._dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT h.owner_id FROM staging.deletions AS x JOIN raw.deal_stage_history AS h ON h.id = x.id
WHERE x.entity = 'deal_stage_history' AND x._dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
