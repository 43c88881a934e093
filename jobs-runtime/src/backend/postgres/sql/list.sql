                 SELECT __COLS__ FROM __TABLE__
                 WHERE ($1::text IS NULL OR queue_name = $1)
                   AND ($2::text IS NULL OR status = $2)
                   AND ($3::text IS NULL OR job_type = $3)
                   AND ($6::bool IS NULL OR (cancelled_at IS NOT NULL) = $6)
                 ORDER BY seq
                 LIMIT $4 OFFSET $5
