-- Key: manager_key
-- Grain: one row per manager with open deals: how many of them have nothing planned, for the head of
-- sales' daily check (the deals themselves are in marts.deals_without_activities).
-- manager_key: the manager (core.dim_manager, current version)
-- user_id: the manager's Bitrix24 user ID
-- full_name: the manager's name
-- open_deals: the manager's open deals
-- forgotten_deals: open deals with no open activity
-- forgotten_amount: their amount
-- forgotten_with_overdue: forgotten deals that also have overdue activities
-- forgotten_share: forgotten_deals over open_deals
WITH open_deals AS (
    SELECT manager_key, count(*) AS open_deals FROM core.fact_deal
    WHERE status = 'open' AND NOT is_deleted
    GROUP BY manager_key
),
forgotten AS (
    SELECT manager_key, count(*) AS forgotten_deals, sum(coalesce(amount, 0)) AS forgotten_amount,
           count(*) FILTER (WHERE has_overdue_activity) AS forgotten_with_overdue
    FROM marts.deals_without_activities
    GROUP BY manager_key
)
SELECT
    o.manager_key,
    m.user_id,
    m.full_name,
    o.open_deals,
    coalesce(f.forgotten_deals, 0) AS forgotten_deals,
    coalesce(f.forgotten_amount, 0) AS forgotten_amount,
    coalesce(f.forgotten_with_overdue, 0) AS forgotten_with_overdue,
    coalesce(f.forgotten_deals, 0) / o.open_deals AS forgotten_share
FROM open_deals AS o
LEFT JOIN forgotten AS f USING (manager_key)
LEFT JOIN core.dim_manager AS m USING (manager_key)
