-- Keys: company_id of every company loaded (its phones and e-mails with it), deleted or restored since the
-- last build.
SELECT id AS key FROM raw.companies
WHERE _dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT x.id FROM staging.deletions AS x
WHERE x.entity = 'companies' AND x._dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
