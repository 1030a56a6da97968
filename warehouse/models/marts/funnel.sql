-- Grain: one row per pipeline × cohort month × manager × funnel step (the pipeline's in-progress stages in
-- order, then its won stage). The conversion funnel of the deals each manager created in a month: where
-- deals disappear. Counts add up across managers and months; conversions and gaps are this row's own.
-- pipeline_id: Bitrix24 deal pipeline (category) id; 0 is the general pipeline
-- pipeline_name: the pipeline's name
-- cohort_month: first day of the month the deals were created (portal time)
-- manager_key: the deals' current responsible manager (core.dim_manager)
-- stage_key: the step's stage (core.dim_stage)
-- stage_id: Bitrix24 stage id, such as C1:NEW
-- stage_name: the stage's name
-- stage_order: the step's place in the funnel, 1 for the first stage; the won stage comes last
-- deals_reached: deals whose history shows them at this stage or a later in-progress one, or won
-- conversion_from_previous: deals_reached over the previous step's (NULL for the first step)
-- conversion_from_first: deals_reached over the first step's
-- deals_lost: deals now lost whose last in-progress stage was this one
-- amount_lost: amount of those deals
-- median_hours_in_stage: median hours a visit to this stage lasted (finished visits)
-- median_step_conversion: the median of conversion_from_previous over this funnel's steps
-- previous_month_conversion: this step's conversion_from_previous in the previous cohort month
-- is_gap: the step's conversion falls sharply (see gap_rule and docs/marts.md)
-- gap_rule: which part of the gap rule the step broke
-- top_lost_reasons: the most frequent reasons deals were lost at this step, with counts
-- gap_lost_reasons: on a gap, the top reasons deals were lost at the step before it
SELECT * EXCLUDE (level)
FROM intermediate.funnel_steps
WHERE level = 'manager'
