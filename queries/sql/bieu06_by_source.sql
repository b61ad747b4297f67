-- Biểu 06 grouped by source system: a dossier reported by several systems is in each of
-- their groups, so the TOTAL row (each dossier once) is a second aggregate over c, not
-- the grand total of the groups. Every other grouping uses bieu06.sql (one pass).
-- Parameters and the CTE c: as bieu06.sql.
WITH c AS (
{period_dossiers}
),
g AS (
    SELECT {group_code} AS grp, {group_name} AS grp_name, c.*
    FROM c
),
rows AS (
    SELECT
        0 AS is_total,
        COALESCE(grp, '') AS "group",
        COALESCE(first_value(grp_name ORDER BY grp_name IS NULL, last_event_at DESC), 'Không xác định') AS group_name,
        SUM(received_online) AS received_online,
        SUM(received_offline) AS received_offline,
        SUM(carried_over) AS carried_over,
        SUM(ended) AS ended,
        SUM(ended_early) AS ended_early,
        SUM(ended_on_day) AS ended_on_day,
        SUM(ended_late) AS ended_late,
        SUM(in_progress) AS in_progress,
        SUM(in_progress_in_time) AS in_progress_in_time,
        SUM(in_progress_overdue) AS in_progress_overdue
    FROM g
    GROUP BY COALESCE(grp, '')
    UNION ALL
    SELECT
        1 AS is_total,
        'TOTAL' AS "group",
        'Tổng cộng' AS group_name,
        COALESCE(SUM(received_online), 0),
        COALESCE(SUM(received_offline), 0),
        COALESCE(SUM(carried_over), 0),
        COALESCE(SUM(ended), 0),
        COALESCE(SUM(ended_early), 0),
        COALESCE(SUM(ended_on_day), 0),
        COALESCE(SUM(ended_late), 0),
        COALESCE(SUM(in_progress), 0),
        COALESCE(SUM(in_progress_in_time), 0),
        COALESCE(SUM(in_progress_overdue), 0)
    FROM c
)
SELECT
    "group",
    group_name,
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
