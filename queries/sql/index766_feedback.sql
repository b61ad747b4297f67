-- Decision 766 group 6: citizens' feedback (phản ánh, kiến nghị), per unit.
--
-- A feedback is the set of events with its feedback_id (feedback_received /
-- feedback_resolved), using only events before the period end. Its unit is the latest
-- non-null province/commune/agency of its own events, else those of its dossier.
-- Parameters: $1 period start, $2 period end (exclusive instants), $3 province, $4 commune,
-- $5 agency (NULL = any), $6 working days to handle a feedback when no due_at is reported.
-- Which feedback: received before the period end and not resolved before the period start
-- (as Biểu 06 counts dossiers). On time: resolved before the period end at or before its
-- due time, or not resolved yet and the period end not past the due time.
WITH fe AS (
    SELECT * FROM events
    WHERE feedback_id IS NOT NULL
      AND type IN ('feedback_received', 'feedback_resolved')
      AND at < $2
),
fb AS (
    SELECT
        feedback_id,
        MIN(CASE WHEN type = 'feedback_received' THEN at END) AS received_at,
        MIN(CASE WHEN type = 'feedback_resolved' THEN at END) AS resolved_at,
        first_value(due_at ORDER BY due_at IS NULL, at DESC) AS reported_due,
        first_value(satisfied ORDER BY satisfied IS NULL, at DESC) AS satisfied,
        first_value(dossier_id ORDER BY dossier_id IS NULL, at DESC) AS dossier_id,
        first_value(province_code ORDER BY province_code IS NULL, at DESC) AS province_code,
        first_value(commune_code ORDER BY commune_code IS NULL, at DESC) AS commune_code,
        first_value(agency_code ORDER BY agency_code IS NULL, at DESC) AS agency_code,
        first_value(agency_name ORDER BY agency_name IS NULL, at DESC) AS agency_name
    FROM fe
    GROUP BY feedback_id
),
u AS (
    SELECT
        fb.feedback_id,
        fb.received_at,
        fb.resolved_at,
        fb.satisfied,
        COALESCE(fb.reported_due, add_working_days(fb.received_at, $6)) AS due,
        COALESCE(fb.province_code, d.province_code) AS province_code,
        COALESCE(fb.commune_code, d.commune_code) AS commune_code,
        COALESCE(fb.agency_code, d.agency_code) AS agency_code,
        COALESCE(fb.agency_name, d.agency_name) AS agency_name
    FROM fb
    LEFT JOIN dossier_facts d ON d.dossier_id = fb.dossier_id
    WHERE fb.received_at IS NOT NULL
      AND fb.received_at < $2
      AND (fb.resolved_at IS NULL OR fb.resolved_at >= $1)
),
c AS (
    SELECT u.*, t.province_name, t.commune_name FROM u
    LEFT JOIN territories t ON t.commune_code = u.commune_code
    WHERE ($3 IS NULL OR u.province_code = $3)
      AND ($4 IS NULL OR u.commune_code = $4)
      AND ($5 IS NULL OR u.agency_code = $5)
)
SELECT
    COALESCE({unit_code}, '') AS unit,
    COUNT(*) AS feedback,
    SUM(CASE WHEN (resolved_at IS NOT NULL AND resolved_at <= due)
              OR (resolved_at IS NULL AND $2 <= due) THEN 1 ELSE 0 END) AS feedback_on_time,
    SUM(CASE WHEN satisfied IS NOT NULL THEN 1 ELSE 0 END) AS feedback_rated,
    SUM(CASE WHEN satisfied THEN 1 ELSE 0 END) AS feedback_satisfied
FROM c
GROUP BY COALESCE({unit_code}, '')
