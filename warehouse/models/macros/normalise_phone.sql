-- normalise_phone(raw): the E.164 digits of a Russian or international phone number, or NULL when the text
-- is not one. 8 912 345-67-89, +7 (912) 345-67-89, 89123456789 and 9123456789 all give 79123456789;
-- +44 20 7946 0958 gives 442079460958 (11 to 15 digits after a +).
CASE
    WHEN length(regexp_replace(raw, '\D', '', 'g')) = 11 AND regexp_replace(raw, '\D', '', 'g')[1] IN ('7', '8')
        THEN '7' || regexp_replace(raw, '\D', '', 'g')[2:]
    WHEN length(regexp_replace(raw, '\D', '', 'g')) = 10 AND regexp_replace(raw, '\D', '', 'g')[1] = '9'
        THEN '7' || regexp_replace(raw, '\D', '', 'g')
    WHEN length(regexp_replace(raw, '\D', '', 'g')) BETWEEN 11 AND 15 AND ltrim(raw) LIKE '+%'
        THEN regexp_replace(raw, '\D', '', 'g')
END
