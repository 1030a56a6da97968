-- Keys: invoice_id of every invoice whose row, stage history, deletion or restore was loaded since the
-- last build.
SELECT id AS key FROM raw.invoices
WHERE _dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT owner_id FROM raw.invoice_stage_history
WHERE _dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT x.id FROM staging.deletions AS x
WHERE x.entity = 'invoices' AND x._dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT h.owner_id FROM staging.deletions AS x JOIN raw.invoice_stage_history AS h ON h.id = x.id
WHERE x.entity = 'invoice_stage_history' AND x._dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
