//! Operational queries of issue #5 on the `fixtures/recon/` fixture: alerts (overdue, due
//! soon, not synced), reconciliation between sources, sync health per source, data
//! quality. Every expected number below was worked out by hand from the fixture and the
//! calendar (`fixtures/recon/README.md` has the same table), never copied from output.
//!
//! Sources: `hp-motcua` (H, provincial one-stop), `bo-tuphap` (T, Ministry of Justice),
//! `bo-congan` (C, Ministry of Public Security), `dvcqg` (P, the national portal).
//! Communes: 11311 Phường Hồng Bàng, 11224 Xã Khúc Thừa Dụ (province 31). All times
//! local (+07:00), April 2026. Working time Mon–Fri 07:30–11:30, 13:30–17:00 (7.5 h);
//! Sun 26/4 (Giỗ Tổ) falls on a Sunday, so **Mon 27/4 is off** (nghỉ bù), 30/4 and 1/5 off.
//!
//! ## Reconciliation dossiers (earliest events 6/4–9/4 but R13; due 10/4 17:00 everywhere)
//! | id | H | T | P | expected |
//! |---|---|---|---|---|
//! | R01 | rcv 6/4 08:00, resolved 7/4 10:00 | | | missing_on_portal (H, P) |
//! | R02 | | | rcv 6/4 09:00, resolved 7/4 11:00 | missing_in_origin (P, –) |
//! | R03 | rcv 6/4 10:00, resolved 8/4 09:00 | | rcv 6/4 10:00, no end | lost_state (H, P) |
//! | R04 | rcv 6/4 14:00, resolved 9/4 10:00 | | rcv, stopped 9/4 10:20 | status_mismatch (H, P); 20 min ≤ 1 h |
//! | R05 | rcv 7/4 08:00, resolved 9/4 15:00 | | rcv, resolved 9/4 15:30 | clean (30 min ≤ 1 h) |
//! | R06 | rcv 7/4 09:00, resolved 8/4 08:00 | | rcv, resolved 8/4 11:00 | end_time_mismatch (H, P), 3 h |
//! | R07 | rcv 7/4 10:00 **and** 10:05, resolved 9/4 09:00 | | rcv 10:00, resolved 9/4 09:00 | duplicate (H, –) |
//! | R08 | rcv 7/4 13:45, resolved 10/4 10:00 | rcv 14:00, resolved 10:00 | rcv 13:45, resolved 10:00 | duplicate (T, H): two origins received |
//! | R09 | rcv 8/4 08:00 (sent twice, the second with other content: one instant, not a duplicate), resolved 10/4 08:00 | | same | clean |
//! | R10 | | rcv 8/4 09:00, withdrawn **and** stopped 9/4 09:00 | rcv, stopped 9/4 11:00 | status_mismatch (T, P) + end_time_mismatch (T, P), 2 h; T's end is `withdrawn` (same instant: resolved, returned, withdrawn, stopped — the facts order) |
//! | R11 | | rcv 8/4 10:00, no end | rcv, resolved 10/4 14:00 | lost_state (T, P) |
//! | R12 | rcv 9/4 08:00, resolved 10/4 09:00 | processing 9/4 10:00 only | rcv, resolved 10/4 09:00 | lost_state (T, P) + lost_state (T, H) |
//!
//! | R13 | rcv **Fri 3/4** 08:00, resolved 7/4 10:00 | | | missing_on_portal (H, P), but its earliest event is
//! before 6/4: outside the window [6/4, 11/4) used below |
//!
//! R07, R08, R10, R11, R12 are in commune 11224, the other R* in 11311.
//!
//! ## Alert dossiers, as of Fri 24/4/2026 15:00 (due within 8 working hours, stale after 24 h)
//! Source freshness at 24/4 15:00 (last event with at ≤ as_of): H 24/4 09:00 (6 h), P
//! 24/4 08:00 (7 h), T 23/4 15:00 (exactly 24 h: **not** stale, the rule is `>`), C 13/4
//! 08:00 (11 d 7 h: stale; its event of 30/4 has not happened yet at as_of).
//! Working hours from 24/4 15:00: Fri 15:00–17:00 = 2 h, then Tue 28/4 from 07:30.
//! * A01 H, rcv 13/4, due Thu 16/4 17:00 → overdue; since: Fri 17/4 7.5 + Mon–Thu 30 +
//!   Fri 24/4 (4 + 1.5) = **−43 h**.
//! * A02 H+P, rcv 23/4, due Tue 28/4 13:45 → 2 + 4 + 0.25 = **6.25 h** ≤ 8: due soon
//!   (weekend, holiday Mon 27/4 and the lunch break skipped); origin = H (fresh).
//! * A03 H, due Tue 28/4 16:00 → 2 + 4 + 2.5 = 8.5 h > 8: not listed.
//! * A04 H, due Tue 28/4 15:30 → 2 + 4 + 2 = **8 h** ≤ 8: due soon (boundary).
//! * A05 T, rcv 20/4, due Wed 22/4 17:00, processing 23/4 15:00 → overdue, Thu 7.5 + Fri
//!   5.5 = **−13 h**; T last event exactly 24 h before → not stale. (stale_after 23.5 h → stale.)
//! * A06 C+P, rcv 13/4, due Fri 17/4 17:00; C resolved 30/4 (after as_of, so still in
//!   progress) → overdue, Mon–Thu 30 + Fri 5.5 = −35.5 h; origin = C only (P is the
//!   portal), C silent since 13/4 08:00 → **"Chưa đồng bộ"** (stale), overdue kept true.
//! * A07 H, due 16/4 17:00, supplement requested 15/4 10:00 (before due), still open →
//!   judged at the request: never overdue while waiting → not listed.
//! * A08 H, due 14/4 17:00, supplement requested 15/4 09:00 (after due), open → judged
//!   at the request > due → overdue by rule: overdue_after and hours left null, listed first.
//! * A10 H, received Tue 28/4 (after as_of) → not listed.
//! * A11 P only (origin = the portal itself), commune 11224, rcv 24/4 08:00, due Tue 28/4
//!   08:30 → 2 + 1 = **3 h**: due soon.
//! * A12 H, rcv Fri 17/4 14:00, no reported due, CT = 1 working day: 17/4 3 h + Mon 20/4
//!   07:30–11:30 4 h + 0.5 h → computed due Mon 20/4 14:00 → overdue, Mon 3 + Tue–Thu
//!   22.5 + Fri 5.5 = **−31 h**.
//!
//! Order (overdue_after ascending): A08, A01, A06, A12, A05, A11, A02, A04.
//! Summary: overdue 4 (A08, A01, A12, A05), due soon 3 (A11, A02, A04), stale 1 (A06).
//!
//! ## Data-quality dossiers (all H; 11311 unless said)
//! Q01 submitted + processing, no received → no_received. Q02 received then rejected →
//! rejected. Q03 (11224) unknown procedure 9.999999, no due → unknown_procedure and
//! no_deadline (in progress, never overdue, not an alert). Q04 no procedure code →
//! no_procedure. Q05 commune 99999 and Q06 no commune → unknown_commune. Q07 resolved
//! 15/4 08:00, received 15/4 14:00 → ended_before_received. Q08 due 16/4 17:00, resolved
//! exactly 16/4 17:00 → overdue_reset. Q09 supplement requested 16/4 09:00, resolved
//! 15:00 with the round open → resolved_open_supplement. Q10 same but withdrawn → nothing.
//!
//! ## Whole file
//! 94 lines: 90 events (H 55 incl. one feedback event and A10 after as_of, T 9, P 24,
//! C 2), one duplicate line (A01), three quarantined lines (not JSON; bo-tuphap with type
//! "approved"; hp-motcua with a bad date). Unfiltered reconciliation adds every H-only or
//! T-only A*/Q* dossier as missing_on_portal (A01, A03, A04, A05, A07, A08, A10, A12,
//! Q01–Q10 = 18, plus R01 and R13 = 20), A11 as missing_in_origin, A06 as lost_state (C, P).

use std::sync::Arc;

use giamsat_queries::{alerts, health, quality, recon, QueryError, SessionContext};
use giamsat_warehouse::config::Config;

use crate::common;

fn at(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .timestamp_micros()
}

/// Fri 24/4/2026 15:00 local.
const AS_OF: &str = "2026-04-24T15:00:00+07:00";

async fn load() -> common::Loaded {
    common::load_recon(Config::default()).await
}

async fn commune_session(w: &common::Loaded, commune: &str) -> SessionContext {
    let communes = vec![commune.to_string()];
    giamsat_queries::scoped_session(
        &w.ctx,
        Arc::new(w.wh.calendar.clone()),
        Some((&[], &communes)),
    )
    .await
    .expect("scoped session")
}

/// (dossier, status, overdue, stale, working hours left, overdue_after)
type AlertLine<'a> = (
    &'a str,
    alerts::Status,
    bool,
    bool,
    Option<f64>,
    Option<&'a str>,
);

fn alert_lines(r: &alerts::Report) -> Vec<AlertLine<'_>> {
    r.items
        .iter()
        .map(|a| {
            (
                a.dossier_id.as_str(),
                a.status,
                a.overdue,
                a.stale,
                a.working_hours_left,
                a.overdue_after.as_deref(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recon_fixture_alerts_at_friday_afternoon() {
    use alerts::Status::{DueSoon, Overdue, Stale};
    let w = load().await;
    let cal = &w.wh.calendar;
    let p = alerts::Params::new(at(AS_OF));
    let r = alerts::run(&w.ctx, cal, &p).await.expect("alerts");
    assert_eq!(r.as_of.as_deref(), Some(AS_OF));
    assert_eq!(
        r.summary,
        alerts::Summary {
            overdue: 4,
            due_soon: 3,
            stale: 1,
            total: 8
        }
    );
    assert_eq!(
        alert_lines(&r),
        vec![
            ("A08", Overdue, true, false, None, None),
            (
                "A01",
                Overdue,
                true,
                false,
                Some(-43.0),
                Some("2026-04-16T17:00:00+07:00")
            ),
            (
                "A06",
                Stale,
                true,
                true,
                Some(-35.5),
                Some("2026-04-17T17:00:00+07:00")
            ),
            (
                "A12",
                Overdue,
                true,
                false,
                Some(-31.0),
                Some("2026-04-20T14:00:00+07:00")
            ),
            (
                "A05",
                Overdue,
                true,
                false,
                Some(-13.0),
                Some("2026-04-22T17:00:00+07:00")
            ),
            (
                "A11",
                DueSoon,
                false,
                false,
                Some(3.0),
                Some("2026-04-28T08:30:00+07:00")
            ),
            (
                "A02",
                DueSoon,
                false,
                false,
                Some(6.25),
                Some("2026-04-28T13:45:00+07:00")
            ),
            (
                "A04",
                DueSoon,
                false,
                false,
                Some(8.0),
                Some("2026-04-28T15:30:00+07:00")
            ),
        ]
    );
    // the other fields of a few rows
    let a06 = &r.items[2];
    assert_eq!(a06.status_label, "Chưa đồng bộ");
    assert_eq!(a06.sources, "bo-congan,dvcqg");
    assert_eq!(
        a06.last_source_event_at.as_deref(),
        Some("2026-04-13T08:00:00+07:00")
    );
    assert_eq!(a06.due_at.as_deref(), Some("2026-04-17T17:00:00+07:00"));
    assert_eq!(a06.procedure_code.as_deref(), Some("3.000001"));
    assert_eq!(
        a06.agency_name.as_deref(),
        Some("Công an thành phố Hải Phòng")
    );
    let a08 = &r.items[0];
    assert!(a08.overdue_by_rule);
    assert_eq!(a08.status_label, "Quá hạn");
    assert_eq!(a08.due_at.as_deref(), Some("2026-04-14T17:00:00+07:00"));
    assert_eq!(
        a08.last_source_event_at.as_deref(),
        Some("2026-04-24T09:00:00+07:00")
    );
    let a02 = &r.items[6];
    assert_eq!(a02.status_label, "Sắp đến hạn");
    assert_eq!(a02.sources, "dvcqg,hp-motcua");
    assert_eq!(
        a02.received_at.as_deref(),
        Some("2026-04-23T08:00:00+07:00")
    );
    assert_eq!(a02.field_code.as_deref(), Some("CT"));
    assert_eq!(a02.commune_code.as_deref(), Some("11311"));
    // A11: only the portal reports it, so the portal is its origin
    assert_eq!(
        r.items[5].last_source_event_at.as_deref(),
        Some("2026-04-24T08:00:00+07:00")
    );

    // T's last event is exactly 24 h old: stale once the threshold is below 24 h
    let r = alerts::run(
        &w.ctx,
        cal,
        &alerts::Params {
            stale_after_hours: 23.5,
            ..p.clone()
        },
    )
    .await
    .expect("alerts");
    assert_eq!(
        (r.summary.overdue, r.summary.due_soon, r.summary.stale),
        (3, 3, 2)
    );
    assert_eq!(r.items[4].dossier_id, "A05");
    assert_eq!(r.items[4].status, Stale);

    // a tighter due-soon window drops A04 (8 h) but keeps A02 (6.25 h, boundary)
    let r = alerts::run(
        &w.ctx,
        cal,
        &alerts::Params {
            due_within_hours: 6.25,
            ..p.clone()
        },
    )
    .await
    .expect("alerts");
    assert_eq!((r.summary.due_soon, r.summary.total), (2, 7));

    // limit cuts the list, not the counts
    let r = alerts::run(
        &w.ctx,
        cal,
        &alerts::Params {
            limit: 2,
            ..p.clone()
        },
    )
    .await
    .expect("alerts");
    assert_eq!(r.summary.total, 8);
    assert_eq!(
        r.items
            .iter()
            .map(|a| a.dossier_id.as_str())
            .collect::<Vec<_>>(),
        ["A08", "A01"]
    );

    // commune filter
    let r = alerts::run(
        &w.ctx,
        cal,
        &alerts::Params {
            commune: Some("11224".into()),
            ..p.clone()
        },
    )
    .await
    .expect("alerts");
    assert_eq!(
        r.items
            .iter()
            .map(|a| a.dossier_id.as_str())
            .collect::<Vec<_>>(),
        ["A05", "A11"]
    );

    // one day later (Sat 25/4 15:00), no new event: H (24/4 09:00) is 30 h old, P 31 h,
    // T 48 h, C 12 d → every source is stale and every listed dossier "Chưa đồng bộ".
    // Listed: the 5 overdue ones, and A11, A02, A04 plus A03 (Tue 28/4 07:30–11:30 4 h +
    // 13:30–16:00 2.5 h = 6.5 h ≤ 8 from Saturday) → 9.
    let r = alerts::run(
        &w.ctx,
        cal,
        &alerts::Params::new(at("2026-04-25T15:00:00+07:00")),
    )
    .await
    .expect("alerts");
    assert_eq!(
        (r.summary.overdue, r.summary.due_soon, r.summary.stale),
        (0, 0, 9)
    );

    // bad input
    for bad in [
        alerts::Params::new(at("2031-01-01T00:00:00+07:00")),
        alerts::Params {
            portal_source: "DVCQG".into(),
            ..p.clone()
        },
        alerts::Params {
            limit: 0,
            ..p.clone()
        },
        alerts::Params {
            due_within_hours: f64::NAN,
            ..p.clone()
        },
        alerts::Params {
            commune: Some("1' OR 1=1".into()),
            ..p.clone()
        },
    ] {
        assert!(
            matches!(
                alerts::run(&w.ctx, cal, &bad).await,
                Err(QueryError::BadInput(_))
            ),
            "{bad:?}"
        );
    }
}

type ReconLine = (
    recon::Kind,
    &'static str,
    &'static str,
    Option<&'static str>,
);

fn recon_lines(r: &recon::Report) -> Vec<(recon::Kind, String, String, Option<String>)> {
    r.items
        .iter()
        .map(|i| {
            (
                i.kind,
                i.dossier_id.clone(),
                i.source_a.clone(),
                i.source_b.clone(),
            )
        })
        .collect()
}

fn expect_recon(lines: &[ReconLine]) -> Vec<(recon::Kind, String, String, Option<String>)> {
    lines
        .iter()
        .map(|&(k, d, a, b)| (k, d.to_string(), a.to_string(), b.map(str::to_string)))
        .collect()
}

fn totals(r: &recon::Report) -> Vec<(i64, i64)> {
    r.totals.iter().map(|t| (t.count, t.dossiers)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recon_fixture_reconciliation_between_sources() {
    use recon::Kind::*;
    let w = load().await;
    let window = recon::Params {
        from: Some(at("2026-04-06T00:00:00+07:00")),
        to: Some(at("2026-04-11T00:00:00+07:00")),
        ..recon::Params::default()
    };
    let r = recon::run(&w.ctx, &window).await.expect("recon");
    let expected = expect_recon(&[
        (MissingOnPortal, "R01", "hp-motcua", Some("dvcqg")),
        (MissingInOrigin, "R02", "dvcqg", None),
        (LostState, "R03", "hp-motcua", Some("dvcqg")),
        (LostState, "R11", "bo-tuphap", Some("dvcqg")),
        (LostState, "R12", "bo-tuphap", Some("dvcqg")),
        (LostState, "R12", "bo-tuphap", Some("hp-motcua")),
        (StatusMismatch, "R04", "hp-motcua", Some("dvcqg")),
        (StatusMismatch, "R10", "bo-tuphap", Some("dvcqg")),
        (EndTimeMismatch, "R06", "hp-motcua", Some("dvcqg")),
        (EndTimeMismatch, "R10", "bo-tuphap", Some("dvcqg")),
        (Duplicate, "R07", "hp-motcua", None),
        (Duplicate, "R08", "bo-tuphap", Some("hp-motcua")),
    ]);
    assert_eq!(recon_lines(&r), expected);
    // (rows, dossiers) per kind in report order
    assert_eq!(totals(&r), [(1, 1), (1, 1), (4, 3), (2, 2), (2, 2), (2, 2)]);
    assert_eq!(r.dossiers_with_discrepancies, 10);
    assert_eq!(r.totals[2].label, "Mất trạng thái kết thúc");
    let pairs: Vec<_> = r
        .pairs
        .iter()
        .map(|p| (p.source_a.as_str(), p.source_b.as_deref(), p.kind, p.count))
        .collect();
    assert_eq!(
        pairs,
        [
            ("bo-tuphap", Some("dvcqg"), LostState, 2),
            ("bo-tuphap", Some("dvcqg"), StatusMismatch, 1),
            ("bo-tuphap", Some("dvcqg"), EndTimeMismatch, 1),
            ("bo-tuphap", Some("hp-motcua"), LostState, 1),
            ("bo-tuphap", Some("hp-motcua"), Duplicate, 1),
            ("dvcqg", None, MissingInOrigin, 1),
            ("hp-motcua", None, Duplicate, 1),
            ("hp-motcua", Some("dvcqg"), MissingOnPortal, 1),
            ("hp-motcua", Some("dvcqg"), LostState, 1),
            ("hp-motcua", Some("dvcqg"), StatusMismatch, 1),
            ("hp-motcua", Some("dvcqg"), EndTimeMismatch, 1),
        ]
    );

    // the columns of a few items, and their Vietnamese detail
    let r10 = &r.items[9];
    assert_eq!(
        (
            r10.a_end_type.as_deref(),
            r10.b_end_type.as_deref(),
            r10.a_ended_at.as_deref(),
            r10.b_ended_at.as_deref(),
            r10.end_diff_seconds
        ),
        (
            Some("withdrawn"),
            Some("stopped"),
            Some("2026-04-09T09:00:00+07:00"),
            Some("2026-04-09T11:00:00+07:00"),
            Some(7_200)
        )
    );
    assert_eq!(
        r10.detail,
        "Thời điểm kết thúc lệch nhau 2 giờ (ngưỡng 1 giờ): bo-tuphap «Công dân rút hồ sơ» \
         lúc 09/04/2026 09:00, dvcqg «Dừng xử lý» lúc 09/04/2026 11:00"
    );
    assert_eq!(
        r.items[3].detail,
        "dvcqg ghi nhận kết thúc «Đã xử lý xong» lúc 10/04/2026 14:00; bo-tuphap chưa có \
         trạng thái kết thúc"
    );
    let r07 = &r.items[10];
    assert_eq!(r07.a_received_count, Some(2));
    assert_eq!(
        r07.detail,
        "hp-motcua ghi nhận 2 thời điểm tiếp nhận khác nhau (sớm nhất 07/04/2026 10:00)"
    );
    let r08 = &r.items[11];
    assert_eq!(
        (r08.a_received_at.as_deref(), r08.b_received_at.as_deref()),
        (
            Some("2026-04-07T14:00:00+07:00"),
            Some("2026-04-07T13:45:00+07:00")
        )
    );
    assert_eq!(
        r.items[0].detail,
        "Hồ sơ có trên hp-motcua nhưng chưa được đồng bộ lên dvcqg"
    );

    // a 20-minute tolerance: R05 (30 min) now differs, R04 (exactly 20 min) still not
    let r = recon::run(
        &w.ctx,
        &recon::Params {
            tolerance_seconds: 1_200,
            kind: Some(EndTimeMismatch),
            ..window.clone()
        },
    )
    .await
    .expect("recon");
    assert_eq!(
        recon_lines(&r),
        expect_recon(&[
            (EndTimeMismatch, "R05", "hp-motcua", Some("dvcqg")),
            (EndTimeMismatch, "R06", "hp-motcua", Some("dvcqg")),
            (EndTimeMismatch, "R10", "bo-tuphap", Some("dvcqg")),
        ])
    );
    // the kind filter narrows the items only
    assert_eq!(totals(&r), [(1, 1), (1, 1), (4, 3), (2, 2), (3, 3), (2, 2)]);

    // kind filter and limit
    let r = recon::run(
        &w.ctx,
        &recon::Params {
            kind: Some(LostState),
            limit: 2,
            ..window.clone()
        },
    )
    .await
    .expect("recon");
    assert_eq!(
        recon_lines(&r),
        expect_recon(&[
            (LostState, "R03", "hp-motcua", Some("dvcqg")),
            (LostState, "R11", "bo-tuphap", Some("dvcqg")),
        ])
    );

    // no window: every dossier of the file
    let r = recon::run(&w.ctx, &recon::Params::default())
        .await
        .expect("recon");
    assert_eq!(
        totals(&r),
        [(20, 20), (2, 2), (5, 4), (2, 2), (2, 2), (2, 2)]
    );
    assert_eq!(r.dossiers_with_discrepancies, 31);
    let count = |a: &str, b: Option<&str>, k: recon::Kind| {
        r.pairs
            .iter()
            .find(|p| p.source_a == a && p.source_b.as_deref() == b && p.kind == k)
            .map(|p| p.count)
    };
    assert_eq!(count("hp-motcua", Some("dvcqg"), MissingOnPortal), Some(19));
    assert_eq!(count("bo-tuphap", Some("dvcqg"), MissingOnPortal), Some(1));
    assert_eq!(count("bo-congan", Some("dvcqg"), LostState), Some(1));
    assert_eq!(count("dvcqg", None, MissingInOrigin), Some(2));

    // bad input
    assert!(matches!(
        recon::Kind::parse("lost"),
        Err(QueryError::BadInput(_))
    ));
    assert!(matches!(
        recon::run(
            &w.ctx,
            &recon::Params {
                tolerance_seconds: -5,
                ..recon::Params::default()
            }
        )
        .await,
        Err(QueryError::BadInput(_))
    ));
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recon_fixture_sync_health_per_source() {
    let t0 = chrono::Utc::now().timestamp_micros();
    let w = load().await;
    let t1 = chrono::Utc::now().timestamp_micros();
    assert_eq!(
        w.counts,
        giamsat_ingest::IngestCounts {
            accepted: 90,
            duplicates: 1,
            quarantined: 3
        },
        "94 lines: one duplicate (A01), three malformed"
    );
    let r = health::run(&w.ctx, &health::Params::new(at(AS_OF)))
        .await
        .expect("health");
    assert_eq!(r.unattributed_quarantined, 1);
    // (source, events, dossiers, first, last, quarantined, lag_now, stale, future)
    let got: Vec<_> = r
        .sources
        .iter()
        .map(|s| {
            (
                s.source.as_str(),
                s.events,
                s.dossiers,
                s.first_event_at.as_deref().unwrap_or(""),
                s.last_event_at.as_deref().unwrap_or(""),
                s.quarantined,
                s.lag_now_seconds,
                s.stale,
                s.future_events,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "bo-congan",
                1,
                1,
                "2026-04-13T08:00:00+07:00",
                "2026-04-13T08:00:00+07:00",
                0,
                Some(975_600.0),
                true,
                1
            ),
            (
                "bo-tuphap",
                9,
                5,
                "2026-04-07T14:00:00+07:00",
                "2026-04-23T15:00:00+07:00",
                1,
                Some(86_400.0),
                false,
                0
            ),
            (
                "dvcqg",
                24,
                14,
                "2026-04-06T09:00:00+07:00",
                "2026-04-24T08:00:00+07:00",
                0,
                Some(25_200.0),
                false,
                0
            ),
            (
                "hp-motcua",
                54,
                27,
                "2026-04-03T08:00:00+07:00",
                "2026-04-24T09:00:00+07:00",
                1,
                Some(21_600.0),
                false,
                1
            ),
        ]
    );
    let s = |name: &str| r.sources.iter().find(|s| s.source == name).expect("source");
    assert!((s("bo-tuphap").error_rate - 1.0 / 10.0).abs() < 1e-12);
    assert!((s("hp-motcua").error_rate - 1.0 / 55.0).abs() < 1e-12);
    assert_eq!(s("dvcqg").error_rate, 0.0);

    // all events were ingested in one commit at an instant between t0 and t1, so
    // lag = ingested − at, and max lag = ingested − first event
    let t = s("bo-tuphap");
    let ingested = at(t.last_ingested_at.as_deref().expect("ingested"));
    assert!(t0 <= ingested && ingested <= t1);
    let first = at(t.first_event_at.as_deref().expect("first"));
    let max = t.lag_max_seconds.expect("max");
    assert!(close(Some(max), (ingested - first) as f64 / 1e6));
    // T's 9 events, hours after its first (7/4 14:00): 0, 19, 20, 43, 43, 44, 68, 306,
    // 385. Lags ascending are max − (385, 306, 68, 44, 43, 43, 20, 19, 0) h. Exact
    // percentiles interpolate at rank (n − 1)·p: p50 → rank 4 → max − 43 h; p90 → rank
    // 7.2 → (max − 19 h) + 0.2 × 19 h = max − 15.2 h.
    assert!(close(t.lag_p50_seconds, max - 43.0 * 3600.0), "{t:?}");
    assert!(close(t.lag_p90_seconds, max - 15.2 * 3600.0), "{t:?}");
    // a single event: every percentile is that event's lag
    let c = s("bo-congan");
    assert_eq!(c.lag_p50_seconds, c.lag_max_seconds);
    assert_eq!(c.lag_p90_seconds, c.lag_max_seconds);

    // with a threshold of 23.5 h, T (exactly 24 h) is stale as well
    let r = health::run(
        &w.ctx,
        &health::Params {
            as_of: at(AS_OF),
            stale_after_hours: 23.5,
        },
    )
    .await
    .expect("health");
    let stale: Vec<_> = r
        .sources
        .iter()
        .filter(|s| s.stale)
        .map(|s| s.source.as_str())
        .collect();
    assert_eq!(stale, ["bo-congan", "bo-tuphap"]);

    assert!(matches!(
        health::run(
            &w.ctx,
            &health::Params {
                as_of: at(AS_OF),
                stale_after_hours: -1.0
            }
        )
        .await,
        Err(QueryError::BadInput(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recon_fixture_data_quality() {
    use quality::Issue::*;
    let w = load().await;
    let r = quality::run(&w.ctx, &quality::Params::default())
        .await
        .expect("quality");
    let counts: Vec<_> = r.issues.iter().map(|i| (i.issue, i.count)).collect();
    assert_eq!(
        counts,
        [
            (NoReceived, 1),
            (Rejected, 1),
            (NoDeadline, 1),
            (NoProcedure, 1),
            (UnknownProcedure, 1),
            (UnknownCommune, 2),
            (EndedBeforeReceived, 1),
            (OverdueReset, 1),
            (ResolvedOpenSupplement, 1),
        ]
    );
    let items: Vec<_> = r
        .items
        .iter()
        .map(|i| {
            (
                i.issue,
                i.dossier_id.as_str(),
                i.procedure_code.as_deref(),
                i.commune_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (NoReceived, "Q01", Some("1.000001"), Some("11311")),
            (Rejected, "Q02", Some("1.000001"), Some("11311")),
            (NoDeadline, "Q03", Some("9.999999"), Some("11224")),
            (NoProcedure, "Q04", None, Some("11311")),
            (UnknownProcedure, "Q03", Some("9.999999"), Some("11224")),
            (UnknownCommune, "Q05", Some("1.000001"), Some("99999")),
            (UnknownCommune, "Q06", Some("1.000001"), None),
            (EndedBeforeReceived, "Q07", Some("1.000001"), Some("11311")),
            (OverdueReset, "Q08", Some("1.000001"), Some("11311")),
            (
                ResolvedOpenSupplement,
                "Q09",
                Some("1.000002"),
                Some("11311")
            ),
        ]
    );
    assert!(r.items.iter().all(|i| i.sources == "hp-motcua"));
    assert_eq!(r.issues[0].label, "Không có sự kiện tiếp nhận");

    // one dossier per issue listed, counts unchanged
    let r = quality::run(
        &w.ctx,
        &quality::Params {
            limit: 1,
            ..quality::Params::default()
        },
    )
    .await
    .expect("quality");
    assert_eq!(r.issues[5].count, 2);
    assert_eq!(r.items.len(), 9);
    assert_eq!(r.items[5].dossier_id, "Q05");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recon_fixture_commune_scope_sees_only_its_dossiers() {
    use recon::Kind::*;
    let w = load().await;
    let ctx = commune_session(&w, "11224").await;

    // alerts: A05 (T) and A11 (P) only
    let r = alerts::run(&ctx, &w.wh.calendar, &alerts::Params::new(at(AS_OF)))
        .await
        .expect("alerts");
    assert_eq!(
        alert_lines(&r),
        vec![
            (
                "A05",
                alerts::Status::Overdue,
                true,
                false,
                Some(-13.0),
                Some("2026-04-22T17:00:00+07:00")
            ),
            (
                "A11",
                alerts::Status::DueSoon,
                false,
                false,
                Some(3.0),
                Some("2026-04-28T08:30:00+07:00")
            ),
        ]
    );

    // reconciliation: R07, R08, R10, R11, R12 only (no window needed: A05 → missing on
    // portal, A11 → missing in origin, Q03 → missing on portal are in 11224 too)
    let r = recon::run(
        &ctx,
        &recon::Params {
            from: Some(at("2026-04-06T00:00:00+07:00")),
            to: Some(at("2026-04-11T00:00:00+07:00")),
            ..recon::Params::default()
        },
    )
    .await
    .expect("recon");
    assert_eq!(
        recon_lines(&r),
        expect_recon(&[
            (LostState, "R11", "bo-tuphap", Some("dvcqg")),
            (LostState, "R12", "bo-tuphap", Some("dvcqg")),
            (LostState, "R12", "bo-tuphap", Some("hp-motcua")),
            (StatusMismatch, "R10", "bo-tuphap", Some("dvcqg")),
            (EndTimeMismatch, "R10", "bo-tuphap", Some("dvcqg")),
            (Duplicate, "R07", "hp-motcua", None),
            (Duplicate, "R08", "bo-tuphap", Some("hp-motcua")),
        ])
    );
    let r = recon::run(&ctx, &recon::Params::default())
        .await
        .expect("recon");
    assert_eq!(totals(&r), [(2, 2), (1, 1), (3, 2), (1, 1), (1, 1), (2, 2)]);

    // quality: Q03 only
    let r = quality::run(&ctx, &quality::Params::default())
        .await
        .expect("quality");
    let items: Vec<_> = r
        .items
        .iter()
        .map(|i| (i.issue, i.dossier_id.as_str()))
        .collect();
    assert_eq!(
        items,
        [
            (quality::Issue::NoDeadline, "Q03"),
            (quality::Issue::UnknownProcedure, "Q03")
        ]
    );
    assert_eq!(r.issues.iter().map(|i| i.count).sum::<i64>(), 2);

    // health: only the scope's events, no quarantine
    let r = health::run(&ctx, &health::Params::new(at(AS_OF)))
        .await
        .expect("health");
    let got: Vec<_> = r
        .sources
        .iter()
        .map(|s| (s.source.as_str(), s.events, s.dossiers, s.quarantined))
        .collect();
    assert_eq!(
        got,
        [
            ("bo-tuphap", 9, 5, 0),
            ("dvcqg", 11, 6, 0),
            ("hp-motcua", 8, 4, 0)
        ]
    );
    assert_eq!(r.unattributed_quarantined, 0);
}
