-- date_key(moment): the day of a portal-local time as the integer yyyymmdd that core.dim_date is keyed on.
CAST(strftime(moment, '%Y%m%d') AS INTEGER)
