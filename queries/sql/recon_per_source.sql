-- Reconciliation, step 1: one row per (dossier, source) — first received instant, number
-- of distinct received instants, end — for the dossiers whose earliest event (any source)
-- lies in [$2, $3). queries::recon collects this once and runs recon.sql over it, so the
-- events table is scanned once however many times recon.sql uses these rows.
--
-- Parameters: $1 portal source code, $2 from, $3 to (instants, or NULL).
WITH dossier_events AS (
    SELECT dossier_id, source, type, at
    FROM events
    WHERE dossier_id IS NOT NULL
      AND type NOT IN ('feedback_received', 'feedback_resolved')
),
in_range AS (
    SELECT dossier_id
    FROM dossier_events
    GROUP BY dossier_id
    HAVING ($2 IS NULL OR MIN(at) >= $2)
       AND ($3 IS NULL OR MIN(at) < $3)
),
ev AS (
    -- the events of the dossiers in range, every source
    SELECT e.dossier_id, e.source, e.type, e.at
    FROM dossier_events e
    JOIN in_range r ON r.dossier_id = e.dossier_id
),
first_end AS (
    -- the end of a dossier in one source: its earliest end event; at the same instant the
    -- order of warehouse::facts (resolved, returned, withdrawn, stopped) breaks the tie
    SELECT dossier_id, source, type AS end_type, at AS ended_at
    FROM (
        SELECT
            dossier_id,
            source,
            type,
            at,
            ROW_NUMBER() OVER (
                PARTITION BY dossier_id, source
                ORDER BY at, CASE type
                    WHEN 'resolved' THEN 1
                    WHEN 'returned' THEN 2
                    WHEN 'withdrawn' THEN 3
                    ELSE 4
                END
            ) AS rn
        FROM ev
        WHERE type IN ('resolved', 'returned', 'withdrawn', 'stopped')
    ) e
    WHERE rn = 1
),
per_source AS (
    -- one row per (dossier, source): first received instant, number of distinct
    -- received instants, end
    SELECT
        p.dossier_id,
        p.source,
        p.source = $1 AS is_portal,
        p.received_at,
        p.received_count,
        x.end_type,
        x.ended_at
    FROM (
        SELECT
            dossier_id,
            source,
            MIN(CASE WHEN type = 'received' THEN at END) AS received_at,
            COUNT(DISTINCT CASE WHEN type = 'received' THEN at END) AS received_count
        FROM ev
        GROUP BY dossier_id, source
    ) p
    LEFT JOIN first_end x ON x.dossier_id = p.dossier_id AND x.source = p.source
)
SELECT * FROM per_source
