-- Grain: one row per scope (a manager or a department) × month × metric: the plan users keep in the plans
-- file (staging.plans), the fact so far, and the pace. Facts: calls (completed, incoming and outgoing,
-- missed ones not), emails (sent), new_deals, won_deals and won_amount (by the day deals were won),
-- invoices_issued and invoices_paid with their amounts; a manager's facts count for the department
-- they belong to at the end of the month (or now). Expected by today is the plan times the share of
-- the month's working days gone by, today included; the forecast carries today's pace to the month's
-- end. Rows exist for every plan, and for every scope and month with a fact.
-- scope: manager or department
-- scope_id: the manager's Bitrix24 user ID or the department's ID
-- scope_name: the manager's or the department's name
-- is_active: whether the manager still works in the portal (always true for departments)
-- period_month: the month's first day
-- metric: calls, emails, new_deals, won_deals, won_amount, invoices_issued, invoices_issued_amount,
--   invoices_paid or invoices_paid_amount
-- plan: the planned figure (NULL when there is no plan)
-- fact: the figure so far
-- pct_done: fact over plan (NULL without a plan above 0)
-- expected_by_today: where the fact should be by the end of today to meet the plan at an even pace
-- forecast: the fact the month will end with at the current pace (the fact itself for past months)
-- working_days: working days in the month
-- working_days_elapsed: of them, the days gone by, today included
WITH now AS (
    SELECT as_of, CAST(as_of AS DATE) AS today FROM staging.settings
),
activity AS (
    SELECT user_id, period_start AS period_month, calls_incoming + calls_outgoing AS calls,
           emails_outgoing AS emails, deals_created AS new_deals, deals_won AS won_deals
    FROM marts.manager_activity
    WHERE period_grain = 'month'
),
facts AS (
    SELECT user_id, period_month, metric, CAST(fact AS DECIMAL(18, 2)) AS fact
    FROM activity UNPIVOT (fact FOR metric IN (calls, emails, new_deals, won_deals))
    UNION ALL
    SELECT user_id, CAST(date_trunc('month', closed_at) AS DATE), 'won_amount', sum(coalesce(amount, 0))
    FROM core.fact_deal, now
    WHERE status = 'won' AND NOT is_deleted AND closed_at <= now.as_of
    GROUP BY ALL
    UNION ALL
    SELECT user_id, CAST(date_trunc('month', issued_at) AS DATE), m.metric,
           CASE m.metric WHEN 'invoices_issued' THEN count(*) ELSE sum(coalesce(amount, 0)) END
    FROM core.fact_invoice, now, (VALUES ('invoices_issued'), ('invoices_issued_amount')) AS m(metric)
    WHERE NOT is_deleted AND issued_at <= now.as_of
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT user_id, CAST(date_trunc('month', paid_at) AS DATE), m.metric,
           CASE m.metric WHEN 'invoices_paid' THEN count(*) ELSE sum(coalesce(amount, 0)) END
    FROM core.fact_invoice, now, (VALUES ('invoices_paid'), ('invoices_paid_amount')) AS m(metric)
    WHERE NOT is_deleted AND status = 'paid' AND paid_at <= now.as_of
    GROUP BY 1, 2, 3
),
membership AS (   -- grain: user × month: the department the manager belonged to at the month's end (or now)
    SELECT f.user_id, f.period_month, any_value(m.department_id) AS department_id
    FROM (SELECT DISTINCT user_id, period_month FROM facts) AS f
    CROSS JOIN now
    LEFT JOIN core.dim_manager AS m
        ON m.user_id = f.user_id
        AND least(f.period_month + INTERVAL 1 MONTH - INTERVAL 1 MICROSECOND, now.as_of) >= m.valid_from
        AND least(f.period_month + INTERVAL 1 MONTH - INTERVAL 1 MICROSECOND, now.as_of) < m.valid_to
    GROUP BY ALL
),
scoped AS (
    SELECT 'manager' AS scope, user_id AS scope_id, period_month, metric, fact FROM facts WHERE user_id IS NOT NULL
    UNION ALL
    SELECT 'department', b.department_id, f.period_month, f.metric, sum(f.fact)
    FROM facts AS f JOIN membership AS b USING (user_id, period_month)
    WHERE b.department_id IS NOT NULL
    GROUP BY ALL
),
combined AS (
    SELECT coalesce(s.scope, p.scope) AS scope, coalesce(s.scope_id, p.scope_id) AS scope_id,
           coalesce(s.period_month, p.period_month) AS period_month, coalesce(s.metric, p.metric) AS metric,
           p.plan, coalesce(s.fact, 0) AS fact
    FROM scoped AS s
    FULL JOIN staging.plans AS p USING (scope, scope_id, period_month, metric)
),
calendar AS (   -- grain: month
    SELECT month_start AS period_month, count(*) AS working_days,
           count(*) FILTER (WHERE date <= (SELECT today FROM now)) AS working_days_elapsed
    FROM core.dim_date
    WHERE is_working_day
    GROUP BY month_start
),
names AS (
    SELECT 'manager' AS scope, user_id AS scope_id, full_name AS scope_name, is_active
    FROM core.dim_manager WHERE is_current AND user_id IS NOT NULL
    UNION ALL
    SELECT 'department', department_id, department_name, true FROM staging.departments
)
SELECT
    c.scope,
    c.scope_id,
    n.scope_name,
    coalesce(n.is_active, false) AS is_active,
    c.period_month,
    c.metric,
    c.plan,
    c.fact,
    c.fact / nullif(c.plan, 0) AS pct_done,
    c.plan * coalesce(k.working_days_elapsed, 0) / nullif(k.working_days, 0) AS expected_by_today,
    CASE WHEN c.period_month = date_trunc('month', now.today) AND k.working_days_elapsed > 0
         THEN c.fact * k.working_days / k.working_days_elapsed ELSE c.fact END AS forecast,
    coalesce(k.working_days, 0) AS working_days,
    coalesce(k.working_days_elapsed, 0) AS working_days_elapsed
FROM combined AS c
CROSS JOIN now
LEFT JOIN calendar AS k USING (period_month)
LEFT JOIN names AS n USING (scope, scope_id)
