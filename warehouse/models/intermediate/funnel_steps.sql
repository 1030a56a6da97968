-- Grain: one row per funnel group × step: a group is a pipeline, a cohort month (the month deals were
-- created) and a level, `manager` (one group per deal's current manager) or `team` (every manager,
-- manager_key NULL). Steps are the pipeline's in-progress stages in their order, then its won stage.
-- A deal reached a step if its stage history in that pipeline shows it there or at a later in-progress
-- stage (deals skip stages), or it was won there; deleted deals are left out. Lost at a step: deals
-- now lost whose last in-progress stage in their current pipeline is that step. Gaps follow the rule in
-- docs/marts.md, with thresholds from intermediate.settings.
-- Table: marts.funnel and marts.funnel_team read it, one level each. Deals and their visits come patched
-- (intermediate.funnel_deals, intermediate.funnel_visits): this counts them, over every deal, every build.
WITH steps AS (
    SELECT * FROM intermediate.funnel_stage_steps
),
lost_from AS (   -- grain: lost deal; its last in-progress stage in its current pipeline (core.fact_deal)
    SELECT deal_id, pipeline_id, amount, last_process_stage_key AS stage_key, manager_key,
           CAST(date_trunc('month', created_at) AS DATE) AS cohort_month
    FROM core.fact_deal
    WHERE status = 'lost' AND NOT is_deleted
),
-- The counts below group each deal once (GROUPING SETS): under its manager, and under the team, where
-- manager_key is NULL and GROUPING(manager_key) is 1.
reached AS (   -- deals alike (pipeline, cohort month, manager, how deep, won) counted once, then joined to steps
    SELECT CASE GROUPING(p.manager_key) WHEN 0 THEN 'manager' ELSE 'team' END AS level, p.pipeline_id, p.cohort_month,
           p.manager_key, s.step, CAST(sum(p.deals) AS BIGINT) AS deals_reached
    FROM (SELECT pipeline_id, cohort_month, manager_key, deepest, won, count(*) AS deals
          FROM intermediate.funnel_deals GROUP BY ALL) AS p
    JOIN steps AS s ON s.pipeline_id = p.pipeline_id
        AND ((s.semantics = 'process' AND (s.step <= p.deepest OR p.won)) OR (s.semantics = 'success' AND p.won))
    GROUP BY GROUPING SETS ((p.pipeline_id, p.cohort_month, p.manager_key, s.step),
                            (p.pipeline_id, p.cohort_month, s.step))
),
lost AS (
    SELECT CASE GROUPING(l.manager_key) WHEN 0 THEN 'manager' ELSE 'team' END AS level, l.pipeline_id, l.cohort_month,
           l.manager_key, s.step, count(*) AS deals_lost, sum(coalesce(l.amount, 0)) AS amount_lost
    FROM lost_from AS l
    JOIN steps AS s USING (stage_key)
    GROUP BY GROUPING SETS ((l.pipeline_id, l.cohort_month, l.manager_key, s.step),
                            (l.pipeline_id, l.cohort_month, s.step))
),
durations AS (
    SELECT CASE GROUPING(v.manager_key) WHEN 0 THEN 'manager' ELSE 'team' END AS level, v.pipeline_id, v.cohort_month,
           v.manager_key, v.step, median(v.hours_in_stage) AS median_hours_in_stage
    FROM intermediate.funnel_visits AS v
    WHERE v.step IS NOT NULL AND v.hours_in_stage IS NOT NULL
    GROUP BY GROUPING SETS ((v.pipeline_id, v.cohort_month, v.manager_key, v.step),
                            (v.pipeline_id, v.cohort_month, v.step))
),
groups AS (
    SELECT DISTINCT level, pipeline_id, cohort_month, manager_key FROM reached
),
counted AS (
    SELECT
        g.level, g.pipeline_id, s.pipeline_name, g.cohort_month, g.manager_key, s.stage_key, s.stage_id,
        s.stage_name, s.step,
        coalesce(r.deals_reached, 0) AS deals_reached,
        coalesce(l.deals_lost, 0) AS deals_lost,
        coalesce(l.amount_lost, 0) AS amount_lost,
        u.median_hours_in_stage
    FROM groups AS g
    JOIN steps AS s USING (pipeline_id)
    LEFT JOIN reached AS r ON r.level = g.level AND r.pipeline_id = g.pipeline_id AND r.cohort_month = g.cohort_month
        AND r.manager_key IS NOT DISTINCT FROM g.manager_key AND r.step = s.step
    LEFT JOIN lost AS l ON l.level = g.level AND l.pipeline_id = g.pipeline_id AND l.cohort_month = g.cohort_month
        AND l.manager_key IS NOT DISTINCT FROM g.manager_key AND l.step = s.step
    LEFT JOIN durations AS u ON u.level = g.level AND u.pipeline_id = g.pipeline_id
        AND u.cohort_month = g.cohort_month AND u.manager_key IS NOT DISTINCT FROM g.manager_key AND u.step = s.step
),
converted AS (
    SELECT
        *,
        lag(deals_reached) OVER w AS previous_reached,
        deals_reached / nullif(first_value(deals_reached) OVER w, 0) AS conversion_from_first,
        deals_reached / nullif(lag(deals_reached) OVER w, 0) AS conversion_from_previous
    FROM counted
    WINDOW w AS (PARTITION BY level, pipeline_id, cohort_month, manager_key ORDER BY step)
),
compared AS (
    SELECT
        c.*,
        median(c.conversion_from_previous) OVER (PARTITION BY c.level, c.pipeline_id, c.cohort_month, c.manager_key)
            AS median_step_conversion,
        p.conversion_from_previous AS previous_month_conversion
    FROM converted AS c
    LEFT JOIN converted AS p
        ON p.level = c.level AND p.pipeline_id = c.pipeline_id AND p.step = c.step
        AND p.manager_key IS NOT DISTINCT FROM c.manager_key
        AND p.cohort_month = c.cohort_month - INTERVAL 1 MONTH
),
judged AS (
    SELECT
        c.*,
        CASE WHEN c.previous_reached >= cfg.gap_min_deals THEN concat_ws('; ',
            CASE WHEN c.conversion_from_previous < cfg.gap_absolute
                 THEN printf('below %.0f%%', 100 * cfg.gap_absolute) END,
            CASE WHEN c.conversion_from_previous < cfg.gap_below_median * c.median_step_conversion
                 THEN printf('below %.2f x the median step (%.0f%%)', cfg.gap_below_median,
                             100 * c.median_step_conversion) END,
            CASE WHEN c.conversion_from_previous < (1 - cfg.gap_drop) * c.previous_month_conversion
                 THEN printf('down from %.0f%% the month before', 100 * c.previous_month_conversion) END)
        END AS gap_rule
    FROM compared AS c, intermediate.settings AS cfg
),
reasons AS (   -- per group and step: the reasons deals were lost at that step, most frequent first
    SELECT level, pipeline_id, cohort_month, manager_key, step,
           string_agg(printf('%s (%d)', reason, n), ', ' ORDER BY n DESC, reason) AS top_lost_reasons
    FROM (
        SELECT *, row_number() OVER (PARTITION BY level, pipeline_id, cohort_month, manager_key, step
                                     ORDER BY n DESC, reason) AS rank
        FROM (
            SELECT CASE GROUPING(l.manager_key) WHEN 0 THEN 'manager' ELSE 'team' END AS level, l.pipeline_id,
                   l.cohort_month, l.manager_key, s.step, r.reason, count(*) AS n
            FROM lost_from AS l
            JOIN steps AS s USING (stage_key)
            JOIN intermediate.deal_lost_reasons AS r USING (deal_id)
            GROUP BY GROUPING SETS ((l.pipeline_id, l.cohort_month, l.manager_key, s.step, r.reason),
                                    (l.pipeline_id, l.cohort_month, s.step, r.reason))
        )
    )
    WHERE rank <= (SELECT top_reasons FROM intermediate.settings)
    GROUP BY ALL
)
SELECT
    j.level, j.pipeline_id, j.pipeline_name, j.cohort_month, j.manager_key, j.stage_key, j.stage_id, j.stage_name,
    j.step AS stage_order, j.deals_reached, j.conversion_from_previous, j.conversion_from_first, j.deals_lost,
    j.amount_lost, j.median_hours_in_stage, j.median_step_conversion, j.previous_month_conversion,
    coalesce(j.gap_rule, '') <> '' AS is_gap,
    nullif(j.gap_rule, '') AS gap_rule,
    r.top_lost_reasons,
    CASE WHEN coalesce(j.gap_rule, '') <> '' THEN p.top_lost_reasons END AS gap_lost_reasons
FROM judged AS j
LEFT JOIN reasons AS r
    ON r.level = j.level AND r.pipeline_id = j.pipeline_id AND r.cohort_month = j.cohort_month
    AND r.manager_key IS NOT DISTINCT FROM j.manager_key AND r.step = j.step
LEFT JOIN reasons AS p
    ON p.level = j.level AND p.pipeline_id = j.pipeline_id AND p.cohort_month = j.cohort_month
    AND p.manager_key IS NOT DISTINCT FROM j.manager_key AND p.step = j.step - 1
