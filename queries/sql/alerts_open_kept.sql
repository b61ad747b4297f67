-- The dossiers in progress at $1 from `open_states` (the segments of the counted
-- dossiers not ended, kept at ingest): the same rows as alerts_open_dossiers.sql when no
-- dossier ended after $1 (queries::alerts checks that first).
SELECT
    s.dossier_id,
    s.sources,
    s.procedure_code,
    s.procedure_name,
    s.field_code,
    s.agency_code,
    s.agency_name,
    s.province_code,
    s.commune_code,
    s.received_at,
    s.due_at,
    s.overdue_after
FROM open_states s
WHERE s.valid_from <= $1
  AND (s.valid_to IS NULL OR s.valid_to > $1)
  AND s.received_at <= $1
  AND ($5 IS NULL OR s.province_code = $5)
  AND ($6 IS NULL OR s.commune_code = $6)
