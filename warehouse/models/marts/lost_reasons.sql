-- Grain: one row per pipeline × cohort month × manager × failure stage × reason field value × stage lost
-- from: why deals are lost and where. Deals now at a failure stage (deleted deals left out); the
-- failure stage is Bitrix24's reason, the portal's reason field (if any) a finer one.
-- pipeline_id: the lost deal's pipeline (category) id
-- cohort_month: first day of the month the deals were created (portal time)
-- manager_key: the deals' current responsible manager (core.dim_manager)
-- reason_stage_id: the failure stage the deals are at, such as LOSE or C1:APOLOGY
-- reason_name: that stage's name
-- reason_field_value: the loss reason user field's value, where the portal keeps one (else NULL)
-- lost_from_stage_id: the last in-progress stage the deal was at in this pipeline before it was lost
-- lost_from_stage_name: that stage's name
-- deals_lost: number of deals
-- amount_lost: their amount
-- share_of_lost: deals_lost over every deal lost in the same pipeline and cohort month
WITH lost AS (
    SELECT
        f.deal_id, f.pipeline_id, f.manager_key, f.amount, f.stage_key AS reason_stage_key,
        CAST(date_trunc('month', f.created_at) AS DATE) AS cohort_month,
        f.last_process_stage_key AS lost_from_stage_key
    FROM core.fact_deal AS f
    WHERE f.status = 'lost' AND NOT f.is_deleted
),
counted AS (
    SELECT
        l.pipeline_id, l.cohort_month, l.manager_key, r.stage_id AS reason_stage_id, r.stage_name AS reason_name,
        v.field_value AS reason_field_value, s.stage_id AS lost_from_stage_id, s.stage_name AS lost_from_stage_name,
        count(*) AS deals_lost, sum(coalesce(l.amount, 0)) AS amount_lost
    FROM lost AS l
    JOIN core.dim_stage AS r ON r.stage_key = l.reason_stage_key
    LEFT JOIN core.dim_stage AS s ON s.stage_key = l.lost_from_stage_key
    LEFT JOIN intermediate.deal_lost_reasons AS v USING (deal_id)
    GROUP BY ALL
)
SELECT *, deals_lost / sum(deals_lost) OVER (PARTITION BY pipeline_id, cohort_month) AS share_of_lost
FROM counted
