-- surrogate_key(natural_key): a stable BIGINT key for a natural key (a value, or a row of values such as
-- (user_id, version_number)), within the 53 bits BI tools read as exact numbers.
CAST(hash(natural_key) % 9007199254740991 AS BIGINT)
