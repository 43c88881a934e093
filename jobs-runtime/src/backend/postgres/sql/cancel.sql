                 UPDATE __TABLE__ SET status = 'FAILED', error_message = 'cancelled',
                                  completed_at = now(), cancelled_at = now()
                 WHERE id = $1 AND status IN __WAITING__
                 RETURNING __COLS__
