-- Decision 766: the counts that come from the procedure catalog (docs/contract.md §2).
-- The catalog has no territory, so every unit shares these counts.
--
-- Parameters: $1 first local date of the period, $2 last local date (both inclusive, Date32).
--   1.1  due to be published in the period: published by the due date (unpublished = late)
--   1.2  published in the period: published by the due date
--   1.3  published by the period end: with full content
SELECT
    COUNT(*) AS procedures,
    SUM(CASE WHEN procedure_level = 'full_online' THEN 1 ELSE 0 END) AS procedures_full_online,
    SUM(CASE WHEN procedure_level IN ('full_online', 'partial_online') THEN 1 ELSE 0 END) AS procedures_online,
    SUM(CASE WHEN has_fee THEN 1 ELSE 0 END) AS procedures_with_fee,
    SUM(CASE WHEN has_fee AND fee_online_integrated THEN 1 ELSE 0 END) AS procedures_fee_integrated,
    SUM(CASE WHEN publish_due_at BETWEEN $1 AND $2 THEN 1 ELSE 0 END) AS procedures_publish_due,
    SUM(CASE WHEN publish_due_at BETWEEN $1 AND $2 AND published_at <= publish_due_at THEN 1 ELSE 0 END)
        AS procedures_published_on_time,
    SUM(CASE WHEN published_at BETWEEN $1 AND $2 THEN 1 ELSE 0 END) AS procedures_published_in_period,
    SUM(CASE WHEN published_at BETWEEN $1 AND $2 AND publish_due_at IS NOT NULL
              AND published_at <= publish_due_at THEN 1 ELSE 0 END) AS procedures_published_in_period_on_time,
    SUM(CASE WHEN published_at <= $2 THEN 1 ELSE 0 END) AS procedures_published,
    SUM(CASE WHEN published_at <= $2 AND content_complete THEN 1 ELSE 0 END) AS procedures_published_complete
FROM procedures
