-- Scope: source_type, source_id
-- Grain: one row per event that marts.manager_activity counts, whatever its moment (the mart counts those up
-- to intermediate.settings.as_of), with the record it comes from, so that a marts build redoes only the
-- events of the records that changed. Calls, e-mails and meetings: completed ones, by their start (missed
-- calls: incoming calls of zero length); tasks and to-dos (intermediate.work_items) by creation and, when
-- completed, by closing; deals by creation, forward moves (to a later in-progress stage of the same
-- pipeline), and the day they were won or lost, for the deal's current responsible.
-- source_type: the record's kind: activity (core.fact_activity), task (core.fact_task) or deal
-- source_id: the record's Bitrix24 ID
-- user_id: who the event counts for
-- event_at: when it happened (portal time)
-- measure: the marts.manager_activity column it counts in
-- seconds: a completed call's length (0 for the other events)
WITH moves AS (   -- every stage visit but a deal's first, with the stage it came from
    SELECT v.deal_id, v.pipeline_id, v.entered_at, s.semantics, s.stage_order, p.pipeline_id AS previous_pipeline_id,
           p.semantics AS previous_semantics, p.stage_order AS previous_order
    FROM core.fact_deal_stage AS v
    JOIN core.dim_stage AS s USING (stage_key, pipeline_id)
    JOIN core.dim_stage AS p ON p.stage_id = v.previous_stage_id
)
SELECT 'activity' AS source_type, activity_id AS source_id, user_id, start_at AS event_at,
       CASE WHEN is_missed_call THEN 'calls_missed' WHEN direction = 'incoming' THEN 'calls_incoming'
            ELSE 'calls_outgoing' END AS measure,
       CASE WHEN completed AND NOT is_missed_call THEN duration_seconds ELSE 0 END AS seconds
FROM core.fact_activity
WHERE activity_type = 'call' AND (is_missed_call OR completed)
UNION ALL
SELECT 'activity', activity_id, user_id, start_at,
       CASE activity_type WHEN 'meeting' THEN 'meetings'
            ELSE CASE direction WHEN 'incoming' THEN 'emails_incoming' ELSE 'emails_outgoing' END END, 0
FROM core.fact_activity
WHERE activity_type IN ('email', 'meeting') AND completed
UNION ALL
SELECT source_type, item_id, user_id, created_at, 'tasks_created', 0
FROM intermediate.work_items
UNION ALL
SELECT source_type, item_id, user_id, closed_at, 'tasks_closed', 0
FROM intermediate.work_items
WHERE completed
UNION ALL
SELECT 'deal', deal_id, user_id, created_at, 'deals_created', 0
FROM core.fact_deal
WHERE NOT is_deleted
UNION ALL
SELECT 'deal', m.deal_id, f.user_id, m.entered_at, 'deals_moved', 0
FROM moves AS m JOIN core.fact_deal AS f USING (deal_id)
WHERE m.semantics = 'process' AND m.previous_semantics = 'process' AND m.pipeline_id = m.previous_pipeline_id
  AND m.stage_order > m.previous_order
UNION ALL
SELECT 'deal', deal_id, user_id, closed_at, CASE status WHEN 'won' THEN 'deals_won' ELSE 'deals_lost' END, 0
FROM core.fact_deal
WHERE status IN ('won', 'lost') AND NOT is_deleted
