-- Sync health per source system: volume, time span, ingestion lag, quarantined records
-- and silence at an instant.
--
-- Parameters (bound by queries::health, never spliced as text):
--   $1  as_of: only events that happened at or before $1 count (later ones are counted
--       apart as future_events: clock skew or a wrong offset at the sender)
--   $2  stale_after_micros: a source is stale when $1 − its last event > $2 (a source with
--       no event by $1 is stale)
--
-- Lag = ingested_at − at, in seconds, per event; p50 and p90 are exact
-- (percentile_cont: linear interpolation between the two nearest ranks).
-- Quarantined = every row of `quarantine` with that source (the table is append-only:
-- records replayed later still count as errors of their sender); error_rate =
-- quarantined / (events + quarantined).
WITH ev AS (
    SELECT
        source,
        dossier_id,
        at,
        ingested_at,
        (CAST(ingested_at AS BIGINT) - CAST(at AS BIGINT)) / 1000000.0 AS lag_seconds
    FROM events
    WHERE at <= $1
),
per_source AS (
    SELECT
        source,
        COUNT(*) AS events,
        COUNT(DISTINCT dossier_id) AS dossiers,
        MIN(at) AS first_event_at,
        MAX(at) AS last_event_at,
        MAX(ingested_at) AS last_ingested_at,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_seconds) AS lag_p50_seconds,
        percentile_cont(0.9) WITHIN GROUP (ORDER BY lag_seconds) AS lag_p90_seconds,
        MAX(lag_seconds) AS lag_max_seconds
    FROM ev
    GROUP BY source
),
future AS (
    SELECT source, COUNT(*) AS future_events
    FROM events
    WHERE at > $1
    GROUP BY source
),
quarantined AS (
    SELECT source, COUNT(*) AS quarantined
    FROM quarantine
    WHERE source IS NOT NULL
    GROUP BY source
),
all_sources AS (
    SELECT source FROM per_source
    UNION
    SELECT source FROM future
    UNION
    SELECT source FROM quarantined
)
SELECT
    s.source,
    COALESCE(p.events, 0) AS events,
    COALESCE(p.dossiers, 0) AS dossiers,
    p.first_event_at,
    p.last_event_at,
    p.last_ingested_at,
    p.lag_p50_seconds,
    p.lag_p90_seconds,
    p.lag_max_seconds,
    COALESCE(q.quarantined, 0) AS quarantined,
    CAST(COALESCE(q.quarantined, 0) AS DOUBLE)
        / CAST(GREATEST(COALESCE(p.events, 0) + COALESCE(q.quarantined, 0), 1) AS DOUBLE) AS error_rate,
    (CAST($1 AS BIGINT) - CAST(p.last_event_at AS BIGINT)) / 1000000.0 AS lag_now_seconds,
    p.last_event_at IS NULL
        OR CAST($1 AS BIGINT) - CAST(p.last_event_at AS BIGINT) > $2 AS stale,
    COALESCE(f.future_events, 0) AS future_events
FROM all_sources s
LEFT JOIN per_source p ON p.source = s.source
LEFT JOIN future f ON f.source = s.source
LEFT JOIN quarantined q ON q.source = s.source
ORDER BY s.source
