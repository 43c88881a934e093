-- One more settled edge for each child (hex) of the JSON array ?1 (each
-- once), and the children's counts now.
INSERT INTO jobs_waits (child, settled)
SELECT unhex(value), 1 FROM json_each(?1) WHERE true
ON CONFLICT (child) DO UPDATE SET settled = settled + 1
RETURNING child, settled
