-- The job holding each unique key now, if any (a fresh snapshot: it sees
-- the holders that made an enqueue's insert do nothing).
                 SELECT k.ord, j.id, j.status
                 FROM unnest($1::text[], $2::int4[]) AS k(key, ord)
                 JOIN __TABLE__ j ON j.unique_key = k.key AND __HOLDS__
