-- Decision 766: the counts that come from dossiers, per unit (province, commune, agency, or
-- one TOTAL unit). The criteria that use them, with weights and targets, are in
-- queries/config/index766.toml.
--
-- The CTEs come from queries/sql/index766_flags.sql, pasted in by the runner: the
-- dossiers of the period, one row each, with a 0/1 column per dossier count (parameters
-- there).
{index766_flags}
SELECT
    COALESCE(unit, '') AS unit,
    first_value(unit_name ORDER BY unit_name IS NULL, last_event_at DESC) AS unit_name,
    -- Biểu 06 column 1 (ended + in progress) and its on-time part
    SUM(dossiers) AS dossiers,
    SUM(dossiers_on_time) AS dossiers_on_time,
    SUM(dossiers_late) AS dossiers_late,
    SUM(dossiers_with_feedback) AS dossiers_with_feedback,
    -- 100% − (% overdue + % with feedback), as a count over the same denominator
    GREATEST(SUM(dossiers) - SUM(dossiers_late) - SUM(dossiers_with_feedback), 0) AS dossiers_satisfaction,
    SUM(dossiers_synced) AS dossiers_synced,
    SUM(received) AS received,
    SUM(received_online_capable) AS received_online_capable,
    SUM(received_online_capable_online) AS received_online_capable_online,
    SUM(received_with_fee) AS received_with_fee,
    SUM(received_with_fee_paid_online) AS received_with_fee_paid_online,
    SUM(received_digitized) AS received_digitized,
    SUM(received_data_reused) AS received_data_reused,
    SUM(received_vneid) AS received_vneid,
    SUM(ended) AS ended,
    SUM(ended_result_digitized) AS ended_result_digitized,
    SUM(ended_certified) AS ended_certified,
    SUM(ended_certified_digitized) AS ended_certified_digitized,
    -- procedures (by code) seen in the unit's dossiers
    COUNT(DISTINCT procedure_code) AS procedures_with_dossiers,
    COUNT(DISTINCT CASE WHEN received_online = 1 AND online_capable = 1 THEN procedure_code END) AS online_procedures_with_online_dossiers,
    COUNT(DISTINCT CASE WHEN cat_fee_integrated AND paid_online THEN procedure_code END) AS fee_procedures_paid_online,
    COUNT(DISTINCT CASE WHEN vneid THEN procedure_code END) AS procedures_with_vneid_dossiers
FROM d
GROUP BY COALESCE(unit, '')
