-- Scope: entity_type, entity_id
-- Since: event_at
-- Grain: one row per event of a user: with whom, when and about what each manager communicated, which
-- tasks they added and closed, which deals they created, moved, won or lost, which invoices they issued
-- and saw paid, which contacts and companies they created. Activities count for their responsible user,
-- deals and their moves for the deal's current responsible. Deleted records and anything after
-- intermediate.settings.as_of are left out.
-- user_id: the user's Bitrix24 user ID
-- manager_key: the user's version (core.dim_manager) in effect at the event
-- event_at: when it happened (portal time)
-- event_type: call_outgoing, call_incoming, call_missed, email_outgoing, email_incoming, meeting,
--   task_created, task_closed, deal_created, deal_moved, deal_won, deal_lost, invoice_issued, invoice_paid,
--   contact_created or company_created
-- entity_type: what the event is about: deal, lead, contact, company or invoice
-- entity_id: its Bitrix24 ID
-- entity_title: its title or name, where the warehouse has it
-- description: the event in words, such as: moved deal 'Acme' from Proposal to Negotiation
WITH now AS (
    SELECT as_of FROM intermediate.settings
),
titles AS (   -- {keys}: the records whose events are redone, all of them in a full build
    FROM (
        SELECT 'deal' AS entity_type, deal_id AS entity_id, title FROM core.fact_deal
        UNION ALL SELECT 'contact', contact_id, full_name FROM core.dim_contact
        UNION ALL SELECT 'company', company_id, company_name FROM core.dim_company
    )
    WHERE {keys}
),
activities AS (
    SELECT
        a.user_id, a.owner_type AS entity_type, a.owner_id AS entity_id, a.subject, a.duration_seconds,
        a.start_at AS event_at,
        CASE WHEN a.activity_type = 'call' AND a.is_missed_call THEN 'call_missed'
             WHEN a.activity_type IN ('call', 'email') AND a.completed THEN a.activity_type || '_' || a.direction
             WHEN a.activity_type = 'meeting' AND a.completed THEN 'meeting' END AS event_type
    FROM core.fact_activity AS a
    WHERE a.activity_type NOT IN ('task', 'todo')
    UNION ALL   -- tasks (of the Tasks module or CRM task activities, each once) and to-dos
    SELECT user_id, CASE WHEN owner_id IS NULL THEN NULL ELSE owner_type END, owner_id, subject, NULL, created_at,
           'task_created'
    FROM intermediate.work_items
    UNION ALL
    SELECT user_id, CASE WHEN owner_id IS NULL THEN NULL ELSE owner_type END, owner_id, subject, NULL, closed_at,
           'task_closed'
    FROM intermediate.work_items
    WHERE completed
),
moves AS (   -- every stage visit but a deal's first, with the stage it came from
    SELECT v.deal_id, v.entered_at, s.semantics, s.stage_name, p.stage_name AS from_stage
    FROM core.fact_deal_stage AS v
    JOIN core.dim_stage AS s USING (stage_key)
    JOIN core.dim_stage AS p ON p.stage_id = v.previous_stage_id
),
events AS (
    SELECT user_id, event_at, event_type, entity_type, entity_id,
           CASE event_type
               WHEN 'call_outgoing' THEN 'called'
               WHEN 'call_incoming' THEN 'took a call'
               WHEN 'call_missed' THEN 'missed a call'
               WHEN 'email_outgoing' THEN 'sent an e-mail'
               WHEN 'email_incoming' THEN 'received an e-mail'
               WHEN 'meeting' THEN 'met'
               WHEN 'task_created' THEN 'added a task'
               ELSE 'closed a task' END
           || printf(' (%s)', coalesce(subject, ''))
           || CASE WHEN duration_seconds > 0 THEN printf(', %d min', CAST(round(duration_seconds / 60) AS INTEGER))
                   ELSE '' END AS what
    FROM activities
    WHERE event_type IS NOT NULL
    UNION ALL
    SELECT f.user_id, f.created_at, 'deal_created', 'deal', f.deal_id,
           printf('created deal for %s %s', coalesce(format('{:,.0f}', f.amount), '0'), coalesce(f.currency_id, ''))
    FROM core.fact_deal AS f
    WHERE NOT f.is_deleted
    UNION ALL
    SELECT f.user_id, m.entered_at,
           CASE m.semantics WHEN 'success' THEN 'deal_won' WHEN 'failure' THEN 'deal_lost' ELSE 'deal_moved' END,
           'deal', m.deal_id,
           CASE m.semantics WHEN 'success' THEN printf('won deal at %s', m.from_stage)
                            WHEN 'failure' THEN printf('lost deal at %s: %s', m.from_stage, m.stage_name)
                            ELSE printf('moved deal from %s to %s', m.from_stage, m.stage_name) END
    FROM moves AS m
    JOIN core.fact_deal AS f USING (deal_id)
    UNION ALL
    SELECT user_id, issued_at, 'invoice_issued', 'invoice', invoice_id,
           printf('issued invoice %s for %s %s', coalesce(account_number, CAST(invoice_id AS VARCHAR)),
                  coalesce(format('{:,.0f}', amount), '0'), coalesce(currency_id, ''))
    FROM core.fact_invoice WHERE NOT is_deleted
    UNION ALL
    SELECT user_id, paid_at, 'invoice_paid', 'invoice', invoice_id,
           printf('invoice %s paid: %s %s', coalesce(account_number, CAST(invoice_id AS VARCHAR)),
                  coalesce(format('{:,.0f}', amount), '0'), coalesce(currency_id, ''))
    FROM core.fact_invoice WHERE NOT is_deleted AND paid_at IS NOT NULL
    UNION ALL
    SELECT c.user_id, c.created_at, 'contact_created', 'contact', c.contact_id, 'created contact'
    FROM staging.contacts AS c WHERE NOT c.is_deleted
    UNION ALL
    SELECT c.user_id, c.created_at, 'company_created', 'company', c.company_id, 'created company'
    FROM staging.companies AS c WHERE NOT c.is_deleted
)
SELECT
    e.user_id,
    coalesce(m.manager_key, -1) AS manager_key,
    e.event_at,
    e.event_type,
    e.entity_type,
    e.entity_id,
    t.title AS entity_title,
    e.what || CASE WHEN t.title IS NOT NULL THEN printf(' — %s ''%s''', e.entity_type, t.title)
                   WHEN e.entity_type NOT IN ('invoice') THEN printf(' — %s %d', e.entity_type, e.entity_id)
                   ELSE '' END AS description
FROM events AS e
CROSS JOIN now
LEFT JOIN titles AS t USING (entity_type, entity_id)
LEFT JOIN core.dim_manager AS m
    ON m.user_id = e.user_id AND e.event_at >= m.valid_from AND e.event_at < m.valid_to
WHERE e.event_at <= now.as_of
