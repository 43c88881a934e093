-- How many edges of each child (hex) of the JSON array ?1 settled so far.
SELECT child, settled FROM jobs_waits
WHERE child IN (SELECT unhex(value) FROM json_each(?1))
