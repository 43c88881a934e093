-- The latest progress of running jobs, each under its fence (a report of a
-- lost lease changes nothing); rows locked in `id` order (see heartbeat.sql).
                 WITH locked AS MATERIALIZED (
                   SELECT u.* FROM unnest($1::uuid[], $2::int8[], $3::jsonb[]) AS u(id, token, progress)
                   JOIN __TABLE__ w ON w.id = u.id
                   ORDER BY u.id
                   FOR NO KEY UPDATE OF w)
                 UPDATE __TABLE__ j SET progress = u.progress
                 FROM locked u
                 WHERE j.id = u.id AND __RUNNING__ AND j.lease_token = u.token
