-- The last event instant of every source as of $1, from the events (alerts.sql).
    -- the last event instant of every source as of $1 (later events did not happen yet)
    SELECT source, MAX(at) AS last_event_at
    FROM events
    WHERE at <= $1
    GROUP BY source
