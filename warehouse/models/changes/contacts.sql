-- Keys: contact_id of every contact loaded (its phones and e-mails with it), deleted or restored since the
-- last build.
SELECT id AS key FROM raw.contacts
WHERE _dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
UNION
SELECT x.id FROM staging.deletions AS x
WHERE x.entity = 'contacts' AND x._dlt_load_id NOT IN (SELECT load_id FROM meta.built_loads)
