//! "Explain every number": `GET /api/v1/dossiers/{id}` and `giamsat explain`, checked
//! against explanations of golden dossiers worked out by hand.
//!
//! Calendar used below (warehouse/data/holidays_vn.csv, default config): office hours
//! 07:30–11:30 and 13:30–17:00, so one working day = 7.5 h = 27 000 s; Thu 1/1 and Fri
//! 2/1/2026 off, Sat 10/1/2026 a make-up working day ("Ngày làm việc bù (cho ngày nghỉ
//! 02/01/2026)"), Tết Mon 16/2 – Fri 20/2/2026 off. Procedures (fixtures/golden/
//! procedures.csv): 1.000001 (P1) = 1 working day, 1.000002 (P2) = 3, 1.000003 (P3) = 10.
//! A duration in a reason is "X ngày Y giờ Z phút" with a "ngày" of 7.5 working hours and
//! zero parts left out.
//!
//! Every expected value was computed by hand from fixtures/golden/events.ndjson; none was
//! copied from the program's output.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{self, cli, request, start_server, BIN};

/// A golden warehouse in a temporary directory, with an admin token and a viewer token
/// scoped to commune 11311 (Hồng Bàng: G01–G16; everything else is 11224, Khúc Thừa Dụ).
struct Golden {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    admin: String,
    viewer_11311: String,
}

fn golden() -> Golden {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let g = common::root().join("fixtures/golden");
    common::ingest_all(&data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
    let admin = cli(&data, &["token", "add", "--role", "admin"]);
    let viewer_11311 = cli(
        &data,
        &["token", "add", "--role", "viewer", "--commune", "11311"],
    );
    Golden {
        _tmp: tmp,
        data,
        admin,
        viewer_11311,
    }
}

fn get(port: u16, token: &str, path: &str) -> Value {
    let r = request(port, "GET", path, Some(token), None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "GET {path}: content type {:?}",
        r.header("content-type")
    );
    r.json()
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {v}"))
}

/// `giamsat explain ARGS… --format json`, parsed.
fn cli_json(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = cli(data, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}): {out}"))
}

type Day = (&'static str, &'static str);

/// The hand-computed explanation of one ended dossier.
struct Want {
    id: &'static str,
    /// commune code, commune name, agency code
    commune: (&'static str, &'static str, &'static str),
    procedure: &'static str,
    field: &'static str,
    channel: &'static str,
    sources: &'static str,
    /// every event (source, type, at), in (at, type, source, event_id) order
    events: &'static [(&'static str, &'static str, &'static str)],
    /// the earliest `received` event: (at, source)
    received: (&'static str, &'static str),
    ended_at: &'static str,
    due_kind: &'static str,
    due_at: &'static str,
    max_working_days: Option<f64>,
    /// for a reported due: (source, type) of the (latest) event carrying it
    reported_by: Option<(&'static str, &'static str)>,
    /// computed due only: days off strictly after the received day up to the due day
    days_off: Option<&'static [Day]>,
    /// computed due only: make-up working weekend days in that range
    working_weekend_days: Option<&'static [Day]>,
    /// computed due only: closed rounds' working seconds added to the due
    supplement_working_seconds: Option<f64>,
    /// (requested_at, received_at, working seconds, wall seconds)
    supplements: &'static [(&'static str, &'static str, f64, f64)],
    judged_at: &'static str,
    class: &'static str,
    class_label: &'static str,
    reason: &'static str,
}

const SAT: &str = "Thứ bảy";
const SUN: &str = "Chủ nhật";

/// 14/2 – 22/2/2026: the weekend before Tết, Tết itself (names of the shipped holiday
/// list), the weekend after.
const TET_WEEK: &[Day] = &[
    ("2026-02-14", SAT),
    ("2026-02-15", SUN),
    ("2026-02-16", "Giao thừa Tết Nguyên Đán"),
    ("2026-02-17", "Tết Nguyên Đán"),
    ("2026-02-18", "Mùng hai Tết Nguyên Đán"),
    ("2026-02-19", "Mùng ba Tết Nguyên Đán"),
    ("2026-02-20", "Mùng bốn Tết Nguyên Đán"),
    ("2026-02-21", SAT),
    ("2026-02-22", SUN),
];

const HONG_BANG: (&str, &str, &str) = ("11311", "Phường Hồng Bàng", "31.11311");
const KHUC_THUA_DU: (&str, &str, &str) = ("11224", "Xã Khúc Thừa Dụ", "31.11224");

const WANTS: &[Want] = &[
    // G03 — Tết. P2 = 3 × 7.5 h = 22.5 h from Thu 12/2 09:00: 12/2 09:00–11:30 + 13:30–17:00
    // = 6 h; Fri 13/2 +7.5 = 13.5 h; 14/2–22/2 off (weekend, Tết 16–20/2, weekend);
    // Mon 23/2 +7.5 = 21 h; Tue 24/2 07:30 + 1.5 h → due Tue 24/2 09:00 (computed).
    // Resolved 24/2 08:30: no pause to subtract (computed due) → judged 08:30 ≤ 09:00,
    // same date → on the day.
    Want {
        id: "G03",
        commune: KHUC_THUA_DU,
        procedure: "1.000002",
        field: "HT",
        channel: "online",
        sources: "gs",
        events: &[
            ("gs", "received", "2026-02-12T09:00:00+07:00"),
            ("gs", "resolved", "2026-02-24T08:30:00+07:00"),
        ],
        received: ("2026-02-12T09:00:00+07:00", "gs"),
        ended_at: "2026-02-24T08:30:00+07:00",
        due_kind: "computed",
        due_at: "2026-02-24T09:00:00+07:00",
        max_working_days: Some(3.0),
        reported_by: None,
        days_off: Some(TET_WEEK),
        working_weekend_days: Some(&[]),
        supplement_working_seconds: Some(0.0),
        supplements: &[],
        judged_at: "2026-02-24T08:30:00+07:00",
        class: "on_day",
        class_label: "Đúng hạn",
        reason: "hoàn thành trong ngày đến hạn",
    },
    // G04 — Tết, late by the clock. P1 = 7.5 h from Fri 13/2 14:00: 13/2 14:00–17:00 = 3 h;
    // 14/2–22/2 off; Mon 23/2 07:30–11:30 = 4 h (7 h); 13:30 + 0.5 h → due Mon 23/2 14:00.
    // Resolved 23/2 15:00 = judged (computed due) > due → late by 14:00–15:00 = 1 working
    // hour.
    Want {
        id: "G04",
        commune: KHUC_THUA_DU,
        procedure: "1.000001",
        field: "CT",
        channel: "in_person",
        sources: "gs",
        events: &[
            ("gs", "received", "2026-02-13T14:00:00+07:00"),
            ("gs", "resolved", "2026-02-23T15:00:00+07:00"),
        ],
        received: ("2026-02-13T14:00:00+07:00", "gs"),
        ended_at: "2026-02-23T15:00:00+07:00",
        due_kind: "computed",
        due_at: "2026-02-23T14:00:00+07:00",
        max_working_days: Some(1.0),
        reported_by: None,
        days_off: Some(TET_WEEK),
        working_weekend_days: Some(&[]),
        supplement_working_seconds: Some(0.0),
        supplements: &[],
        judged_at: "2026-02-23T15:00:00+07:00",
        class: "late",
        class_label: "Quá hạn",
        reason: "quá hạn 1 giờ làm việc",
    },
    // G05 — make-up Saturday. P1 = 7.5 h from Fri 9/1 15:00: 9/1 15:00–17:00 = 2 h;
    // Sat 10/1 is worked (make-up for Fri 2/1): 07:30–11:30 = 4 h (6 h), 13:30 + 1.5 h →
    // due Sat 10/1 15:00. No day off between 9/1 and 10/1; 10/1 is a working weekend day.
    // Resolved Mon 12/1 08:00 = judged > due → late by Sat 15:00–17:00 (2 h) + Sun off +
    // Mon 07:30–08:00 (0.5 h) = 2 h 30 min of working time.
    Want {
        id: "G05",
        commune: HONG_BANG,
        procedure: "1.000001",
        field: "CT",
        channel: "in_person",
        sources: "gs",
        events: &[
            ("gs", "received", "2026-01-09T15:00:00+07:00"),
            ("gs", "resolved", "2026-01-12T08:00:00+07:00"),
        ],
        received: ("2026-01-09T15:00:00+07:00", "gs"),
        ended_at: "2026-01-12T08:00:00+07:00",
        due_kind: "computed",
        due_at: "2026-01-10T15:00:00+07:00",
        max_working_days: Some(1.0),
        reported_by: None,
        days_off: Some(&[]),
        working_weekend_days: Some(&[(
            "2026-01-10",
            "Ngày làm việc bù (cho ngày nghỉ 02/01/2026)",
        )]),
        supplement_working_seconds: Some(0.0),
        supplements: &[],
        judged_at: "2026-01-12T08:00:00+07:00",
        class: "late",
        class_label: "Quá hạn",
        reason: "quá hạn 2 giờ 30 phút làm việc",
    },
    // G08 — computed due extended by a closed supplement round. Round Tue 13/1 09:00 → Thu
    // 15/1 10:00: 13/1 09:00–11:30 + 13:30–17:00 = 6 h, 14/1 7.5 h, 15/1 07:30–10:00 = 2.5 h
    // → 16 h = 57 600 working s; wall 49 h = 176 400 s. Due = 22.5 + 16 = 38.5 working h
    // from Mon 12/1 08:00: 12/1 7 h, 13/1 14.5, 14/1 22, 15/1 29.5, 16/1 37, 17–18/1 weekend,
    // Mon 19/1 07:30 + 1.5 h → 19/1 09:00. Resolved 19/1 08:45 = judged (computed due, no
    // subtraction) ≤ due, same date → on the day.
    Want {
        id: "G08",
        commune: HONG_BANG,
        procedure: "1.000002",
        field: "HT",
        channel: "online",
        sources: "gs",
        events: &[
            ("gs", "received", "2026-01-12T08:00:00+07:00"),
            ("gs", "supplement_requested", "2026-01-13T09:00:00+07:00"),
            ("gs", "supplement_received", "2026-01-15T10:00:00+07:00"),
            ("gs", "resolved", "2026-01-19T08:45:00+07:00"),
        ],
        received: ("2026-01-12T08:00:00+07:00", "gs"),
        ended_at: "2026-01-19T08:45:00+07:00",
        due_kind: "computed",
        due_at: "2026-01-19T09:00:00+07:00",
        max_working_days: Some(3.0),
        reported_by: None,
        days_off: Some(&[("2026-01-17", SAT), ("2026-01-18", SUN)]),
        working_weekend_days: Some(&[]),
        supplement_working_seconds: Some(57_600.0),
        supplements: &[(
            "2026-01-13T09:00:00+07:00",
            "2026-01-15T10:00:00+07:00",
            57_600.0,
            176_400.0,
        )],
        judged_at: "2026-01-19T08:45:00+07:00",
        class: "on_day",
        class_label: "Đúng hạn",
        reason: "hoàn thành trong ngày đến hạn",
    },
    // G10 — two supplement rounds: more than one request → late whatever the clock says
    // (resolved 12/1, due 20/1). Rounds Tue 6/1 09:00 → Wed 7/1 09:00 and Thu 8/1 09:00 →
    // Fri 9/1 09:00: each 6 h + 1.5 h = 7.5 working h = 27 000 s, 24 h = 86 400 s wall.
    // Due reported on the received event (20/1 17:00). Judged = end − closed wall time
    // (reported due): Mon 12/1 10:00 − 48 h = Sat 10/1 10:00.
    Want {
        id: "G10",
        commune: HONG_BANG,
        procedure: "1.000003",
        field: "DD",
        channel: "online",
        sources: "gs",
        events: &[
            ("gs", "received", "2026-01-05T09:00:00+07:00"),
            ("gs", "supplement_requested", "2026-01-06T09:00:00+07:00"),
            ("gs", "supplement_received", "2026-01-07T09:00:00+07:00"),
            ("gs", "supplement_requested", "2026-01-08T09:00:00+07:00"),
            ("gs", "supplement_received", "2026-01-09T09:00:00+07:00"),
            ("gs", "resolved", "2026-01-12T10:00:00+07:00"),
        ],
        received: ("2026-01-05T09:00:00+07:00", "gs"),
        ended_at: "2026-01-12T10:00:00+07:00",
        due_kind: "reported",
        due_at: "2026-01-20T17:00:00+07:00",
        max_working_days: Some(10.0),
        reported_by: Some(("gs", "received")),
        days_off: None,
        working_weekend_days: None,
        supplement_working_seconds: None,
        supplements: &[
            (
                "2026-01-06T09:00:00+07:00",
                "2026-01-07T09:00:00+07:00",
                27_000.0,
                86_400.0,
            ),
            (
                "2026-01-08T09:00:00+07:00",
                "2026-01-09T09:00:00+07:00",
                27_000.0,
                86_400.0,
            ),
        ],
        judged_at: "2026-01-10T10:00:00+07:00",
        class: "late",
        class_label: "Quá hạn",
        reason: "yêu cầu bổ sung 2 lần",
    },
    // G06 — reported due (on the received event, 7/1 17:00), no round: judged = resolved
    // = 7/1 17:00, not after the due, same date → on the day.
    Want {
        id: "G06",
        commune: HONG_BANG,
        procedure: "1.000002",
        field: "HT",
        channel: "in_person",
        sources: "gs",
        events: &[
            ("gs", "received", "2026-01-05T08:00:00+07:00"),
            ("gs", "resolved", "2026-01-07T17:00:00+07:00"),
        ],
        received: ("2026-01-05T08:00:00+07:00", "gs"),
        ended_at: "2026-01-07T17:00:00+07:00",
        due_kind: "reported",
        due_at: "2026-01-07T17:00:00+07:00",
        max_working_days: Some(3.0),
        reported_by: Some(("gs", "received")),
        days_off: None,
        working_weekend_days: None,
        supplement_working_seconds: None,
        supplements: &[],
        judged_at: "2026-01-07T17:00:00+07:00",
        class: "on_day",
        class_label: "Đúng hạn",
        reason: "hoàn thành trong ngày đến hạn",
    },
    // G22 — computed due, early. P3 = 75 h from Fri 30/1 14:00: 30/1 3 h; 31/1–1/2 weekend;
    // 2–6/2 +37.5 = 40.5; 7–8/2 weekend; 9/2 48, 10/2 55.5, 11/2 63, 12/2 70.5; Fri 13/2
    // 07:30–11:30 (74.5) + 0.5 h → 13/2 14:00. Resolved Tue 10/2 10:00 = judged, date 10/2
    // < 13/2 → early by 10/2 10:00–17:00 (5 h) + 11/2, 12/2 (15 h) + 13/2 07:30–14:00 (4.5 h)
    // = 24.5 h = 3 × 7.5 h + 2 h.
    Want {
        id: "G22",
        commune: KHUC_THUA_DU,
        procedure: "1.000003",
        field: "DD",
        channel: "online",
        sources: "gs",
        events: &[
            ("gs", "received", "2026-01-30T14:00:00+07:00"),
            ("gs", "resolved", "2026-02-10T10:00:00+07:00"),
        ],
        received: ("2026-01-30T14:00:00+07:00", "gs"),
        ended_at: "2026-02-10T10:00:00+07:00",
        due_kind: "computed",
        due_at: "2026-02-13T14:00:00+07:00",
        max_working_days: Some(10.0),
        reported_by: None,
        days_off: Some(&[
            ("2026-01-31", SAT),
            ("2026-02-01", SUN),
            ("2026-02-07", SAT),
            ("2026-02-08", SUN),
        ]),
        working_weekend_days: Some(&[]),
        supplement_working_seconds: Some(0.0),
        supplements: &[],
        judged_at: "2026-02-10T10:00:00+07:00",
        class: "early",
        class_label: "Trước hạn",
        reason: "trước hạn 3 ngày 2 giờ làm việc",
    },
    // G27 — two source systems: `gs` received it Mon 16/3 08:00 (the earliest, so the
    // received instant), `dvcqg` at 09:00 with the due 17/3 08:00 (reported by dvcqg).
    // Resolved 17/3 08:30 = judged (no round) > due → late by 08:00–08:30 = 30 working min.
    Want {
        id: "G27",
        commune: KHUC_THUA_DU,
        procedure: "1.000001",
        field: "CT",
        channel: "online",
        sources: "dvcqg,gs",
        events: &[
            ("gs", "received", "2026-03-16T08:00:00+07:00"),
            ("dvcqg", "received", "2026-03-16T09:00:00+07:00"),
            ("gs", "resolved", "2026-03-17T08:30:00+07:00"),
        ],
        received: ("2026-03-16T08:00:00+07:00", "gs"),
        ended_at: "2026-03-17T08:30:00+07:00",
        due_kind: "reported",
        due_at: "2026-03-17T08:00:00+07:00",
        max_working_days: Some(1.0),
        reported_by: Some(("dvcqg", "received")),
        days_off: None,
        working_weekend_days: None,
        supplement_working_seconds: None,
        supplements: &[],
        judged_at: "2026-03-17T08:30:00+07:00",
        class: "late",
        class_label: "Quá hạn",
        reason: "quá hạn 30 phút làm việc",
    },
    // G34 — two systems report the same round (Tue 17/3 09:00 → Wed 18/3 09:00): one
    // round, not two (17/3 09:00–17:00 = 6 h + 18/3 07:30–09:00 = 1.5 h = 27 000 s; wall
    // 86 400 s). Reported due Thu 19/3 08:00; judged = resolved 19/3 10:00 − 24 h = 18/3
    // 10:00; date 18/3 < 19/3 → early by 18/3 10:00–17:00 (5 h) + 19/3 07:30–08:00 (0.5 h).
    Want {
        id: "G34",
        commune: KHUC_THUA_DU,
        procedure: "1.000002",
        field: "HT",
        channel: "online",
        sources: "dvcqg,gs",
        events: &[
            ("gs", "received", "2026-03-16T08:00:00+07:00"),
            ("dvcqg", "supplement_requested", "2026-03-17T09:00:00+07:00"),
            ("gs", "supplement_requested", "2026-03-17T09:00:00+07:00"),
            ("dvcqg", "supplement_received", "2026-03-18T09:00:00+07:00"),
            ("gs", "supplement_received", "2026-03-18T09:00:00+07:00"),
            ("gs", "resolved", "2026-03-19T10:00:00+07:00"),
        ],
        received: ("2026-03-16T08:00:00+07:00", "gs"),
        ended_at: "2026-03-19T10:00:00+07:00",
        due_kind: "reported",
        due_at: "2026-03-19T08:00:00+07:00",
        max_working_days: Some(3.0),
        reported_by: Some(("gs", "received")),
        days_off: None,
        working_weekend_days: None,
        supplement_working_seconds: None,
        supplements: &[(
            "2026-03-17T09:00:00+07:00",
            "2026-03-18T09:00:00+07:00",
            27_000.0,
            86_400.0,
        )],
        judged_at: "2026-03-18T10:00:00+07:00",
        class: "early",
        class_label: "Trước hạn",
        reason: "trước hạn 5 giờ 30 phút làm việc",
    },
];

fn days(v: &Value, what: &str) -> Vec<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what}: not an array: {v}"))
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap_or_default().to_string(),
                d["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn owned(d: &[Day]) -> Vec<(String, String)> {
    d.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The event of the timeline with this source and type (the first one).
fn event<'a>(b: &'a Value, source: &str, kind: &str) -> &'a Value {
    b["events"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["source"] == source && e["type"] == kind)
        })
        .unwrap_or_else(|| panic!("no {source} {kind} event in {}", b["events"]))
}

fn check(b: &Value, w: &Want) {
    let id = w.id;
    assert_eq!(b["dossier_id"], id);
    assert_eq!(b["as_of"], Value::Null, "{id}: as_of");

    // the summary: the dossier's row of the lists
    let s = &b["summary"];
    for (k, v) in [
        ("dossier_id", id),
        ("procedure_code", w.procedure),
        ("field_code", w.field),
        ("province_code", "31"),
        ("commune_code", w.commune.0),
        ("commune_name", w.commune.1),
        ("agency_code", w.commune.2),
        ("channel", w.channel),
        ("sources", w.sources),
        ("received_at", w.received.0),
        ("ended_at", w.ended_at),
        ("due_at", w.due_at),
        ("class", w.class),
        ("class_label", w.class_label),
        ("end_type", "resolved"),
        ("due_kind", w.due_kind),
    ] {
        assert_eq!(s[k], v, "{id}: summary.{k} in {s}");
    }
    assert_eq!(s["counted"], true, "{id}: summary.counted");

    // the timeline: every event of every source, in (at, type, source, event_id) order
    let events: Vec<(String, String, String)> = b["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{id}: events"))
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap_or_default().to_string(),
                e["type"].as_str().unwrap_or_default().to_string(),
                e["at"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want_events: Vec<(String, String, String)> = w
        .events
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(events, want_events, "{id}: events");
    for e in b["events"].as_array().into_iter().flatten() {
        assert!(
            e["event_id"].as_str().is_some_and(|x| !x.is_empty()),
            "{id}: event without id: {e}"
        );
    }

    // received: the earliest received event
    assert_eq!(b["received"]["at"], w.received.0, "{id}: received.at");
    assert_eq!(
        b["received"]["source"], w.received.1,
        "{id}: received.source"
    );
    assert_eq!(
        b["received"]["event_id"],
        event(b, w.received.1, "received")["event_id"],
        "{id}: received.event_id"
    );

    // the due time and how it came about
    let due = &b["due"];
    assert_eq!(due["kind"], w.due_kind, "{id}: due.kind");
    assert_eq!(due["at"], w.due_at, "{id}: due.at");
    assert_eq!(
        due["max_working_days"].as_f64(),
        w.max_working_days,
        "{id}: due.max_working_days"
    );
    assert_eq!(
        num(&due["working_hours_per_day"], "working_hours_per_day"),
        7.5,
        "{id}: 07:30–11:30 + 13:30–17:00"
    );
    assert!(
        due["text"].as_str().is_some_and(|t| !t.trim().is_empty()),
        "{id}: due.text"
    );
    match w.reported_by {
        Some((source, kind)) => {
            let e = event(b, source, kind);
            assert_eq!(e["due_at"], w.due_at, "{id}: the reporting event's due_at");
            assert_eq!(due["reported_by"]["source"], source, "{id}: reported_by");
            assert_eq!(
                due["reported_by"]["event_id"], e["event_id"],
                "{id}: reported_by.event_id"
            );
        }
        None => assert_eq!(due["reported_by"], Value::Null, "{id}: reported_by"),
    }
    if let Some(d) = w.days_off {
        assert_eq!(
            days(&due["days_off"], "days_off"),
            owned(d),
            "{id}: days_off"
        );
    }
    if let Some(d) = w.working_weekend_days {
        assert_eq!(
            days(&due["working_weekend_days"], "working_weekend_days"),
            owned(d),
            "{id}: working_weekend_days"
        );
    }
    if let Some(x) = w.supplement_working_seconds {
        assert_eq!(
            num(
                &due["supplement_working_seconds"],
                "supplement_working_seconds"
            ),
            x,
            "{id}: supplement_working_seconds"
        );
    }

    // supplement rounds
    let rounds = b["supplements"]
        .as_array()
        .unwrap_or_else(|| panic!("{id}: supplements"));
    assert_eq!(rounds.len(), w.supplements.len(), "{id}: rounds {rounds:?}");
    for (i, (r, (req, rcv, work, wall))) in rounds.iter().zip(w.supplements).enumerate() {
        assert_eq!(num(&r["round"], "round"), (i + 1) as f64, "{id}: round");
        assert_eq!(r["requested_at"], *req, "{id}: round {} requested", i + 1);
        assert_eq!(r["received_at"], *rcv, "{id}: round {} received", i + 1);
        assert_eq!(
            num(&r["working_seconds"], "working_seconds"),
            *work,
            "{id}: round {} working seconds",
            i + 1
        );
        assert_eq!(
            num(&r["wall_seconds"], "wall_seconds"),
            *wall,
            "{id}: round {} wall seconds",
            i + 1
        );
    }

    // the class, judged at the dossier's end
    assert_eq!(b["judged_at"], w.judged_at, "{id}: judged_at");
    let c = &b["class"];
    assert_eq!(c["code"], w.class, "{id}: class.code");
    assert_eq!(c["label"], w.class_label, "{id}: class.label");
    assert_eq!(c["reason"], w.reason, "{id}: class.reason");
    assert_eq!(c["evaluated_at"], w.ended_at, "{id}: evaluated at its end");
    assert!(b["discrepancies"].is_array(), "{id}: discrepancies");
    assert!(b["quality"].is_array(), "{id}: quality");
}

#[test]
fn golden_dossiers_are_explained_as_worked_out_by_hand() {
    let g = golden();
    let (_server, port) = start_server(&g.data, &[]);
    for w in WANTS {
        let path = format!("/api/v1/dossiers/{}", w.id);
        let body = get(port, &g.admin, &path);
        check(&body, w);
        // `giamsat explain ID --format json` is exactly the HTTP body
        assert_eq!(cli_json(&g.data, &[w.id]), body, "{}: CLI = HTTP", w.id);
    }
}

/// The class of an in-progress dossier judged at the end of a given day (`?as_of=`):
/// (id, as_of, class, label, reason, due kind, due at, judged_at).
type AsOfCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const AS_OF: &[AsOfCase] = &[
    // G18: received Mon 26/1 08:00 with due Wed 28/1 17:00 (reported), never ended.
    // End of 27/1 = Wed 28/1 00:00: 28/1 07:30–17:00 = 7.5 h = one working day left.
    (
        "G18",
        "2026-01-27",
        "in_time",
        "Trong hạn",
        "còn 1 ngày làm việc đến hạn",
        "reported",
        "2026-01-28T17:00:00+07:00",
        "2026-01-28T00:00:00+07:00",
    ),
    // End of Mon 2/2 = Tue 3/2 00:00 > due: overdue by Thu 29/1, Fri 30/1 and Mon 2/2 =
    // 3 full working days (28/1 after 17:00 and the weekend add nothing).
    (
        "G18",
        "2026-02-02",
        "overdue",
        "Quá hạn",
        "quá hạn 3 ngày làm việc",
        "reported",
        "2026-01-28T17:00:00+07:00",
        "2026-02-03T00:00:00+07:00",
    ),
    // G17: received Thu 29/1 08:00 (P2); its due 30/1 08:00 is first reported by an event
    // of Tue 3/2. End of 31/1 (Sun 1/2 00:00): only the received event → computed due:
    // 29/1 7 h, 30/1 14.5, Mon 2/2 22, Tue 3/2 07:30 + 0.5 h → 3/2 08:00. Left: Mon 2/2
    // 7.5 h + 3/2 0.5 h = 8 h = 1 day 30 min → in time.
    (
        "G17",
        "2026-01-31",
        "in_time",
        "Trong hạn",
        "còn 1 ngày 30 phút làm việc đến hạn",
        "computed",
        "2026-02-03T08:00:00+07:00",
        "2026-02-01T00:00:00+07:00",
    ),
    // End of 28/2 (Sun 1/3 00:00): due reported 30/1 08:00 → overdue by 30/1 08:00–17:00
    // (7 h) + 2–6/2, 9–13/2, 23–27/2 (15 days; Tết 16–20/2 off) = 15 days 7 h.
    (
        "G17",
        "2026-02-28",
        "overdue",
        "Quá hạn",
        "quá hạn 15 ngày 7 giờ làm việc",
        "reported",
        "2026-01-30T08:00:00+07:00",
        "2026-03-01T00:00:00+07:00",
    ),
    // G22 (ended 10/2) as of the end of January (Sun 1/2 00:00) is still in progress:
    // computed due Fri 13/2 14:00 (P3, see above); left 2–6/2 (37.5 h) + 9–12/2 (30 h) +
    // 13/2 07:30–14:00 (4.5 h) = 72 h = 9 × 7.5 h + 4.5 h → in time.
    (
        "G22",
        "2026-01-31",
        "in_time",
        "Trong hạn",
        "còn 9 ngày 4 giờ 30 phút làm việc đến hạn",
        "computed",
        "2026-02-13T14:00:00+07:00",
        "2026-02-01T00:00:00+07:00",
    ),
    // G19: received Mon 23/2, due Thu 26/2 08:00 (reported), one open round requested
    // Wed 25/2 10:00 → judged at the request: 25/2 10:00–17:00 (5 h) + 26/2 07:30–08:00
    // (0.5 h) left → in time, whatever the day of the evaluation.
    (
        "G19",
        "2026-02-28",
        "in_time",
        "Trong hạn",
        "còn 5 giờ 30 phút làm việc đến hạn",
        "reported",
        "2026-02-26T08:00:00+07:00",
        "2026-02-25T10:00:00+07:00",
    ),
];

#[test]
fn as_of_judges_an_in_progress_dossier_at_the_end_of_that_day() {
    let g = golden();
    let (_server, port) = start_server(&g.data, &[]);
    // every case is checked, then every difference reported at once (at the end)
    let mut wrong: Vec<String> = Vec::new();
    for &(id, as_of, class, label, reason, due_kind, due_at, judged) in AS_OF {
        let path = format!("/api/v1/dossiers/{id}?as_of={as_of}");
        let b = get(port, &g.admin, &path);
        // evaluated at the end of the local day, i.e. the next local midnight
        let next = chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d").expect("date")
            + chrono::Days::new(1);
        let evaluated = format!("{next}T00:00:00+07:00");
        for (what, got, want) in [
            ("as_of", &b["as_of"], as_of),
            ("class.code", &b["class"]["code"], class),
            ("class.label", &b["class"]["label"], label),
            ("class.reason", &b["class"]["reason"], reason),
            (
                "class.evaluated_at",
                &b["class"]["evaluated_at"],
                evaluated.as_str(),
            ),
            ("judged_at", &b["judged_at"], judged),
            ("summary.class", &b["summary"]["class"], class),
            ("summary.class_label", &b["summary"]["class_label"], label),
            ("due.kind", &b["due"]["kind"], due_kind),
            ("due.at", &b["due"]["at"], due_at),
            ("summary.due_kind", &b["summary"]["due_kind"], due_kind),
            ("summary.due_at", &b["summary"]["due_at"], due_at),
        ] {
            if got != want {
                wrong.push(format!(
                    "{id} as of {as_of}: {what} = {got}, expected {want:?}"
                ));
            }
        }
        assert_eq!(
            cli_json(&g.data, &[id, "--as-of", as_of]),
            b,
            "{id} as of {as_of}: CLI = HTTP"
        );
    }
    // G19's open round: requested, not received, no length yet
    let b = get(port, &g.admin, "/api/v1/dossiers/G19?as_of=2026-02-28");
    let rounds = b["supplements"].as_array().expect("supplements");
    assert_eq!(rounds.len(), 1, "{rounds:?}");
    assert_eq!(rounds[0]["requested_at"], "2026-02-25T10:00:00+07:00");
    assert_eq!(rounds[0]["received_at"], Value::Null);
    assert_eq!(rounds[0]["working_seconds"], Value::Null);

    // without as_of G17 is judged at its end, Tue 3/3 10:00, against the reported due
    // 30/1 08:00: 30/1 7 h + 15 February days (to 1/3 00:00) + Mon 2/3 7.5 h + 3/3
    // 07:30–10:00 2.5 h = 129.5 h = 17 days (127.5 h) 2 h late.
    let b = get(port, &g.admin, "/api/v1/dossiers/G17");
    assert_eq!(b["as_of"], Value::Null);
    assert_eq!(b["class"]["code"], "late");
    assert_eq!(b["class"]["reason"], "quá hạn 17 ngày 2 giờ làm việc");
    assert_eq!(b["class"]["evaluated_at"], "2026-03-03T10:00:00+07:00");
    assert_eq!(b["judged_at"], "2026-03-03T10:00:00+07:00");
    assert_eq!(b["due"]["kind"], "reported");
    assert_eq!(b["due"]["at"], "2026-01-30T08:00:00+07:00");
    assert_eq!(
        b["due"]["reported_by"]["event_id"],
        event(&b, "gs", "processing")["event_id"],
        "G17's due comes from its processing event of 3/2"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unknown_and_out_of_scope_dossiers_are_the_same_404() {
    let g = golden();
    let (_server, port) = start_server(&g.data, &[]);

    // unknown: 404 {"error": …} over HTTP, exit 2 with one line from the CLI
    let r = request(port, "GET", "/api/v1/dossiers/G98", Some(&g.admin), None);
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        r.text()
    );
    let out = std::process::Command::new(BIN)
        .arg("--data")
        .arg(&g.data)
        .args(["explain", "G98", "--format", "json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "explain G98");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(said.trim().lines().count(), 1, "one line: {said:?}");

    // a viewer of commune 11311 (Hồng Bàng): its own dossier G05 is there …
    let own = get(port, &g.viewer_11311, "/api/v1/dossiers/G05");
    assert_eq!(own["dossier_id"], "G05");
    assert_eq!(own["summary"]["commune_code"], "11311");
    // … G27 of commune 11224 does not exist for it: the same 404 as an unknown id (the
    // message may quote the id asked for, nothing else)
    let other = request(
        port,
        "GET",
        "/api/v1/dossiers/G27",
        Some(&g.viewer_11311),
        None,
    );
    let none = request(
        port,
        "GET",
        "/api/v1/dossiers/G98",
        Some(&g.viewer_11311),
        None,
    );
    assert_eq!(other.status, 404, "{}", other.text());
    assert_eq!(none.status, 404, "{}", none.text());
    assert_eq!(
        other.text().replace("G27", "ID"),
        none.text().replace("G98", "ID"),
        "out of scope and unknown must not be told apart"
    );
    assert_eq!(
        other.header("content-type"),
        none.header("content-type"),
        "same content type"
    );
    // with as_of too
    let other = request(
        port,
        "GET",
        "/api/v1/dossiers/G27?as_of=2026-03-31",
        Some(&g.viewer_11311),
        None,
    );
    assert_eq!(other.status, 404, "{}", other.text());
    // and the admin sees G27
    assert_eq!(
        get(port, &g.admin, "/api/v1/dossiers/G27")["summary"]["commune_code"],
        "11224"
    );
}
