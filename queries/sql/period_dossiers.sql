-- The dossiers of a reporting period, one row each, classified by the Biểu 06 columns of
-- docs/domain.md. Embedded by bieu06.sql and index766_dossiers.sql as the CTE c, so the
-- "which dossiers, which class" rule is written once.
--
-- Parameters (bound by the Rust runners, never spliced as text):
--   $1  period start: local 00:00 of `from` (inclusive instant)
--   $2  period end: local 00:00 of the day after `to` (exclusive instant); dossiers still
--       in progress are judged as of this instant (events with at <= $2 count)
--   $3  province code, $4 commune code, $5 agency code, $6 field code, $7 procedure code,
--   $8  procedure level, $9 non-territorial (boolean) — each NULL for "any"
--
-- The judgement of each dossier is derived once, in warehouse::facts:
--   dossier_facts.end_class      early | on_day | late, judged at the dossier's end time
--   dossier_states               in-progress segments [valid_from, valid_to); the one that
--                                contains $2 says overdue ⇔ $2 > overdue_after
SELECT
    f.*,
    t.commune_name,
    t.province_name,
    -- the due time in force at the period end (for a dossier still in progress then)
    s.due_at AS period_due_at,
    -- column 2 / 3: received in the period, online / in person or postal
    CASE WHEN f.received_at >= $1 AND f.channel = 'online' THEN 1 ELSE 0 END AS received_online,
    CASE WHEN f.received_at >= $1 AND f.channel <> 'online' THEN 1 ELSE 0 END AS received_offline,
    -- column 4: received before the period, not ended before it (the WHERE below)
    CASE WHEN f.received_at < $1 THEN 1 ELSE 0 END AS carried_over,
    -- columns 5–8: ended within the period
    CASE WHEN f.ended_at < $2 THEN 1 ELSE 0 END AS ended,
    CASE WHEN f.ended_at < $2 AND f.end_class = 'early' THEN 1 ELSE 0 END AS ended_early,
    CASE WHEN f.ended_at < $2 AND f.end_class = 'on_day' THEN 1 ELSE 0 END AS ended_on_day,
    CASE WHEN f.ended_at < $2 AND f.end_class = 'late' THEN 1 ELSE 0 END AS ended_late,
    -- columns 9–11: not ended at the period end
    CASE WHEN f.ended_at IS NULL OR f.ended_at >= $2 THEN 1 ELSE 0 END AS in_progress,
    CASE WHEN (f.ended_at IS NULL OR f.ended_at >= $2)
              AND (s.overdue_after IS NULL OR $2 <= s.overdue_after) THEN 1 ELSE 0 END AS in_progress_in_time,
    CASE WHEN (f.ended_at IS NULL OR f.ended_at >= $2)
              AND s.overdue_after IS NOT NULL AND $2 > s.overdue_after THEN 1 ELSE 0 END AS in_progress_overdue
FROM dossier_facts f
LEFT JOIN territories t ON t.commune_code = f.commune_code
LEFT JOIN dossier_states s
    ON s.dossier_id = f.dossier_id
   AND s.valid_from <= $2
   AND (s.valid_to IS NULL OR s.valid_to > $2)
WHERE f.counted
  AND f.received_at < $2
  AND (f.ended_at IS NULL OR f.ended_at >= $1)
  AND ($3 IS NULL OR f.province_code = $3)
  AND ($4 IS NULL OR f.commune_code = $4)
  AND ($5 IS NULL OR f.agency_code = $5)
  AND ($6 IS NULL OR f.field_code = $6)
  AND ($7 IS NULL OR f.procedure_code = $7)
  AND ($8 IS NULL OR f.procedure_level = $8)
  AND ($9 IS NULL OR f.non_territorial = $9)
