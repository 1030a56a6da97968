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
events AS (   -- grain: user × day × measure: how many events counted (intermediate.manager_events), call seconds
    SELECT user_id, CAST(event_at AS DATE) AS day, measure, count(*) AS n, sum(seconds) AS seconds
    FROM intermediate.manager_events, now
    WHERE event_at <= now.as_of
    GROUP BY ALL
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
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'calls_incoming'), 0) AS calls_incoming,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'calls_outgoing'), 0) AS calls_outgoing,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'calls_missed'), 0) AS calls_missed,
        coalesce(sum(e.seconds), 0) AS call_seconds,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'emails_incoming'), 0) AS emails_incoming,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'emails_outgoing'), 0) AS emails_outgoing,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'meetings'), 0) AS meetings,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'tasks_created'), 0) AS tasks_created,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'tasks_closed'), 0) AS tasks_closed,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'deals_created'), 0) AS deals_created,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'deals_moved'), 0) AS deals_moved,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'deals_won'), 0) AS deals_won,
        coalesce(sum(e.n) FILTER (WHERE e.measure = 'deals_lost'), 0) AS deals_lost
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
