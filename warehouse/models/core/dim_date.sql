-- Key: date_key
-- Grain: one row per calendar day, from the first day with CRM data to a year after the last.
-- date_key: the day as yyyymmdd, the key facts use
-- date: the calendar day
-- year: calendar year
-- quarter: calendar quarter 1-4
-- month: calendar month 1-12
-- iso_year: ISO week-numbering year
-- iso_week: ISO week 1-53
-- week_start: the Monday of the day's week
-- month_start: the first day of the month
-- iso_day_of_week: 1 Monday to 7 Sunday
-- is_working_day: not a weekend day nor a holiday of the configured calendar ([calendar] in b24wh.toml)
WITH bounds AS (
    SELECT
        -- every fact's day: deals, activities, calls, invoices and tasks may each come first. They are read
        -- from their facts, which hold every staged row with its time already converted; the staging views
        -- would convert every row again (3 s at a million deals for the activities and calls).
        least(
            (SELECT min(created_at) FROM core.fact_deal),
            (SELECT min(coalesce(start_at, created_at)) FROM core.fact_activity),
            (SELECT min(started_at) FROM core.fact_call),
            (SELECT min(issued_at) FROM core.fact_invoice),
            (SELECT min(created_at) FROM core.fact_task)
        )::DATE AS first_day,
        greatest(
            (SELECT max(modified_at) FROM staging.deals),
            (SELECT max(coalesce(deadline_at, start_at)) FROM core.fact_activity),
            current_date
        )::DATE + INTERVAL 366 DAY AS last_day
),
days AS (
    SELECT CAST(day AS DATE) AS date
    FROM bounds, generate_series(coalesce(first_day, current_date), last_day, INTERVAL 1 DAY) AS t(day)
)
SELECT
    staging.date_key(date) AS date_key,
    date,
    year(date) AS year,
    quarter(date) AS quarter,
    month(date) AS month,
    isoyear(date) AS iso_year,
    week(date) AS iso_week,
    CAST(date_trunc('week', date) AS DATE) AS week_start,
    CAST(date_trunc('month', date) AS DATE) AS month_start,
    isodow(date) AS iso_day_of_week,
    isodow(date) NOT IN (SELECT iso_day_of_week FROM staging.weekend)
        AND date NOT IN (SELECT holiday FROM staging.holidays) AS is_working_day
FROM days
