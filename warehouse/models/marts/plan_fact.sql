-- Key: scope, scope_id, period_month, metric
-- Grain: one row per scope (a manager or a department) × month × metric: the plan users keep in the plans
-- file (intermediate.plans), the fact so far (the month's days in marts.plan_fact_daily, counted as
-- intermediate.kpi_daily says; a manager's facts count for the department they belong to at the end of
-- the month, or now), and the pace. Expected by today is the plan times the share of
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
    SELECT as_of, CAST(as_of AS DATE) AS today FROM intermediate.settings
),
combined AS (   -- grain: scope × month × metric, from the daily figures
    SELECT d.scope, d.scope_id, CAST(date_trunc('month', d.day) AS DATE) AS period_month, d.metric,
           any_value(p.plan) AS plan, sum(d.fact) AS fact
    FROM marts.plan_fact_daily AS d
    LEFT JOIN intermediate.plans AS p
        ON p.scope = d.scope AND p.scope_id = d.scope_id AND p.metric = d.metric
        AND p.period_month = date_trunc('month', d.day)
    GROUP BY ALL
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
