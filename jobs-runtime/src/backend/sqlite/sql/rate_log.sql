-- Logs a start at ?1 for each [key, window in microseconds] pair of the JSON
-- array ?2, kept until its window has passed.
INSERT INTO jobs_rate_log (key, at, expires_at)
SELECT json_extract(value, '$[0]'), ?1, ?1 + json_extract(value, '$[1]')
FROM json_each(?2)
