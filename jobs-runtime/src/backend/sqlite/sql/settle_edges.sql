-- Settles the edges from parent ?1 to the children (hex) of the JSON array
-- ?2, and returns the children whose edge was not settled before. (The WHERE
-- clause tells SQLite's parser that ON CONFLICT belongs to the INSERT.)
INSERT INTO jobs_edges (child, parent)
SELECT unhex(value), ?1 FROM json_each(?2) WHERE true
ON CONFLICT DO NOTHING
RETURNING child
