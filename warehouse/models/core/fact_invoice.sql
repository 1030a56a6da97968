-- Key: invoice_id
-- Changes: invoices
-- Grain: one row per smart invoice: amount, deal, manager, when issued and when paid (its last move to a
-- success stage), status issued/paid/declined.
-- invoice_id: Bitrix24 smart-invoice ID
-- deal_id: the deal it bills
-- manager_key: the responsible user's version when issued
-- user_id: the responsible Bitrix24 user
-- account_number: the invoice number
-- stage_id: its current Bitrix24 stage
-- status: issued, paid or declined
-- amount: the invoice's amount
-- currency_id: its currency
-- issued_at: when it was created (portal time)
-- issued_date_key: the day it was issued, yyyymmdd
-- paid_at: its last move to the paid stage
-- paid_date_key: the day it was paid, yyyymmdd
-- is_deleted: deleted in Bitrix24
WITH final_moves AS (
    SELECT invoice_id, max(changed_at) FILTER (WHERE stage_semantic_id = 'S') AS paid_at,
           max(changed_at) FILTER (WHERE stage_semantic_id = 'F') AS declined_at
    FROM staging.invoice_stage_history
    GROUP BY invoice_id
),
stages AS (
    SELECT code AS stage_id, semantics FROM staging.directory WHERE directory LIKE 'SMART_INVOICE_STAGE%'
)
SELECT
    i.invoice_id,
    i.deal_id,
    coalesce(m.manager_key, -1) AS manager_key,
    i.user_id,
    i.account_number,
    i.stage_id,
    CASE st.semantics WHEN 'S' THEN 'paid' WHEN 'F' THEN 'declined' ELSE 'issued' END AS status,
    i.amount,
    i.currency_id,
    i.created_at AS issued_at,
    staging.date_key(i.created_at) AS issued_date_key,
    CASE WHEN st.semantics = 'S' THEN f.paid_at END AS paid_at,
    CASE WHEN st.semantics = 'S' THEN staging.date_key(f.paid_at) END AS paid_date_key,
    i.is_deleted
FROM staging.invoices AS i
LEFT JOIN final_moves AS f USING (invoice_id)
LEFT JOIN stages AS st USING (stage_id)
LEFT JOIN core.dim_manager AS m ON m.user_id = i.user_id AND i.created_at >= m.valid_from AND i.created_at < m.valid_to
