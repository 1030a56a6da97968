-- Key: user_id, period_grain, period_start
-- Grain: one row per manager × period grain (day, week, month) × period: what each manager did. A
-- manager has a row for every working day from their first CRM record to today (to their last record
-- if they left), zeros included, so idleness shows; days off appear only when something happened.
-- Weeks and months add up their days. Activities count by their start (calls, e-mails, meetings:
-- completed ones; missed calls: incoming calls of zero length), tasks and to-dos by creation and, when
-- completed, by closing (intermediate.work_items: each task once, whether CRM-bound or not); deals by
-- creation, forward moves, and the day they were won or lost.
-- Deals and their moves count for the deal's current responsible manager. Nothing after
-- intermediate.settings.as_of counts.
-- user_id: the manager's Bitrix24 user ID
-- manager_key: the manager's version (core.dim_manager) in effect at the end of the period
-- period_grain: day, week or month
-- period_start: the period's first day (weeks start on Monday)
-- working_days: working days in the period, by the warehouse's working calendar
-- calls_incoming: completed incoming calls
-- calls_outgoing: completed outgoing calls
-- calls_missed: incoming calls nobody answered (zero length)
-- call_minutes: minutes spent in completed calls
-- emails_incoming: e-mails received
-- emails_outgoing: e-mails sent
-- meetings: meetings held
-- tasks_created: tasks (of the Tasks module and CRM task activities, each once) and to-dos created
-- tasks_closed: tasks and to-dos completed
-- deals_created: deals created
-- deals_moved: moves of a deal forward to a later in-progress stage of its pipeline
-- deals_won: deals won (the day of their final move to a won stage)
-- deals_lost: deals lost (the day of their final move to a failure stage)
WITH now AS (
    SELECT as_of FROM intermediate.settings
),
calls AS (
    SELECT user_id, CAST(start_at AS DATE) AS day,
        CASE WHEN is_missed_call THEN 'calls_missed' WHEN NOT completed THEN NULL
             WHEN direction = 'incoming' THEN 'calls_incoming' ELSE 'calls_outgoing' END AS measure,
        CASE WHEN completed AND NOT is_missed_call THEN duration_seconds ELSE 0 END AS seconds
    FROM core.fact_activity, now
    WHERE activity_type = 'call' AND start_at <= now.as_of
),
moves AS (
    SELECT deal_id, pipeline_id, entered_at, s.semantics, s.stage_order,
           lag(pipeline_id) OVER w AS previous_pipeline_id, lag(s.semantics) OVER w AS previous_semantics,
           lag(s.stage_order) OVER w AS previous_order
    FROM core.fact_deal_stage JOIN core.dim_stage AS s USING (stage_key, pipeline_id)
    WINDOW w AS (PARTITION BY deal_id ORDER BY entered_at, history_id)
),
events AS (   -- grain: one row per counted event: user, day, measure, and call seconds
    SELECT user_id, day, measure, seconds FROM calls WHERE measure IS NOT NULL
    UNION ALL
    SELECT user_id, CAST(start_at AS DATE),
           CASE activity_type WHEN 'meeting' THEN 'meetings'
                ELSE CASE direction WHEN 'incoming' THEN 'emails_incoming' ELSE 'emails_outgoing' END END, 0
    FROM core.fact_activity, now
    WHERE activity_type IN ('email', 'meeting') AND completed AND start_at <= now.as_of
    UNION ALL
    SELECT user_id, CAST(created_at AS DATE), 'tasks_created', 0
    FROM intermediate.work_items, now
    WHERE created_at <= now.as_of
    UNION ALL
    SELECT user_id, CAST(closed_at AS DATE), 'tasks_closed', 0
    FROM intermediate.work_items, now
    WHERE completed AND closed_at <= now.as_of
    UNION ALL
    SELECT user_id, CAST(created_at AS DATE), 'deals_created', 0
    FROM core.fact_deal, now
    WHERE NOT is_deleted AND created_at <= now.as_of
    UNION ALL
    SELECT f.user_id, CAST(m.entered_at AS DATE), 'deals_moved', 0
    FROM moves AS m JOIN core.fact_deal AS f USING (deal_id), now
    WHERE m.semantics = 'process' AND m.previous_semantics = 'process' AND m.pipeline_id = m.previous_pipeline_id
      AND m.stage_order > m.previous_order AND m.entered_at <= now.as_of
    UNION ALL
    SELECT user_id, CAST(closed_at AS DATE), CASE status WHEN 'won' THEN 'deals_won' ELSE 'deals_lost' END, 0
    FROM core.fact_deal, now
    WHERE status IN ('won', 'lost') AND NOT is_deleted AND closed_at <= now.as_of
),
people AS (   -- who is counted, and over which days
    SELECT e.user_id, min(e.day) AS first_day,
           CASE WHEN coalesce(bool_or(m.is_active), false) THEN CAST((SELECT as_of FROM now) AS DATE)
                ELSE max(e.day) END AS last_day
    FROM events AS e
    LEFT JOIN core.dim_manager AS m ON m.user_id = e.user_id AND m.is_current
    WHERE e.user_id IS NOT NULL
    GROUP BY e.user_id
),
days AS (   -- every working day of each person's span, and any other day something happened
    SELECT p.user_id, d.date AS day
    FROM people AS p JOIN core.dim_date AS d ON d.date BETWEEN p.first_day AND p.last_day AND d.is_working_day
    UNION
    SELECT DISTINCT user_id, day FROM events WHERE user_id IS NOT NULL
),
daily AS (
    SELECT
        d.user_id, d.day,
        count(e.measure) FILTER (WHERE e.measure = 'calls_incoming') AS calls_incoming,
        count(e.measure) FILTER (WHERE e.measure = 'calls_outgoing') AS calls_outgoing,
        count(e.measure) FILTER (WHERE e.measure = 'calls_missed') AS calls_missed,
        coalesce(sum(e.seconds), 0) AS call_seconds,
        count(e.measure) FILTER (WHERE e.measure = 'emails_incoming') AS emails_incoming,
        count(e.measure) FILTER (WHERE e.measure = 'emails_outgoing') AS emails_outgoing,
        count(e.measure) FILTER (WHERE e.measure = 'meetings') AS meetings,
        count(e.measure) FILTER (WHERE e.measure = 'tasks_created') AS tasks_created,
        count(e.measure) FILTER (WHERE e.measure = 'tasks_closed') AS tasks_closed,
        count(e.measure) FILTER (WHERE e.measure = 'deals_created') AS deals_created,
        count(e.measure) FILTER (WHERE e.measure = 'deals_moved') AS deals_moved,
        count(e.measure) FILTER (WHERE e.measure = 'deals_won') AS deals_won,
        count(e.measure) FILTER (WHERE e.measure = 'deals_lost') AS deals_lost
    FROM days AS d
    LEFT JOIN events AS e USING (user_id, day)
    GROUP BY d.user_id, d.day
),
periods AS (
    SELECT g.grain AS period_grain,
           CASE g.grain WHEN 'day' THEN y.day WHEN 'week' THEN c.week_start ELSE c.month_start END AS period_start,
           y.*, c.is_working_day
    FROM daily AS y
    JOIN core.dim_date AS c ON c.date = y.day
    CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS g(grain)
)
SELECT
    p.user_id,
    coalesce(arg_max(m.manager_key, p.day), -1) AS manager_key,
    p.period_grain,
    p.period_start,
    (SELECT count(*) FROM core.dim_date AS c WHERE c.is_working_day AND c.date >= p.period_start AND c.date <
        p.period_start + CASE p.period_grain WHEN 'day' THEN INTERVAL 1 DAY WHEN 'week' THEN INTERVAL 7 DAY
                                             ELSE INTERVAL 1 MONTH END) AS working_days,
    -- counts stay BIGINT (a sum of counts is HUGEINT in DuckDB, which BI tools read as floating point)
    CAST(sum(calls_incoming) AS BIGINT) AS calls_incoming, CAST(sum(calls_outgoing) AS BIGINT) AS calls_outgoing,
    CAST(sum(calls_missed) AS BIGINT) AS calls_missed,
    sum(call_seconds) / 60.0 AS call_minutes,   -- from whole seconds: the same figure whatever the sum's order
    CAST(sum(emails_incoming) AS BIGINT) AS emails_incoming, CAST(sum(emails_outgoing) AS BIGINT) AS emails_outgoing,
    CAST(sum(meetings) AS BIGINT) AS meetings, CAST(sum(tasks_created) AS BIGINT) AS tasks_created,
    CAST(sum(tasks_closed) AS BIGINT) AS tasks_closed, CAST(sum(deals_created) AS BIGINT) AS deals_created,
    CAST(sum(deals_moved) AS BIGINT) AS deals_moved, CAST(sum(deals_won) AS BIGINT) AS deals_won,
    CAST(sum(deals_lost) AS BIGINT) AS deals_lost
FROM periods AS p
LEFT JOIN core.dim_manager AS m
    ON m.user_id = p.user_id AND m.valid_from < p.day + INTERVAL 1 DAY AND m.valid_to >= p.day + INTERVAL 1 DAY
GROUP BY p.user_id, p.period_grain, p.period_start
