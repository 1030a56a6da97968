-- Key: scope, scope_id, day, metric
-- Grain: one row per scope (a manager or a department) × day × metric, for every day of each month that
-- marts.plan_fact covers: the day's share of the monthly plan (spread evenly over the month's working
-- days; nothing on days off) and the day's fact, counted as in marts.plan_fact (a manager's facts count
-- for the department they belong to at the month's end, or now). The wall monitor's "today".
-- scope: manager or department
-- scope_id: the manager's Bitrix24 user ID or the department's ID
-- day: the calendar day
-- metric: calls, emails, new_deals, won_deals, won_amount, invoices_issued, invoices_issued_amount,
--   invoices_paid or invoices_paid_amount
-- is_working_day: whether the day is a working day by the warehouse's calendar
-- plan: the day's share of the month's plan (NULL when the month has no plan)
-- fact: the day's figure
WITH now AS (
    SELECT as_of FROM intermediate.settings
),
membership AS (   -- grain: user × month: the department the manager belonged to at the month's end (or now)
    SELECT k.user_id, k.period_month, any_value(m.department_id) AS department_id
    FROM (SELECT DISTINCT user_id, CAST(date_trunc('month', day) AS DATE) AS period_month
          FROM intermediate.kpi_daily) AS k
    CROSS JOIN now
    LEFT JOIN core.dim_manager AS m
        ON m.user_id = k.user_id
        AND least(k.period_month + INTERVAL 1 MONTH - INTERVAL 1 MICROSECOND, now.as_of) >= m.valid_from
        AND least(k.period_month + INTERVAL 1 MONTH - INTERVAL 1 MICROSECOND, now.as_of) < m.valid_to
    GROUP BY ALL
),
facts AS (   -- grain: scope × day × metric
    SELECT 'manager' AS scope, user_id AS scope_id, day, metric, fact FROM intermediate.kpi_daily
    UNION ALL
    SELECT 'department', b.department_id, k.day, k.metric, sum(k.fact)
    FROM intermediate.kpi_daily AS k
    JOIN membership AS b ON b.user_id = k.user_id AND b.period_month = date_trunc('month', k.day)
    WHERE b.department_id IS NOT NULL
    GROUP BY ALL
),
months AS (   -- grain: scope × month × metric with a plan or a fact
    SELECT DISTINCT scope, scope_id, CAST(date_trunc('month', day) AS DATE) AS period_month, metric FROM facts
    UNION
    SELECT scope, scope_id, period_month, metric FROM intermediate.plans
),
calendar AS (
    SELECT date, month_start, is_working_day,
           count(*) FILTER (WHERE is_working_day) OVER (PARTITION BY month_start) AS working_days
    FROM core.dim_date
)
SELECT
    m.scope,
    m.scope_id,
    c.date AS day,
    m.metric,
    c.is_working_day,
    CASE WHEN p.plan IS NULL THEN NULL WHEN c.is_working_day THEN p.plan / c.working_days ELSE 0 END AS plan,
    coalesce(f.fact, 0) AS fact
FROM months AS m
JOIN calendar AS c ON c.month_start = m.period_month
LEFT JOIN intermediate.plans AS p USING (scope, scope_id, period_month, metric)
LEFT JOIN facts AS f ON f.scope = m.scope AND f.scope_id = m.scope_id AND f.day = c.date AND f.metric = m.metric
