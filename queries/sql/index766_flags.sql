-- Decision 766: the dossiers of a period, one row each (CTE d), with a 0/1 column per
-- dossier count of queries/config/index766.toml. Embedded by index766_dossiers.sql (the
-- counts per unit: SUMs over d) and by the list of the dossiers behind a count
-- (queries::drill), so what a count counts is written once.
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
),
d AS (
    -- one row per dossier; each count below is 1 when the dossier is in the count of the
    -- same name, so the report's count is the SUM and the dossiers behind it are the rows
    -- where it is 1 (GET /api/v1/indicators/766/dossiers)
    SELECT
        g.*,
        1 AS dossiers,
        ended_early + ended_on_day + in_progress_in_time AS dossiers_on_time,
        ended_late + in_progress_overdue AS dossiers_late,
        has_feedback AS dossiers_with_feedback,
        synced AS dossiers_synced,
        -- received in the period (Biểu 06 columns 2 + 3)
        is_new AS received,
        is_new * online_capable AS received_online_capable,
        received_online * online_capable AS received_online_capable_online,
        CASE WHEN is_new = 1 AND cat_has_fee THEN 1 ELSE 0 END AS received_with_fee,
        CASE WHEN is_new = 1 AND cat_has_fee AND paid_online THEN 1 ELSE 0 END AS received_with_fee_paid_online,
        CASE WHEN is_new = 1 AND digitized THEN 1 ELSE 0 END AS received_digitized,
        CASE WHEN is_new = 1 AND data_reused THEN 1 ELSE 0 END AS received_data_reused,
        CASE WHEN is_new = 1 AND vneid THEN 1 ELSE 0 END AS received_vneid,
        -- ended in the period (Biểu 06 column 5): the column `ended` of c
        CASE WHEN ended = 1 AND result_digitized THEN 1 ELSE 0 END AS ended_result_digitized,
        ended * certified AS ended_certified,
        CASE WHEN ended = 1 AND certified = 1 AND result_digitized THEN 1 ELSE 0 END AS ended_certified_digitized
    FROM g
)
