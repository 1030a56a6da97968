-- Scope of intermediate.funnel_visits: the deals (deal_id) whose rows are redone: every deal that changed since the
-- last marts build (its row, stage history, deletion or restore). What else the rows hold, stages and
-- managers, is reference data, whose change makes the core build, and so the marts build, full.
SELECT key AS deal_id FROM meta.mart_changes WHERE change_set = 'deals'
