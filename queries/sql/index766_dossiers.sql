-- Decision 766: the counts that come from dossiers, per unit (province, commune, agency, or
-- one TOTAL unit). The criteria that use them, with weights and targets, are in
-- queries/config/index766.toml.
--
-- The CTE c is queries/sql/period_dossiers.sql (the Biểu 06 dossiers of the period, each
-- classified; parameters $1–$9 there). Also bound here:
--   $10 the portal's source code ("dvcqg")
-- The unit code/name expressions and the quoted list of certified-copy field codes are
-- pasted in by queries::index766 from a fixed list and from validated configuration.
--
-- Flags (paid_online, digitized, …) are a dossier's "any event said true" (warehouse::facts).
WITH c AS (
{period_dossiers}
),
complained AS (
    -- dossiers with a citizen's feedback (phản ánh, kiến nghị) before the period end
    SELECT DISTINCT dossier_id
    FROM events
    WHERE type = 'feedback_received' AND dossier_id IS NOT NULL AND at < $2
),
g AS (
    SELECT
        {unit_code} AS unit,
        {unit_name} AS unit_name,
        c.*,
        COALESCE(p.has_fee, false) AS cat_has_fee,
        COALESCE(p.has_fee AND p.fee_online_integrated, false) AS cat_fee_integrated,
        CASE WHEN c.procedure_level IN ('full_online', 'partial_online') THEN 1 ELSE 0 END AS online_capable,
        c.received_online + c.received_offline AS is_new,
        CASE WHEN x.dossier_id IS NOT NULL THEN 1 ELSE 0 END AS has_feedback,
        CASE WHEN array_has(string_to_array(c.sources, ','), $10) THEN 1 ELSE 0 END AS synced,
        CASE WHEN c.field_code IN ({certified_fields}) THEN 1 ELSE 0 END AS certified
    FROM c
    LEFT JOIN procedures p ON p.procedure_code = c.procedure_code
    LEFT JOIN complained x ON x.dossier_id = c.dossier_id
)
SELECT
    COALESCE(unit, '') AS unit,
    first_value(unit_name ORDER BY unit_name IS NULL, last_event_at DESC) AS unit_name,
    -- Biểu 06 column 1 (ended + in progress) and its on-time part
    COUNT(*) AS dossiers,
    SUM(ended_early + ended_on_day + in_progress_in_time) AS dossiers_on_time,
    SUM(ended_late + in_progress_overdue) AS dossiers_late,
    SUM(has_feedback) AS dossiers_with_feedback,
    -- 100% − (% overdue + % with feedback), as a count over the same denominator
    GREATEST(COUNT(*) - SUM(ended_late + in_progress_overdue) - SUM(has_feedback), 0) AS dossiers_satisfaction,
    SUM(synced) AS dossiers_synced,
    -- received in the period (Biểu 06 columns 2 + 3)
    SUM(is_new) AS received,
    SUM(is_new * online_capable) AS received_online_capable,
    SUM(received_online * online_capable) AS received_online_capable_online,
    SUM(CASE WHEN is_new = 1 AND cat_has_fee THEN 1 ELSE 0 END) AS received_with_fee,
    SUM(CASE WHEN is_new = 1 AND cat_has_fee AND paid_online THEN 1 ELSE 0 END) AS received_with_fee_paid_online,
    SUM(CASE WHEN is_new = 1 AND digitized THEN 1 ELSE 0 END) AS received_digitized,
    SUM(CASE WHEN is_new = 1 AND data_reused THEN 1 ELSE 0 END) AS received_data_reused,
    SUM(CASE WHEN is_new = 1 AND vneid THEN 1 ELSE 0 END) AS received_vneid,
    -- ended in the period (Biểu 06 column 5)
    SUM(ended) AS ended,
    SUM(CASE WHEN ended = 1 AND result_digitized THEN 1 ELSE 0 END) AS ended_result_digitized,
    SUM(ended * certified) AS ended_certified,
    SUM(CASE WHEN ended = 1 AND certified = 1 AND result_digitized THEN 1 ELSE 0 END) AS ended_certified_digitized,
    -- procedures (by code) seen in the unit's dossiers
    COUNT(DISTINCT procedure_code) AS procedures_with_dossiers,
    COUNT(DISTINCT CASE WHEN received_online = 1 AND online_capable = 1 THEN procedure_code END) AS online_procedures_with_online_dossiers,
    COUNT(DISTINCT CASE WHEN cat_fee_integrated AND paid_online THEN procedure_code END) AS fee_procedures_paid_online,
    COUNT(DISTINCT CASE WHEN vneid THEN procedure_code END) AS procedures_with_vneid_dossiers
FROM g
GROUP BY COALESCE(unit, '')
