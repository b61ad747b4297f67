-- Reconciliation between source systems: the same dossier (dossier_id, the national code
-- MaHoSo) as reported by the portal, the provincial one-stop system and ministry systems.
-- docs/domain.md: syncs lag, states get lost, dossiers are duplicated, nobody reconciles.
--
-- One row per discrepancy. Each row names a pair of sources (source_a, source_b); where a
-- pair involves the portal, source_a is the origin (non-portal) source and source_b the
-- portal; a pair of origin sources is in alphabetical order.
--
-- Step 2, over the table per_source (recon_per_source.sql, collected once).
-- Parameters (bound by queries::recon, never spliced as text):
--   $1  portal source code ("dvcqg")
--   $2  tolerance in microseconds for end_time_mismatch
--
-- Kinds:
--   missing_on_portal   an origin source reports the dossier, the portal never does
--                       (a = that origin, b = portal)
--   missing_in_origin   only the portal reports it (a = portal, b = NULL)
--   lost_state          one source of a pair reports an end, the other none
--   status_mismatch     both ended, with different end types
--   end_time_mismatch   both ended, ends more than $2 apart (whatever the types)
--   duplicate           a source reports more than one distinct `received` instant
--                       (a = that source, b = NULL), or two origin sources both report
--                       a `received` (a, b = the two origins)
WITH presence AS (
    SELECT
        dossier_id,
        bool_or(is_portal) AS on_portal,
        bool_or(NOT is_portal) AS in_origin
    FROM per_source
    GROUP BY dossier_id
),
pairs AS (
    -- every unordered pair of sources reporting the same dossier, oriented as above
    SELECT
        a.dossier_id,
        a.source AS source_a,
        b.source AS source_b,
        b.is_portal AS b_is_portal,
        a.received_at AS a_received_at,
        b.received_at AS b_received_at,
        a.end_type AS a_end_type,
        b.end_type AS b_end_type,
        a.ended_at AS a_ended_at,
        b.ended_at AS b_ended_at
    FROM per_source a
    JOIN per_source b ON b.dossier_id = a.dossier_id
    WHERE NOT a.is_portal
      AND (b.is_portal OR a.source < b.source)
),
singles AS (
    -- per-source columns in the shape of `pairs`, with no partner
    SELECT
        s.dossier_id,
        s.source AS source_a,
        s.is_portal AS a_is_portal,
        s.received_at AS a_received_at,
        s.received_count AS a_received_count,
        s.end_type AS a_end_type,
        s.ended_at AS a_ended_at,
        p.on_portal,
        p.in_origin
    FROM per_source s
    JOIN presence p ON p.dossier_id = s.dossier_id
)
SELECT dossier_id, 'missing_on_portal' AS kind, source_a, $1 AS source_b,
       a_received_at, CAST(NULL AS TIMESTAMP) AS b_received_at, a_received_count,
       a_end_type, CAST(NULL AS VARCHAR) AS b_end_type, a_ended_at, CAST(NULL AS TIMESTAMP) AS b_ended_at
FROM singles
WHERE NOT a_is_portal AND NOT on_portal
UNION ALL
SELECT dossier_id, 'missing_in_origin', source_a, CAST(NULL AS VARCHAR),
       a_received_at, CAST(NULL AS TIMESTAMP), a_received_count,
       a_end_type, CAST(NULL AS VARCHAR), a_ended_at, CAST(NULL AS TIMESTAMP)
FROM singles
WHERE a_is_portal AND NOT in_origin
UNION ALL
SELECT dossier_id, 'lost_state', source_a, source_b,
       a_received_at, b_received_at, CAST(NULL AS BIGINT),
       a_end_type, b_end_type, a_ended_at, b_ended_at
FROM pairs
WHERE (a_ended_at IS NULL) <> (b_ended_at IS NULL)
UNION ALL
SELECT dossier_id, 'status_mismatch', source_a, source_b,
       a_received_at, b_received_at, CAST(NULL AS BIGINT),
       a_end_type, b_end_type, a_ended_at, b_ended_at
FROM pairs
WHERE a_ended_at IS NOT NULL AND b_ended_at IS NOT NULL
  AND a_end_type <> b_end_type
UNION ALL
SELECT dossier_id, 'end_time_mismatch', source_a, source_b,
       a_received_at, b_received_at, CAST(NULL AS BIGINT),
       a_end_type, b_end_type, a_ended_at, b_ended_at
FROM pairs
WHERE a_ended_at IS NOT NULL AND b_ended_at IS NOT NULL
  AND abs(CAST(a_ended_at AS BIGINT) - CAST(b_ended_at AS BIGINT)) > $2
UNION ALL
SELECT dossier_id, 'duplicate', source_a, CAST(NULL AS VARCHAR),
       a_received_at, CAST(NULL AS TIMESTAMP), a_received_count,
       a_end_type, CAST(NULL AS VARCHAR), a_ended_at, CAST(NULL AS TIMESTAMP)
FROM singles
WHERE a_received_count > 1
UNION ALL
SELECT dossier_id, 'duplicate', source_a, source_b,
       a_received_at, b_received_at, CAST(NULL AS BIGINT),
       a_end_type, b_end_type, a_ended_at, b_ended_at
FROM pairs
WHERE NOT b_is_portal
  AND a_received_at IS NOT NULL AND b_received_at IS NOT NULL
