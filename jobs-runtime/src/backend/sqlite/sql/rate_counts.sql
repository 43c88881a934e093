-- For each [rate key, since] pair of the JSON array ?1: how many jobs of the
-- key started after `since` (the window's start). Expired starts are
-- forgotten by rate_sweep.sql, not here.
SELECT json_extract(k.value, '$[0]'),
    (SELECT COUNT(*) FROM jobs_rate_log
        WHERE key = json_extract(k.value, '$[0]')
            AND at > json_extract(k.value, '$[1]'))
FROM json_each(?1) AS k
