//! Golden fixture (`fixtures/golden/`): 33 dossiers, every rule of docs/domain.md "Time rules",
//! with the Biểu 06 of four periods worked out by hand.
//!
//! Calendar facts used below (holidays_vn.csv): Thu 1/1 and Fri 2/1/2026 off, Sat 10/1/2026
//! worked (make-up), Tết Mon 16/2–Fri 20/2/2026 off. Office hours 07:30–11:30, 13:30–17:00
//! (7.5 h). P1 = 1 working day, P2 = 3, P3 = 10; U1/U2 are not in the catalog.
//!
//! Per dossier (due = reported `due_at` unless marked "computed"; all times local):
//! * G01 rcv Sat 17/1 10:00 (weekend). computed due: work starts Mon 19/1 07:30, 7.5 h → Mon 19/1 17:00.
//!   resolved 19/1 16:00 ≤ due, same date → on the day.
//! * G02 rcv Tue 6/1 19:30 (after hours). P2 computed: 7/1, 8/1, 9/1 → Fri 9/1 17:00. resolved Thu 8/1 → early.
//! * G03 rcv Thu 12/2 09:00 (Tết). P2 computed: 12/2 6 h, 13/2 13.5 h, 23/2 21 h, +1.5 h → Tue 24/2 09:00.
//!   resolved 24/2 08:30 → on the day.
//! * G04 rcv Fri 13/2 14:00. P1 computed: 13/2 3 h, Mon 23/2 07:30–11:30 (7 h), +0.5 h → 23/2 14:00.
//!   resolved 23/2 15:00 → late (same day, after due).
//! * G05 rcv Fri 9/1 15:00. P1 computed: 9/1 2 h, Sat 10/1 (make-up) 4 h + 1.5 h → Sat 10/1 15:00.
//!   resolved Mon 12/1 08:00 → late.
//! * G06 due 7/1 17:00, resolved exactly 7/1 17:00 → on the day.   G07 resolved 17:00:01 → late.
//! * G08 rcv Mon 12/1 08:00, P2 computed, closed round Tue 13/1 09:00 → Thu 15/1 10:00 =
//!   6 + 7.5 + 2.5 = 16 working hours. Due = 22.5 + 16 = 38.5 h from 12/1 08:00:
//!   12/1 7, 13/1 14.5, 14/1 22, 15/1 29.5, 16/1 37, Mon 19/1 +1.5 → 19/1 09:00. resolved 08:45 → on the day.
//! * G09 rcv Mon 2/3 07:30, P3 computed: ten full days → Fri 13/3 17:00. resolved Thu 12/3 → early.
//! * G10 two supplement requests → late (resolved long before due 20/1).
//! * G11 withdrawn Tue 20/1 10:00, due Thu 22/1 08:00 → ended, early.
//! * G12 stopped Tue 27/1 09:00, due Mon 26/1 08:00 → ended, late.
//! * G13 submitted then rejected; G14 received then rejected; G16 no received event → never counted.
//! * G15 resolved Mon 26/1 16:00 (returned 3/2): end = resolved. P1 computed due Tue 27/1 08:00 → early.
//! * G17 rcv Thu 29/1 08:00. Due 30/1 08:00 is first reported by an event of Tue 3/2 (after January).
//!   End of January (1/2 00:00): no reported due yet → computed P2: 29/1 7, 30/1 14.5, Mon 2/2 22,
//!   +0.5 → Tue 3/2 08:00 → in progress, in time. End of February (1/3 00:00): reported 30/1 08:00 →
//!   overdue. Resolved Tue 3/3 10:00 > 30/1 08:00 → late (Q1 periods).
//! * G18 rcv 26/1, due 28/1 17:00, never ended → in progress, overdue at every period end.
//! * G19 rcv 23/2, due 26/2 08:00, waiting in an open round requested Wed 25/2 10:00 → judged at the
//!   request → in time at 1/3 and 1/4 and 15/3.
//! * G20 due 5/3 08:00 (not moved), closed round Tue 3/3 08:00 → Thu 5/3 08:00 (48 h wall).
//!   resolved Fri 6/3 10:00; judged = 6/3 10:00 − 48 h = Wed 4/3 10:00 < due, date 4/3 < 5/3 → early.
//!   (subtract_pauses = false: 6/3 10:00 > due → late.)
//! * G21 due moved to Fri 13/3 08:00 by the supplement_received event (latest reported), round 24 h.
//!   resolved 13/3 15:00; judged 12/3 15:00 < due, date 12/3 < 13/3 → early. (no subtraction → late.)
//! * G22 rcv Fri 30/1 14:00, P3 computed: 30/1 3 h, 2–6/2 40.5, 9/2 48, 10/2 55.5, 11/2 63, 12/2 70.5,
//!   Fri 13/2 +4.5 → 13/2 14:00. In progress in time at 1/2; resolved Tue 10/2 → early.
//! * G23 rcv Mon 29/12/2025 (carried into 2026), due 12/1, resolved Fri 9/1 → early.
//! * G24 received and ended in December 2025 → in no 2026 period (nor in 15/12–14/3: ended 3/12).
//! * G25 postal (offline), resolved 3/2 15:00, due 4/2 09:00 → early.
//! * G26 lines out of order, one line duplicated. P1 computed due Tue 3/2 08:00; resolved exactly then → on the day.
//! * G27 received by `gs` Mon 16/3 08:00 and by `dvcqg` 09:00 (earliest wins; one dossier).
//!   due 17/3 08:00 reported by dvcqg; resolved 17/3 08:30 → late (same date: on the day by dates only).
//! * G28 withdrawn Mon 30/3 while waiting in an open round requested Tue 24/3 10:00; judged at the
//!   request, due 26/3 08:00 → early.
//! * G29 unknown procedure, no due reported → no deadline, in progress → in time.
//! * G30 unknown procedure, no due reported, ended → on the day.
//! * G32 rcv Sun 1/2 00:00:00 exactly → February. P1 computed Mon 2/2 17:00, resolved 2/2 11:00 → on the day.
//! * G33 rcv Sat 31/1 23:59:59 → January; in progress (in time) at 1/2 00:00; computed Mon 2/2 17:00;
//!   resolved 2/2 09:00 → on the day.
//! * G34 (HT, online) rcv Mon 16/3 08:00, due 19/3 08:00; one supplement round Tue 17/3 09:00 →
//!   Wed 18/3 09:00 reported by both `gs` and `dvcqg` (one request, not two); resolved Thu 19/3
//!   10:00; judged 19/3 10:00 − 24 h = 18/3 10:00 → early. (No subtraction: late. Dates only: early.)
//!
//! Fields: P1/U2 → CT, P2 → HT, P3 → DD, U1 → KHAC. Communes: G01–G16 11311 (Hồng Bàng),
//! the rest 11224 (Khúc Thừa Dụ).

use chrono::NaiveDate;

use giamsat_queries::bieu06::{self, GroupBy, Row};
use giamsat_warehouse::config::{ChannelRule, CompareMode, Config};

use crate::common;

/// (group, online, offline, carried, early, on_day, late, in_time, overdue)
type Line = (&'static str, i64, i64, i64, i64, i64, i64, i64, i64);

fn rows(lines: &[Line]) -> Vec<(String, [i64; 11])> {
    lines
        .iter()
        .map(|&(g, on, off, car, e, d, l, it, od)| {
            let ended = e + d + l;
            let ip = it + od;
            (
                g.to_string(),
                [on + off + car, on, off, car, ended, e, d, l, ip, it, od],
            )
        })
        .collect()
}

fn numbers(r: &[Row]) -> Vec<(String, [i64; 11])> {
    r.iter().map(|r| (r.group.clone(), r.counts())).collect()
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

async fn report(
    w: &common::Loaded,
    from: &str,
    to: &str,
    commune: Option<&str>,
    g: GroupBy,
) -> Vec<Row> {
    let p =
        bieu06::Params::new(d(from), d(to), None, commune.map(str::to_string), g).expect("params");
    bieu06::run(&w.ctx, &w.wh.calendar, &p)
        .await
        .expect("report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_bieu06_four_periods() {
    let w = common::load_golden(Config::default()).await;
    assert_eq!(
        w.counts,
        giamsat_ingest::IngestCounts {
            accepted: 86,
            duplicates: 1,
            quarantined: 1
        },
        "88 lines: one duplicate (G26), one malformed (G99)"
    );

    // January 2026
    let jan = rows(&[
        ("CT", 3, 1, 0, 1, 1, 1, 1, 0),
        ("DD", 2, 0, 1, 1, 0, 1, 1, 0),
        ("HT", 6, 2, 0, 2, 2, 2, 1, 1),
        ("TOTAL", 11, 3, 1, 4, 3, 4, 3, 1),
    ]);
    assert_eq!(
        numbers(&report(&w, "2026-01-01", "2026-01-31", None, GroupBy::Field).await),
        jan
    );

    // February 2026 (Tết)
    let feb = rows(&[
        ("CT", 2, 2, 1, 1, 3, 1, 0, 0),
        ("DD", 0, 0, 1, 1, 0, 0, 0, 0),
        ("HT", 2, 0, 2, 0, 1, 0, 1, 2),
        ("TOTAL", 4, 2, 4, 2, 4, 1, 1, 2),
    ]);
    assert_eq!(
        numbers(&report(&w, "2026-02-01", "2026-02-28", None, GroupBy::Field).await),
        feb
    );

    // calendar Q1 2026
    let q1 = rows(&[
        ("CT", 6, 4, 0, 2, 5, 3, 0, 0),
        ("DD", 2, 1, 1, 3, 0, 1, 0, 0),
        ("HT", 12, 2, 0, 6, 3, 3, 1, 1),
        ("KHAC", 1, 0, 0, 0, 0, 0, 1, 0),
        ("TOTAL", 21, 7, 1, 11, 8, 7, 2, 1),
    ]);
    assert_eq!(
        numbers(&report(&w, "2026-01-01", "2026-03-31", None, GroupBy::Field).await),
        q1
    );

    // official Q1 2026: 15/12/2025 – 14/3/2026
    let oq1 = rows(&[
        ("CT", 5, 3, 0, 2, 4, 2, 0, 0),
        ("DD", 2, 2, 0, 3, 0, 1, 0, 0),
        ("HT", 10, 2, 0, 4, 3, 3, 1, 1),
        ("TOTAL", 17, 7, 0, 9, 7, 6, 1, 1),
    ]);
    assert_eq!(
        numbers(&report(&w, "2025-12-15", "2026-03-14", None, GroupBy::Field).await),
        oq1
    );

    // January, one commune only (Hồng Bàng: G01, G02, G05–G08, G10–G12, G15)
    let jan_x = rows(&[
        ("CT", 2, 1, 0, 1, 1, 1, 0, 0),
        ("DD", 1, 0, 0, 0, 0, 1, 0, 0),
        ("HT", 4, 2, 0, 2, 2, 2, 0, 0),
        ("TOTAL", 7, 3, 0, 3, 3, 4, 0, 0),
    ]);
    assert_eq!(
        numbers(
            &report(
                &w,
                "2026-01-01",
                "2026-01-31",
                Some("11311"),
                GroupBy::Field
            )
            .await
        ),
        jan_x
    );

    // January by commune, names from the territory table
    let by_commune = report(&w, "2026-01-01", "2026-01-31", None, GroupBy::Commune).await;
    assert_eq!(
        numbers(&by_commune),
        rows(&[
            ("11224", 4, 0, 1, 1, 0, 0, 3, 1),
            ("11311", 7, 3, 0, 3, 3, 4, 0, 0),
            ("TOTAL", 11, 3, 1, 4, 3, 4, 3, 1),
        ])
    );
    assert_eq!(by_commune[0].group_name, "Xã Khúc Thừa Dụ");
    assert_eq!(by_commune[1].group_name, "Phường Hồng Bàng");

    // a period with nothing in it still has its TOTAL row
    assert_eq!(
        numbers(&report(&w, "2024-01-01", "2024-01-31", None, GroupBy::Field).await),
        rows(&[("TOTAL", 0, 0, 0, 0, 0, 0, 0, 0)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_due_times_and_classes() {
    let w = common::load_golden(Config::default()).await;
    let batches = giamsat_queries::run_sql(
        &w.ctx,
        "SELECT dossier_id, CAST(due_at AS VARCHAR) AS due, due_kind, COALESCE(end_class, '') AS c, counted \
         FROM dossier_facts ORDER BY dossier_id",
    )
    .await
    .expect("sql");
    let mut got = std::collections::BTreeMap::new();
    for b in &batches {
        let id = giamsat_warehouse::event::string_col(b, "dossier_id").expect("id");
        let due = giamsat_warehouse::event::string_col(b, "due").expect("due");
        let kind = giamsat_warehouse::event::string_col(b, "due_kind").expect("kind");
        let c = giamsat_warehouse::event::string_col(b, "c").expect("c");
        for i in 0..b.num_rows() {
            use giamsat_queries::arrow::array::Array;
            let due = if due.is_null(i) {
                String::new()
            } else {
                due.value(i).to_string()
            };
            got.insert(
                id.value(i).to_string(),
                (due, kind.value(i).to_string(), c.value(i).to_string()),
            );
        }
    }
    // (dossier, due in UTC, kind, class)
    for (id, due, kind, class) in [
        ("G01", "2026-01-19T10:00:00Z", "computed", "on_day"),
        ("G02", "2026-01-09T10:00:00Z", "computed", "early"),
        ("G03", "2026-02-24T02:00:00Z", "computed", "on_day"),
        ("G04", "2026-02-23T07:00:00Z", "computed", "late"),
        ("G05", "2026-01-10T08:00:00Z", "computed", "late"),
        ("G06", "2026-01-07T10:00:00Z", "reported", "on_day"),
        ("G07", "2026-01-07T10:00:00Z", "reported", "late"),
        ("G08", "2026-01-19T02:00:00Z", "computed", "on_day"),
        ("G09", "2026-03-13T10:00:00Z", "computed", "early"),
        ("G10", "2026-01-20T10:00:00Z", "reported", "late"),
        ("G15", "2026-01-27T01:00:00Z", "computed", "early"),
        ("G17", "2026-01-30T01:00:00Z", "reported", "late"),
        ("G20", "2026-03-05T01:00:00Z", "reported", "early"),
        ("G21", "2026-03-13T01:00:00Z", "reported", "early"),
        ("G22", "2026-02-13T07:00:00Z", "computed", "early"),
        ("G26", "2026-02-03T01:00:00Z", "computed", "on_day"),
        ("G27", "2026-03-17T01:00:00Z", "reported", "late"),
        ("G28", "2026-03-26T01:00:00Z", "reported", "early"),
        ("G30", "", "none", "on_day"),
        ("G33", "2026-02-02T10:00:00Z", "computed", "on_day"),
        ("G34", "2026-03-19T01:00:00Z", "reported", "early"),
    ] {
        let (gd, gk, gc) = got.get(id).unwrap_or_else(|| panic!("{id} missing"));
        let gd = gd.replace(' ', "T").replace("+00:00", "Z");
        let gd = if gd.is_empty() || gd.ends_with('Z') {
            gd
        } else {
            format!("{gd}Z")
        };
        assert_eq!(
            (gd.as_str(), gk.as_str(), gc.as_str()),
            (due, kind, class),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_rule_variants() {
    // subtract_pauses = false: G20 and G21 become late (Q1: HT early 5→3, late 3→5)
    let mut cfg = Config::default();
    cfg.rules.subtract_pauses = false;
    let w = common::load_golden(cfg).await;
    assert_eq!(
        numbers(&report(&w, "2026-01-01", "2026-03-31", None, GroupBy::Field).await),
        rows(&[
            ("CT", 6, 4, 0, 2, 5, 3, 0, 0),
            ("DD", 2, 1, 1, 3, 0, 1, 0, 0),
            ("HT", 12, 2, 0, 3, 3, 6, 1, 1),
            ("KHAC", 1, 0, 0, 0, 0, 0, 1, 0),
            ("TOTAL", 21, 7, 1, 8, 8, 10, 2, 1),
        ])
    );

    // compare dates only: G04, G27 (CT) and G07 (HT) are on the day, not late
    let mut cfg = Config::default();
    cfg.rules.compare = CompareMode::Date;
    let w = common::load_golden(cfg).await;
    assert_eq!(
        numbers(&report(&w, "2026-01-01", "2026-03-31", None, GroupBy::Field).await),
        rows(&[
            ("CT", 6, 4, 0, 2, 7, 1, 0, 0),
            ("DD", 2, 1, 1, 3, 0, 1, 0, 0),
            ("HT", 12, 2, 0, 6, 4, 2, 1, 1),
            ("KHAC", 1, 0, 0, 0, 0, 0, 1, 0),
            ("TOTAL", 21, 7, 1, 11, 11, 4, 2, 1),
        ])
    );

    // channel of the received event: G01's channel is only on its `submitted` event, so
    // it counts as in person in January (CT online 3→2, offline 1→2)
    let mut cfg = Config::default();
    cfg.rules.channel = ChannelRule::Received;
    let w = common::load_golden(cfg).await;
    assert_eq!(
        numbers(&report(&w, "2026-01-01", "2026-01-31", None, GroupBy::Field).await),
        rows(&[
            ("CT", 2, 2, 0, 1, 1, 1, 1, 0),
            ("DD", 2, 0, 1, 1, 0, 1, 1, 0),
            ("HT", 6, 2, 0, 2, 2, 2, 1, 1),
            ("TOTAL", 10, 4, 1, 4, 3, 4, 3, 1),
        ])
    );
}
