-- Who holds role ?1 after ?2, and until when.
SELECT holder, until FROM jobs_leaders WHERE role = ?1 AND until > ?2
