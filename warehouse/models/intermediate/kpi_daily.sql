-- Grain: one row per user × day × plan-versus-fact metric that day has a fact for: calls (completed,
-- incoming and outgoing, missed ones not), emails (sent), new_deals, won_deals (as in
-- marts.manager_activity), won_amount (deals won that day), invoices_issued and invoices_paid with their
-- amounts (by the day issued and paid). Nothing after intermediate.settings.as_of.
WITH now AS (
    SELECT as_of FROM intermediate.settings
),
activity AS (
    SELECT user_id, period_start AS day, calls_incoming + calls_outgoing AS calls, emails_outgoing AS emails,
           deals_created AS new_deals, deals_won AS won_deals
    FROM marts.manager_activity
    WHERE period_grain = 'day'
),
facts AS (
    SELECT user_id, day, metric, CAST(fact AS DECIMAL(18, 2)) AS fact
    FROM activity UNPIVOT (fact FOR metric IN (calls, emails, new_deals, won_deals))
    UNION ALL
    SELECT user_id, CAST(closed_at AS DATE), 'won_amount', sum(coalesce(amount, 0))
    FROM core.fact_deal, now
    WHERE status = 'won' AND NOT is_deleted AND closed_at <= now.as_of
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT user_id, CAST(issued_at AS DATE), m.metric,
           CASE m.metric WHEN 'invoices_issued' THEN count(*) ELSE sum(coalesce(amount, 0)) END
    FROM core.fact_invoice, now, (VALUES ('invoices_issued'), ('invoices_issued_amount')) AS m(metric)
    WHERE NOT is_deleted AND issued_at <= now.as_of
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT user_id, CAST(paid_at AS DATE), m.metric,
           CASE m.metric WHEN 'invoices_paid' THEN count(*) ELSE sum(coalesce(amount, 0)) END
    FROM core.fact_invoice, now, (VALUES ('invoices_paid'), ('invoices_paid_amount')) AS m(metric)
    WHERE NOT is_deleted AND status = 'paid' AND paid_at <= now.as_of
    GROUP BY 1, 2, 3
)
SELECT user_id, day, metric, fact
FROM facts
WHERE user_id IS NOT NULL AND fact <> 0
