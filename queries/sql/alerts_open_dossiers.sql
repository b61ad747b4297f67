-- The dossiers in progress at $1, from the facts and their state segments (alerts.sql).
    -- counted, received by $1, not ended at $1; with the state segment containing $1
    SELECT
        f.dossier_id,
        f.sources,
        f.procedure_code,
        f.procedure_name,
        f.field_code,
        f.agency_code,
        f.agency_name,
        f.province_code,
        f.commune_code,
        f.received_at,
        s.due_at,
        s.overdue_after
    FROM dossier_facts f
    JOIN dossier_states s
        ON s.dossier_id = f.dossier_id
       AND s.valid_from <= $1
       AND (s.valid_to IS NULL OR s.valid_to > $1)
    WHERE f.counted
      AND f.received_at <= $1
      AND (f.ended_at IS NULL OR f.ended_at > $1)
      AND ($5 IS NULL OR f.province_code = $5)
      AND ($6 IS NULL OR f.commune_code = $6)
