-- Data-quality report: which dossiers break which rule, with the first $3 dossiers of
-- each issue (by dossier_id) and the number of dossiers per issue. A dossier may have
-- several issues. docs/domain.md "Received time": a dossier with no received event, or
-- with a rejected one, is left out of reports and shows up here instead; and ("Known
-- misreporting") the patterns seen in public one-stop code ("overdue reset", "resolved"
-- while waiting for documents) are data-quality findings, never silent corrections.
--
-- Parameters (bound by queries::quality, never spliced as text):
--   $1  province code or NULL,  $2  commune code or NULL
--   $3  number of dossiers listed per issue
--
-- Issues:
--   no_received              no `received` event (dq_issues of warehouse::facts)
--   rejected                 a `rejected` event (never counted)
--   no_deadline              counted, but neither a reported nor a computed due time
--   no_procedure             no procedure code
--   unknown_procedure        a procedure code that is not in the catalog (`procedures`)
--   unknown_commune          no commune code, or one that is not in `territories`
--   ended_before_received    end time before received time
--   overdue_reset            end time exactly equal to the due time (suspected reset)
--   resolved_open_supplement resolved while a supplement round is still open
WITH d AS (
    SELECT
        dossier_id,
        sources,
        procedure_code,
        commune_code,
        rejected,
        received_at,
        ended_at,
        end_type,
        due_at,
        open_supplement,
        ',' || dq_issues || ',' AS dq
    FROM dossier_facts
    WHERE ($1 IS NULL OR province_code = $1)
      AND ($2 IS NULL OR commune_code = $2)
),
hits AS (
    SELECT dossier_id, 'no_received' AS issue FROM d WHERE dq LIKE '%,no_received,%'
    UNION ALL
    SELECT dossier_id, 'rejected' FROM d WHERE rejected
    UNION ALL
    SELECT dossier_id, 'no_deadline' FROM d WHERE dq LIKE '%,no_deadline,%'
    UNION ALL
    SELECT dossier_id, 'no_procedure' FROM d WHERE procedure_code IS NULL
    UNION ALL
    SELECT dossier_id, 'unknown_procedure' FROM d
    WHERE procedure_code IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM procedures p WHERE p.procedure_code = d.procedure_code)
    UNION ALL
    SELECT dossier_id, 'unknown_commune' FROM d
    WHERE commune_code IS NULL
       OR NOT EXISTS (SELECT 1 FROM territories t WHERE t.commune_code = d.commune_code)
    UNION ALL
    SELECT dossier_id, 'ended_before_received' FROM d WHERE ended_at < received_at
    UNION ALL
    SELECT dossier_id, 'overdue_reset' FROM d WHERE ended_at = due_at
    UNION ALL
    SELECT dossier_id, 'resolved_open_supplement' FROM d
    WHERE open_supplement AND end_type = 'resolved'
),
ranked AS (
    SELECT
        h.issue,
        h.dossier_id,
        ROW_NUMBER() OVER (PARTITION BY h.issue ORDER BY h.dossier_id) AS rn,
        COUNT(*) OVER (PARTITION BY h.issue) AS issue_count
    FROM hits h
)
SELECT
    r.issue,
    r.issue_count,
    r.dossier_id,
    d.sources,
    d.procedure_code,
    d.commune_code
FROM ranked r
JOIN d ON d.dossier_id = r.dossier_id
WHERE r.rn <= $3
ORDER BY r.issue, r.dossier_id
