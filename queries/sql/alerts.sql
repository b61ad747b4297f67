-- Alerts: dossiers in progress at an instant that are overdue or due soon, each with the
-- sync lag of the systems it comes from. Definitions: docs/domain.md "Time rules"; the
-- judgement as of any instant comes from the in-progress state segments of
-- warehouse::facts (the segment containing the instant says overdue ⇔ instant >
-- overdue_after), exactly as Biểu 06 judges dossiers still in progress.
--
-- Parameters (bound by queries::alerts, never spliced as text):
--   $1  as_of: the instant of the alert list (UTC)
--   $2  due_within_seconds: working seconds; due soon ⇔ not overdue and
--       working_seconds($1, overdue_after) <= $2
--   $3  stale_after_micros: a source is stale when $1 − its last event > $3
--   $4  portal source code (the national portal, "dvcqg")
--   $5  province code or NULL,  $6  commune code or NULL
--
-- The bodies of source_last and open_dossiers (the markers in braces) come from the events and the facts
-- (alerts_source_last.sql, alerts_open_dossiers.sql: the definitions), or from what ingest
-- keeps (alerts_open_kept.sql; the last event per source from queries::health_fast),
-- chosen by queries::alerts.
WITH source_last AS (
{source_last}
),
open_dossiers AS (
{open_dossiers}
),
judged AS (
    SELECT
        d.*,
        d.overdue_after IS NOT NULL AND $1 > d.overdue_after AS overdue,
        -- working hours left until overdue_after; negative when overdue (working hours
        -- since overdue_after). NULL when overdue_after is the "always overdue" marker
        -- (outside the calendar): late by the supplement rule, not by the clock.
        CASE
            WHEN d.overdue_after IS NULL THEN NULL
            WHEN $1 > d.overdue_after THEN -working_seconds(d.overdue_after, $1) / 3600.0
            ELSE working_seconds($1, d.overdue_after) / 3600.0
        END AS working_hours_left
    FROM open_dossiers d
),
flagged AS (
    SELECT *
    FROM judged
    WHERE overdue
       OR (overdue_after IS NOT NULL AND working_seconds($1, overdue_after) <= $2)
),
origin_sources AS (
    -- origin sources = the dossier's sources minus the portal (the portal itself when it
    -- is the only one)
    SELECT dossier_id, source
    FROM (
        SELECT dossier_id, sources, unnest(string_to_array(sources, ',')) AS source
        FROM flagged
    ) x
    WHERE source <> $4 OR sources = $4
),
origin_lag AS (
    -- possibly stale ⇔ every origin source is stale (a source with no event by $1 is)
    SELECT
        o.dossier_id,
        bool_and(
            l.last_event_at IS NULL
            OR CAST($1 AS BIGINT) - CAST(l.last_event_at AS BIGINT) > $3
        ) AS stale,
        MAX(l.last_event_at) AS last_source_event_at
    FROM origin_sources o
    LEFT JOIN source_last l ON l.source = o.source
    GROUP BY o.dossier_id
)
SELECT
    f.dossier_id,
    f.procedure_code,
    f.procedure_name,
    f.field_code,
    f.agency_code,
    f.agency_name,
    f.province_code,
    f.commune_code,
    f.received_at,
    f.due_at,
    f.overdue_after,
    f.overdue,
    COALESCE(g.stale, false) AS stale,
    CASE
        WHEN COALESCE(g.stale, false) THEN 'stale'
        WHEN f.overdue THEN 'overdue'
        ELSE 'due_soon'
    END AS status,
    f.working_hours_left,
    f.sources,
    g.last_source_event_at
FROM flagged f
LEFT JOIN origin_lag g ON g.dossier_id = f.dossier_id
-- most overdue first: the earliest overdue_after first (the "always overdue" marker is
-- the earliest of all), then the dossiers nearest to their deadline
ORDER BY f.overdue_after ASC, f.dossier_id ASC
