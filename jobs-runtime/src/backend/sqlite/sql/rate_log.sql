-- Logs a start at ?1 for each rate key of the JSON array ?2.
INSERT INTO jobs_rate_log (key, at) SELECT value, ?1 FROM json_each(?2)
