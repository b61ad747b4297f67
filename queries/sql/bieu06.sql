-- Biểu 06 (Thông tư 01/2020/TT-VPCP, successor 03/2025/TT-VPCP): the period report.
-- One row per group, then the TOTAL row. Definitions: DOMAIN.md "Period report".
--
-- Parameters (bound by queries::bieu06, never spliced as text):
--   $1  period start: local 00:00 of `from` (inclusive instant)
--   $2  period end: local 00:00 of the day after `to` (exclusive instant); dossiers
--       still in progress are judged as of this instant (events with at <= $2 count)
--   $3  province code or NULL,  $4  commune code or NULL
-- {group_code} and {group_name} are replaced by column expressions chosen from a fixed
-- list (field, agency, commune, procedure) — never by user text.
--
-- The judgement of each dossier is derived once, in warehouse::facts:
--   dossier_facts.end_class      early | on_day | late, judged at the dossier's end time
--   dossier_states               in-progress segments [valid_from, valid_to); the one that
--                                contains $2 says overdue ⇔ $2 > overdue_after
WITH d AS (
    SELECT
        COALESCE({group_code}, '') AS grp,
        {group_name} AS grp_name,
        f.last_event_at,
        f.channel,
        f.received_at,
        f.ended_at,
        f.end_class,
        s.overdue_after
    FROM dossier_facts f
    LEFT JOIN territories t ON t.commune_code = f.commune_code
    LEFT JOIN dossier_states s
        ON s.dossier_id = f.dossier_id
       AND s.valid_from <= $2
       AND (s.valid_to IS NULL OR s.valid_to > $2)
    WHERE f.counted
      AND f.received_at < $2
      AND (f.ended_at IS NULL OR f.ended_at >= $1)
      AND ($3 IS NULL OR f.province_code = $3)
      AND ($4 IS NULL OR f.commune_code = $4)
),
c AS (
    SELECT
        grp,
        grp_name,
        last_event_at,
        CASE WHEN received_at >= $1 AND channel = 'online' THEN 1 ELSE 0 END AS received_online,
        CASE WHEN received_at >= $1 AND channel <> 'online' THEN 1 ELSE 0 END AS received_offline,
        CASE WHEN received_at < $1 THEN 1 ELSE 0 END AS carried_over,
        CASE WHEN ended_at < $2 THEN 1 ELSE 0 END AS ended,
        CASE WHEN ended_at < $2 AND end_class = 'early' THEN 1 ELSE 0 END AS ended_early,
        CASE WHEN ended_at < $2 AND end_class = 'on_day' THEN 1 ELSE 0 END AS ended_on_day,
        CASE WHEN ended_at < $2 AND end_class = 'late' THEN 1 ELSE 0 END AS ended_late,
        CASE WHEN ended_at IS NULL OR ended_at >= $2 THEN 1 ELSE 0 END AS in_progress,
        CASE WHEN (ended_at IS NULL OR ended_at >= $2)
                  AND (overdue_after IS NULL OR $2 <= overdue_after) THEN 1 ELSE 0 END AS in_progress_in_time,
        CASE WHEN (ended_at IS NULL OR ended_at >= $2)
                  AND overdue_after IS NOT NULL AND $2 > overdue_after THEN 1 ELSE 0 END AS in_progress_overdue
    FROM d
),
rows AS (
    SELECT
        0 AS is_total,
        grp AS "group",
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
    FROM c
    GROUP BY grp
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
