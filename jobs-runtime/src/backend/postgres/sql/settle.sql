-- Settles the edges from parent $2 to the children $1 (distinct, sorted: the
-- counters are locked in that order, so concurrent settles cannot deadlock).
-- Each new edge adds one to its child's count; an edge settled before
-- changes nothing. Returns the children of the new edges and their counts.
                 WITH e AS (
                   INSERT INTO __EDGES__ (child, parent)
                   SELECT c, $2::uuid FROM unnest($1::uuid[]) AS c
                   ON CONFLICT DO NOTHING
                   RETURNING child)
                 INSERT INTO __WAITS__ AS w (child, settled)
                 SELECT child, 1 FROM e ORDER BY child
                 ON CONFLICT (child) DO UPDATE SET settled = w.settled + 1
                 RETURNING child, settled
