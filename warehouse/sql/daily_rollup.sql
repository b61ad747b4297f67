-- The daily rollup: what every counted dossier adds to the Biểu 06 counts, summed per
-- local day and per combination of dimensions. Built from `dossier_facts` (f) and
-- `dossier_states` (s), registered by the caller as the partitions being rebuilt.
--
-- Parameter: $1 the calendar's UTC offset in microseconds (a local day number is
-- (instant + $1) / 86,400,000,000).
--
-- A period [P1, P2) always runs from a local midnight to a local midnight, so every
-- comparison of an instant with P1 or P2 is a comparison of its local day with the day of
-- P1 or P2. The rows, per dossier:
--   * received on day(r): received_online / received_offline, and open_delta +1;
--   * ended on day(e): ended and its class, and open_delta −1;
--     (open at the midnight that starts day X ⇔ r < X ≤ e ⇔ day(r) < X ≤ day(e): the
--     sum of open_delta over the days before X)
--   * a dossier that ended before it was received (a data-quality case) counts in a
--     period only when both days are in it (period_dossiers.sql): one row with
--     day_lo = day(e) and day_hi = day(r), no open_delta;
--   * for every in-progress state segment [vf, vt) with an overdue_after o: the
--     midnights X with r < X ≤ e, vf ≤ X < vt and X > o are overdue; the first of them,
--     a, gets overdue_delta +1 on day a − 1 and the last, b, −1 on day b (so the number
--     overdue at midnight X is again the sum over the days before X).
-- A period's numbers are then: flows of rows with P1 ≤ day_lo and day_hi < P2; carried
-- over = Σ open_delta over day < P1; in progress = Σ open_delta over day < P2; overdue =
-- Σ overdue_delta over day < P2.
--
-- For the Decision 766 counts (queries::rollup::index766_counts) the rows also carry the
-- dossier's flags ("any event said true", warehouse::facts) as flows of the day it was
-- received (paid online, digitized, data reused, VNeID) or ended (result digitized), and
-- two more stocks, open_paid_online_delta and open_vneid_delta: open_delta restricted to
-- the dossiers paid online or connected to VNeID (a procedure "has such a dossier in the
-- period" when one was received in it or carried over into it).
WITH f AS (
    SELECT
        dossier_id, province_code, commune_code, agency_code, agency_name, field_code,
        field_name, procedure_code, procedure_name, procedure_level, channel,
        non_territorial, sources, last_event_at, end_class, first_event_month,
        CAST(received_at AS BIGINT) AS r,
        CAST(ended_at AS BIGINT) AS e,
        (CAST(received_at AS BIGINT) + $1) / 86400000000 AS rd,
        (CAST(ended_at AS BIGINT) + $1) / 86400000000 AS ed,
        CASE WHEN channel = 'online' THEN 1 ELSE 0 END AS online,
        CASE WHEN channel = 'online' THEN 0 ELSE 1 END AS offline,
        CASE WHEN end_class = 'early' THEN 1 ELSE 0 END AS early,
        CASE WHEN end_class = 'on_day' THEN 1 ELSE 0 END AS on_day,
        CASE WHEN end_class = 'late' THEN 1 ELSE 0 END AS late,
        CASE WHEN paid_online THEN 1 ELSE 0 END AS paid,
        CASE WHEN digitized THEN 1 ELSE 0 END AS dig,
        CASE WHEN data_reused THEN 1 ELSE 0 END AS reused,
        CASE WHEN vneid THEN 1 ELSE 0 END AS vn,
        CASE WHEN result_digitized THEN 1 ELSE 0 END AS res_dig
    FROM f_src
    WHERE counted
),
seg AS (
    SELECT
        f.*,
        greatest(
            f.rd + 1,
            (CAST(s.valid_from AS BIGINT) - 1 + $1) / 86400000000 + 1,
            (CAST(s.overdue_after AS BIGINT) + $1) / 86400000000 + 1
        ) AS a,
        least(
            f.ed,
            (CAST(s.valid_to AS BIGINT) - 1 + $1) / 86400000000
        ) AS b
    FROM f
    JOIN s_src s ON s.dossier_id = f.dossier_id
    WHERE s.overdue_after IS NOT NULL
      AND (f.e IS NULL OR f.e >= f.r)
),
rows AS (
    SELECT {dims}, rd AS day_lo, rd AS day_hi, online AS received_online,
           offline AS received_offline, 0 AS ended, 0 AS ended_early, 0 AS ended_on_day,
           0 AS ended_late, 1 AS open_delta, 0 AS overdue_delta,
           paid AS received_paid_online, dig AS received_digitized,
           reused AS received_data_reused, vn AS received_vneid,
           0 AS ended_result_digitized, paid AS open_paid_online_delta,
           vn AS open_vneid_delta, last_event_at
    FROM f WHERE e IS NULL OR e >= r
    UNION ALL
    SELECT {dims}, ed AS day_lo, ed AS day_hi, 0 AS received_online, 0 AS received_offline,
           1 AS ended, early AS ended_early, on_day AS ended_on_day, late AS ended_late,
           -1 AS open_delta, 0 AS overdue_delta,
           0 AS received_paid_online, 0 AS received_digitized, 0 AS received_data_reused,
           0 AS received_vneid, res_dig AS ended_result_digitized,
           -paid AS open_paid_online_delta, -vn AS open_vneid_delta, last_event_at
    FROM f WHERE e IS NOT NULL AND e >= r
    UNION ALL
    SELECT {dims}, ed AS day_lo, rd AS day_hi, online AS received_online,
           offline AS received_offline, 1 AS ended, early AS ended_early,
           on_day AS ended_on_day, late AS ended_late, 0 AS open_delta, 0 AS overdue_delta,
           paid AS received_paid_online, dig AS received_digitized,
           reused AS received_data_reused, vn AS received_vneid,
           res_dig AS ended_result_digitized, 0 AS open_paid_online_delta,
           0 AS open_vneid_delta, last_event_at
    FROM f WHERE e < r
    UNION ALL
    SELECT {dims}, a - 1 AS day_lo, a - 1 AS day_hi, 0 AS received_online,
           0 AS received_offline, 0 AS ended, 0 AS ended_early, 0 AS ended_on_day,
           0 AS ended_late, 0 AS open_delta, 1 AS overdue_delta,
           0 AS received_paid_online, 0 AS received_digitized,
           0 AS received_data_reused, 0 AS received_vneid, 0 AS ended_result_digitized,
           0 AS open_paid_online_delta, 0 AS open_vneid_delta, last_event_at
    FROM seg WHERE b IS NULL OR a <= b
    UNION ALL
    SELECT {dims}, b AS day_lo, b AS day_hi, 0 AS received_online, 0 AS received_offline,
           0 AS ended, 0 AS ended_early, 0 AS ended_on_day, 0 AS ended_late,
           0 AS open_delta, -1 AS overdue_delta,
           0 AS received_paid_online, 0 AS received_digitized,
           0 AS received_data_reused, 0 AS received_vneid, 0 AS ended_result_digitized,
           0 AS open_paid_online_delta, 0 AS open_vneid_delta, last_event_at
    FROM seg WHERE b IS NOT NULL AND a <= b
)
SELECT
    {dims},
    arrow_cast(CAST(day_lo AS INT), 'Date32') AS day_lo,
    arrow_cast(CAST(day_hi AS INT), 'Date32') AS day_hi,
    CAST(SUM(received_online) AS INT) AS received_online,
    CAST(SUM(received_offline) AS INT) AS received_offline,
    CAST(SUM(ended) AS INT) AS ended,
    CAST(SUM(ended_early) AS INT) AS ended_early,
    CAST(SUM(ended_on_day) AS INT) AS ended_on_day,
    CAST(SUM(ended_late) AS INT) AS ended_late,
    CAST(SUM(open_delta) AS INT) AS open_delta,
    CAST(SUM(overdue_delta) AS INT) AS overdue_delta,
    CAST(SUM(received_paid_online) AS INT) AS received_paid_online,
    CAST(SUM(received_digitized) AS INT) AS received_digitized,
    CAST(SUM(received_data_reused) AS INT) AS received_data_reused,
    CAST(SUM(received_vneid) AS INT) AS received_vneid,
    CAST(SUM(ended_result_digitized) AS INT) AS ended_result_digitized,
    CAST(SUM(open_paid_online_delta) AS INT) AS open_paid_online_delta,
    CAST(SUM(open_vneid_delta) AS INT) AS open_vneid_delta,
    MAX(last_event_at) AS last_event_at
FROM rows
GROUP BY {dims}, day_lo, day_hi
