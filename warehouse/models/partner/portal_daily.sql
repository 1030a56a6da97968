-- Key: portal, day
-- Grain: one row per portal × day of its own calendar, from the day of its first deal to the day its newest
-- publication describes; read from that publication (core and marts), one portal at a time. The partner's
-- view of every client: how much business each portal did, how it stands against plan, how many deals are
-- forgotten, how fresh its data is and whether its last run failed.
-- portal: the portal's name in the settings file
-- day: the day, on the portal's calendar
-- deals_created: deals created that day (deleted ones left out)
-- won_deals: deals won that day (their last move to a won stage)
-- won_amount: the amount of those deals
-- currency_id: the portal's main currency
-- plan_percent: the team's won amount in the month up to that day (every manager's, as marts.plan_fact counts
--   it), as a percentage of the month's won-amount plans of all managers together; NULL where the month has no plan
-- forgotten_deals: open deals with nothing planned, on the day the publication describes (NULL before)
-- published_at: when the newest publication was made, on its day (NULL before)
-- last_error: the portal's last failed command and its one-line error, on the newest day, if its last run failed
WITH publication AS (
    SELECT CAST(as_of AS DATE) AS today, published_at FROM meta.publication
),
live AS (
    SELECT created_at, closed_at, status, amount, currency_id FROM core.fact_deal WHERE NOT is_deleted
),
days AS (
    SELECT CAST(d.day AS DATE) AS day
    FROM publication,
         generate_series(coalesce((SELECT min(CAST(created_at AS DATE)) FROM live), publication.today),
                         publication.today, INTERVAL 1 DAY) AS d(day)
),
created AS (
    SELECT CAST(created_at AS DATE) AS day, count(*) AS deals_created FROM live GROUP BY ALL
),
won AS (
    SELECT CAST(closed_at AS DATE) AS day, count(*) AS won_deals, sum(amount) AS won_amount
    FROM live WHERE status = 'won' GROUP BY ALL
),
month_plan AS (   -- grain: month
    SELECT period_month, sum(plan) AS plan
    FROM marts.plan_fact WHERE scope = 'manager' AND metric = 'won_amount' GROUP BY ALL
),
to_date AS (      -- grain: day: the month's won amount so far, counted as plan against fact counts it
    SELECT day, sum(sum(fact)) OVER (PARTITION BY date_trunc('month', day) ORDER BY day) AS won_to_date
    FROM marts.plan_fact_daily WHERE scope = 'manager' AND metric = 'won_amount' GROUP BY day
)
SELECT
    CAST($portal AS VARCHAR) AS portal,
    d.day,
    coalesce(c.deals_created, 0) AS deals_created,
    coalesce(w.won_deals, 0) AS won_deals,
    CAST(coalesce(w.won_amount, 0) AS DECIMAL(18, 2)) AS won_amount,
    (SELECT mode(currency_id) FROM live) AS currency_id,
    CAST(round(100 * t.won_to_date / nullif(p.plan, 0), 1) AS DOUBLE) AS plan_percent,
    CASE WHEN d.day = pub.today THEN (SELECT count(*) FROM marts.deals_without_activities) END AS forgotten_deals,
    CASE WHEN d.day = pub.today THEN pub.published_at END AS published_at,
    CASE WHEN d.day = pub.today THEN CAST($last_error AS VARCHAR) END AS last_error
FROM days AS d
CROSS JOIN publication AS pub
LEFT JOIN created AS c USING (day)
LEFT JOIN won AS w USING (day)
LEFT JOIN to_date AS t USING (day)
LEFT JOIN month_plan AS p ON p.period_month = CAST(date_trunc('month', d.day) AS DATE)
ORDER BY d.day
