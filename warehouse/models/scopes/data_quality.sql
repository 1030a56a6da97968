-- Scope of marts.data_quality: the records (entity_type, entity_id) whose broken rules are redone. Every
-- contact and company that changed since the last marts build; every record that shares a phone or e-mail
-- with one of them now, or shared one with it at the last build (its `duplicate` details); and the deals
-- that changed, or came into or left marts.deals_without_activities (rebuilt each time), which their one
-- rule follows.
WITH changed AS (
    SELECT 'contact' AS entity_type, key AS entity_id FROM meta.mart_changes WHERE change_set = 'contacts'
    UNION
    SELECT 'company', key FROM meta.mart_changes WHERE change_set = 'companies'
),
points AS (
    SELECT entity_type, entity_id, kind,
           CASE kind WHEN 'PHONE' THEN staging.normalise_phone(value) ELSE lower(trim(value)) END AS normalised
    FROM intermediate.contact_points
),
touched AS (   -- the changed records' points now, and the points they shared at the last build
    SELECT p.entity_type, p.kind, p.normalised FROM points AS p JOIN changed USING (entity_type, entity_id)
    UNION
    SELECT q.entity_type, upper(split_part(t.point, ' ', 1)), substr(t.point, strpos(t.point, ' ') + 1)
    FROM marts.data_quality AS q JOIN changed USING (entity_type, entity_id),
         unnest(string_split(q.details, ', ')) AS t(point)
    WHERE q.rule = 'duplicate'
)
SELECT entity_type, entity_id FROM changed
UNION
SELECT p.entity_type, p.entity_id FROM points AS p JOIN touched AS t USING (entity_type, kind, normalised)
UNION
SELECT 'deal', deal_id FROM (
    (SELECT entity_id AS deal_id FROM marts.data_quality WHERE entity_type = 'deal'
     EXCEPT SELECT deal_id FROM marts.deals_without_activities)
    UNION
    (SELECT deal_id FROM marts.deals_without_activities
     EXCEPT SELECT entity_id FROM marts.data_quality WHERE entity_type = 'deal')
    UNION
    SELECT key FROM meta.mart_changes WHERE change_set = 'deals'
)
