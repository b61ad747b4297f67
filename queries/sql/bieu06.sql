-- Biểu 06 (Thông tư 01/2020/TT-VPCP, successor 03/2025/TT-VPCP): the period report.
-- One row per group, then the TOTAL row. Definitions: docs/domain.md "Period report".
--
-- The CTE c is queries/sql/period_dossiers.sql (the dossiers of the period, each
-- classified; parameters $1–$9 documented there), pasted in by the runner. The group code
-- and name of g are column expressions over c chosen from a fixed list
-- (queries::bieu06::GroupBy) — never user text.
-- One pass: the groups and the TOTAL row (the empty grouping set) come from one
-- aggregate over c, so the period's dossiers are read and joined once. A grouping that
-- puts a dossier in several groups (source) uses bieu06_by_source.sql instead.
WITH c AS (
{period_dossiers}
),
g AS (
    SELECT {group_code} AS grp, {group_name} AS grp_name, c.*
    FROM c
),
k AS (
    SELECT COALESCE(grp, '') AS grp_key, g.*
    FROM g
),
rows AS (
    SELECT
        GROUPING(grp_key) AS is_total,
        grp_key,
        first_value(grp_name ORDER BY grp_name IS NULL, last_event_at DESC) AS grp_name,
        COALESCE(SUM(received_online), 0) AS received_online,
        COALESCE(SUM(received_offline), 0) AS received_offline,
        COALESCE(SUM(carried_over), 0) AS carried_over,
        COALESCE(SUM(ended), 0) AS ended,
        COALESCE(SUM(ended_early), 0) AS ended_early,
        COALESCE(SUM(ended_on_day), 0) AS ended_on_day,
        COALESCE(SUM(ended_late), 0) AS ended_late,
        COALESCE(SUM(in_progress), 0) AS in_progress,
        COALESCE(SUM(in_progress_in_time), 0) AS in_progress_in_time,
        COALESCE(SUM(in_progress_overdue), 0) AS in_progress_overdue
    FROM k
    GROUP BY GROUPING SETS ((grp_key), ())
)
SELECT
    CASE WHEN is_total = 1 THEN 'TOTAL' ELSE grp_key END AS "group",
    CASE WHEN is_total = 1 THEN 'Tổng cộng' ELSE COALESCE(grp_name, 'Không xác định') END AS group_name,
    received_online + received_offline + carried_over AS total,
    received_online,
    received_offline,
    carried_over,
    ended,
    ended_early,
    ended_on_day,
    ended_late,
    in_progress,
    in_progress_in_time,
    in_progress_overdue
FROM rows
ORDER BY is_total, "group"
