-- `locked` takes the row locks first, in `id` order, as every statement that
-- updates several jobs does, so no two of them can wait for each other in a
-- cycle (a deadlock); the update then reaches only the rows `locked` holds,
-- whatever order the planner joins them in. The batch's arrays are unnested
-- once, there: joined again in the update, a generic plan may re-scan them
-- for every row (quadratic in the batch). `cancel`: the job's cancellation
-- was requested, its worker is to stop it.
                 WITH locked AS MATERIALIZED (
                   SELECT u.* FROM unnest($1::uuid[], $2::int8[], $5::int4[]) AS u(id, token, attempt)
                   JOIN __TABLE__ w ON w.id = u.id
                   WHERE w.locked_by = $3
                   ORDER BY u.id
                   FOR NO KEY UPDATE OF w)
                 UPDATE __TABLE__ j SET lease_until = now() + $4 * interval '1 microsecond'
                 FROM locked u
                 WHERE j.id = u.id
                   AND __RUNNING__ AND j.lease_token = u.token AND j.attempt = u.attempt
                   AND j.locked_by = $3
                 RETURNING j.id, j.cancelled_at IS NOT NULL AS cancel
