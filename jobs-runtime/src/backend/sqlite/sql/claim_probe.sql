-- After the fast path leased nothing: whether {selection} holds a job with
-- limits of its own (the claim then takes the limited path). Bound like
-- claim.sql.
SELECT 1 FROM ({selection}) WHERE limited LIMIT 1
