                 UPDATE __TABLE__ j SET lease_until = now() + $4 * interval '1 microsecond'
                 FROM unnest($1::uuid[], $2::int4[]) AS u(id, attempt)
                 WHERE j.id = u.id AND __RUNNING__ AND j.attempt = u.attempt
                   AND j.locked_by = $3
                 RETURNING j.id
