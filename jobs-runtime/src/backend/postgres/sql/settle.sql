-- Settles the (child, parent) edges given as the arrays $1 (children) and
-- $2 (parents), sorted by child then parent: the rows are locked in that
-- order, so concurrent settles cannot deadlock. Each new edge adds one to
-- its child's count (all of one child's new edges in one update); an edge
-- settled before changes nothing. Returns the children of the new edges
-- and their counts.
                 WITH e AS (
                   INSERT INTO __EDGES__ (child, parent)
                   SELECT c, p FROM unnest($1::uuid[], $2::uuid[]) AS t(c, p)
                   ON CONFLICT DO NOTHING
                   RETURNING child)
                 INSERT INTO __WAITS__ AS w (child, settled)
                 SELECT child, count(*) FROM e GROUP BY child ORDER BY child
                 ON CONFLICT (child) DO UPDATE SET settled = w.settled + excluded.settled
                 RETURNING child, settled
