//! Decision 766 index and on-time rate (issue #5).
//!
//! `fixtures/index766/`: five catalog procedures and ten dossiers, all with reported due
//! times (no calendar arithmetic), plus four citizens' feedbacks. Period April 2026
//! (`2026-04`: 1/4–30/4, evaluated at 1/5 00:00). Worked out by hand:
//!
//! Catalog (A=1.000101 CT full_online fee+integrated, published 5/4 due 10/4, complete;
//! B=1.000102 HT partial fee+integrated, published 20/4 due 15/4, incomplete;
//! C=1.000103 DD offline fee not integrated, published 10/1/2025 due 5/1/2025, complete;
//! D=1.000104 KD full_online no fee, unpublished, due 25/4; E=1.000105 TP partial no fee,
//! published 3/5 due 10/5, complete):
//! procedures 5, full online {A,D} 2, online {A,B,D,E} 4, with fee {A,B,C} 3, integrated
//! {A,B} 2; due in April {A,B,D} 3 of which on time {A} 1; published in April {A,B} 2 on
//! time {A} 1; published by 30/4 {A,B,C} 3 complete {A,C} 2.
//!
//! Dossiers (HB = 11311, KTD = 11224):
//! K01 A HB online, early, synced; paid online, digitized, data reused, VNeID, result e-.
//! K02 A HB in person, on the day; digitized.      K03 B HB online, late; synced; digitized.
//! K04 B KTD in person, in progress in time; VNeID.  K05 C KTD in person, in progress
//! overdue (due 20/4); paid online.  K06 A KTD online, received 30/3, resolved late 2/4
//! (carried over); synced; result e-.  K07 D KTD online, early; data reused.
//! K08 rejected (never counted). K09 March only. K10 E HB online, open supplement round →
//! in time; synced.
//! April set: K01–K07, K10 = 8; on time K01 K02 K04 K07 K10 = 5; late K03 K05 K06 = 3;
//! synced K01 K03 K06 K10 = 4; new in April: 7 (all but K06); online-capable new: 6 (not
//! K05), of which online 4 (K01 K03 K07 K10); new with fee (A,B,C): K01–K05 = 5, paid
//! online K01 K05 = 2; digitized 3; data reused 2; VNeID 2; ended in April K01 K02 K03 K06
//! K07 = 5, result e- K01 K06 = 2; certified (field CT) ended K01 K02 K06 = 3, e- 2;
//! procedures with dossiers 5; online procedures with online dossiers {A,B,D,E} 4; integrated
//! procedures paid online {A} 1; procedures with VNeID dossiers {A,B} 2.
//! Feedback: PA-1 (K03, resolved 24/4 within 10 working days, satisfied), PA-2 (K05, due
//! 20/4, resolved 23/4 → late, not satisfied), PA-3 (KTD, unresolved, due 10/5 → in time,
//! not rated), PA-4 (February, not in April). Dossiers with feedback: K03, K05.
//! 6.3: (8 − 3 late − 2 with feedback) / 8 = 3/8.

use std::sync::Arc;

use serde_json::Value;

use giamsat_queries::index766::{Index, Index766Config, Params, Unit, DEFAULT_CONFIG};
use giamsat_queries::period::{Period, QuarterRule};
use giamsat_warehouse::config::Config;

use crate::common::{self, cli, request, start_server};

async fn load_fixture() -> common::Loaded {
    let f = common::root().join("fixtures/index766");
    common::load(
        Config::default(),
        &f.join("procedures.csv"),
        &[f.join("events.ndjson")],
    )
    .await
}

async fn index(
    ctx: &giamsat_queries::SessionContext,
    l: &common::Loaded,
    period: &str,
    commune: Option<&str>,
    unit: Unit,
) -> Vec<Index> {
    let cfg = Index766Config::from_toml(DEFAULT_CONFIG).expect("cfg");
    let p = Params::new(
        Period::parse(period, QuarterRule::Official).expect("period"),
        None,
        commune.map(str::to_string),
        None,
        unit,
    )
    .expect("params");
    giamsat_queries::index766::run(ctx, &l.wh.calendar, &cfg, &p)
        .await
        .expect("766")
}

/// (key, numerator, denominator, points) of every criterion.
fn criteria(ix: &Index) -> Vec<(String, i64, i64, f64)> {
    ix.groups
        .iter()
        .flat_map(|g| g.criteria.iter())
        .map(|c| (c.key.clone(), c.numerator, c.denominator, c.points))
        .collect()
}

fn check(ix: &Index, expected: &[(&str, i64, i64, f64)]) {
    let got = criteria(ix);
    assert_eq!(got.len(), expected.len());
    for ((k, n, d, p), (ek, en, ed, ep)) in got.iter().zip(expected) {
        assert_eq!((k.as_str(), *n, *d), (*ek, *en, *ed), "criterion {k}");
        assert!((p - ep).abs() < 1e-6, "criterion {k}: {p} ≠ {ep}");
    }
    let sum: f64 = expected.iter().map(|e| e.3).sum();
    assert!((ix.total - sum).abs() < 1e-6, "total {} ≠ {sum}", ix.total);
    for g in &ix.groups {
        let s: f64 = g.criteria.iter().map(|c| c.points).sum();
        assert!((g.points - s).abs() < 1e-9);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index766_golden_april_march_and_commune() {
    let l = load_fixture().await;
    let april = index(&l.ctx, &l, "2026-04", None, Unit::Total).await;
    assert_eq!(april.len(), 1);
    assert_eq!(april[0].unit, "TOTAL");
    check(
        &april[0],
        &[
            ("1.1", 1, 3, 6.0 / 3.0),
            ("1.2", 1, 2, 4.0 / 2.0),
            ("1.3", 2, 3, 2.0 * 2.0 / 3.0),
            ("1.4", 4, 8, 6.0 * 4.0 / 8.0),
            ("2.1", 5, 8, 20.0 * 5.0 / 8.0),
            // target 80%: 4 × 0.4 / 0.8
            ("3.1", 2, 5, 2.0),
            ("3.2", 4, 4, 4.0),
            // 4/6 = 66.7% above the 50% target: capped at the maximum
            ("3.3", 4, 6, 4.0),
            ("4.1", 2, 3, 2.0 * (2.0 / 3.0) / 0.8),
            ("4.2", 1, 2, 2.0 * 0.5 / 0.8),
            ("4.3", 2, 5, 6.0 * 2.0 / 5.0),
            ("5.1", 2, 5, 6.0 * 2.0 / 5.0),
            ("5.2", 3, 7, 4.0 * 3.0 / 7.0),
            ("5.3", 2, 3, 2.0 * 2.0 / 3.0),
            ("5.4", 2, 7, 2.0 * (2.0 / 7.0) / 0.8),
            ("5.5", 2, 7, 4.0 * 2.0 / 7.0),
            ("5.6", 2, 7, 2.0 * 2.0 / 7.0),
            ("5.7", 2, 5, 2.0 * 2.0 / 5.0),
            ("6.1", 2, 3, 6.0 * 2.0 / 3.0),
            ("6.2", 1, 2, 6.0 / 2.0),
            ("6.3", 3, 8, 6.0 * (3.0 / 8.0) / 0.9),
        ],
    );
    let group_max: Vec<f64> = april[0].groups.iter().map(|g| g.max).collect();
    assert_eq!(group_max, [18.0, 20.0, 12.0, 10.0, 22.0, 18.0]);

    // March: K09 (on the day) and K06 (received 30/3, overdue at 1/4); no feedback at all
    // → 6.1 and 6.2 full; nothing published or due in March → 1.1, 1.2 score 0 (literal).
    let march = index(&l.ctx, &l, "2026-03", None, Unit::Total).await;
    check(
        &march[0],
        &[
            ("1.1", 0, 0, 0.0),
            ("1.2", 0, 0, 0.0),
            ("1.3", 1, 1, 2.0), // published by 31/3: C only, complete
            ("1.4", 1, 2, 3.0), // K06 synced
            ("2.1", 1, 2, 10.0),
            ("3.1", 2, 5, 2.0),
            ("3.2", 1, 4, 1.0), // A had an online dossier (K06)
            ("3.3", 1, 2, 4.0), // 50% = target
            ("4.1", 2, 3, 2.0 * (2.0 / 3.0) / 0.8),
            ("4.2", 0, 2, 0.0),
            ("4.3", 0, 2, 0.0),
            ("5.1", 0, 1, 0.0),
            ("5.2", 0, 2, 0.0),
            ("5.3", 0, 1, 0.0),
            ("5.4", 0, 2, 0.0),
            ("5.5", 0, 2, 0.0),
            ("5.6", 0, 2, 0.0),
            ("5.7", 0, 1, 0.0),
            ("6.1", 0, 0, 6.0),
            ("6.2", 0, 0, 6.0),
            ("6.3", 1, 2, 6.0 * 0.5 / 0.9),
        ],
    );

    // a commune-scoped session (what a viewer of Hồng Bàng gets): K01 K02 K03 K10, PA-1
    let scoped = giamsat_queries::scoped_session(
        &l.ctx,
        Arc::new(l.wh.calendar.clone()),
        Some((&[], &["11311".to_string()])),
    )
    .await
    .expect("scoped");
    let hb = index(&scoped, &l, "2026-04", None, Unit::Total).await;
    let c = criteria(&hb[0]);
    let get = |k: &str| c.iter().find(|x| x.0 == k).cloned().expect(k);
    assert_eq!(get("2.1"), ("2.1".into(), 3, 4, 15.0));
    assert_eq!(get("1.4").1, 3);
    assert_eq!((get("6.1").1, get("6.1").2), (1, 1));
    assert_eq!((get("6.2").1, get("6.2").2), (1, 1));
    assert_eq!((get("6.3").1, get("6.3").2), (2, 4));

    // per commune: the two communes partition the April dossiers
    let units = index(&l.ctx, &l, "2026-04", None, Unit::Commune).await;
    let names: Vec<_> = units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(names, ["11224", "11311"]);
    let den = |u: &Index| {
        criteria(u)
            .iter()
            .find(|x| x.0 == "2.1")
            .map(|x| (x.1, x.2))
    };
    assert_eq!(den(&units[0]), Some((2, 4))); // KTD: K04 K07 on time of K04 K05 K06 K07
    assert_eq!(den(&units[1]), Some((3, 4)));
    assert_eq!(units[1].unit_name.as_deref(), Some("Phường Hồng Bàng"));
}

/// Events of `n` dossiers for a seed-shaped fixture.
struct Seed {
    lines: Vec<String>,
}

impl Seed {
    #[allow(clippy::too_many_arguments)]
    fn dossier(
        &mut self,
        id: &str,
        proc: &str,
        commune: &str,
        channel: &str,
        received: &str,
        due: &str,
        ended: Option<&str>,
    ) {
        let v = serde_json::json!({
            "source": "seed", "dossier_id": id, "type": "received", "at": received,
            "due_at": due, "procedure_code": proc, "province_code": "31",
            "commune_code": commune, "channel": channel,
        });
        self.lines.push(v.to_string());
        if let Some(e) = ended {
            let v = serde_json::json!({"source": "seed", "dossier_id": id, "type": "resolved", "at": e});
            self.lines.push(v.to_string());
        }
    }
}

/// Seed 003 (Xã Khúc Thừa Dụ, 1–22/1/2026): "845 received (8 carried over), 826 ended all
/// on time, 19 in progress; chứng thực 646, hộ tịch 147, đất đai 12, hộ kinh doanh 25,
/// người có công 12, bảo trợ xã hội 3". A fixture built to those counts must give back
/// the published figures and a 100% on-time rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_khuc_thua_du_on_time_ratio() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fields = [
        ("CT", "Chứng thực", 646),
        ("HT", "Hộ tịch", 147),
        ("DD", "Đất đai", 12),
        ("HKD", "Hộ kinh doanh", 25),
        ("NCC", "Người có công", 12),
        ("BTXH", "Bảo trợ xã hội", 3),
    ];
    let mut catalog = String::from(
        "procedure_code,procedure_name,field_code,field_name,procedure_level,authority_level,\
         max_working_days,has_fee,fee_online_integrated,published_at,publish_due_at,content_complete\n",
    );
    let mut s = Seed { lines: Vec::new() };
    let mut n = 0;
    for (i, (code, name, count)) in fields.iter().enumerate() {
        let proc = format!("9.00000{i}");
        catalog.push_str(&format!(
            "{proc},Thủ tục {name},{code},{name},partial_online,commune,5,false,false,,,true\n"
        ));
        for _ in 0..*count {
            n += 1;
            let id = format!("KTD-{n:04}");
            // the first 8 carried over from December, resolved early in January;
            // 19 received in the last days still in progress; the rest resolved early.
            let day = 5 + n % 16; // 5..20 January
            let (received, due, ended) = if n <= 8 {
                (
                    "2025-12-29T08:00:00+07:00".to_string(),
                    "2026-01-20T17:00:00+07:00".to_string(),
                    Some("2026-01-06T10:00:00+07:00".to_string()),
                )
            } else if n > 845 - 19 {
                (
                    "2026-01-21T09:00:00+07:00".to_string(),
                    "2026-01-28T17:00:00+07:00".to_string(),
                    None,
                )
            } else {
                (
                    format!("2026-01-{day:02}T08:00:00+07:00"),
                    format!("2026-01-{:02}T17:00:00+07:00", day + 2),
                    Some(format!("2026-01-{day:02}T15:00:00+07:00")),
                )
            };
            let channel = if n % 3 == 0 { "in_person" } else { "online" };
            s.dossier(
                &id,
                &proc,
                "11224",
                channel,
                &received,
                &due,
                ended.as_deref(),
            );
        }
    }
    assert_eq!(n, 845);
    let cat = tmp.path().join("procedures.csv");
    std::fs::write(&cat, catalog).expect("cat");
    let ev = tmp.path().join("events.ndjson");
    std::fs::write(&ev, s.lines.join("\n")).expect("events");
    let l = common::load(Config::default(), &cat, &[ev]).await;

    let p = giamsat_queries::on_time::Params {
        period: Period::parse("2026-01-01..2026-01-22", QuarterRule::Official).expect("p"),
        province: None,
        commune: Some("11224".into()),
        group_by: giamsat_queries::bieu06::GroupBy::Field,
        filters: Default::default(),
        series: None,
    };
    let r = giamsat_queries::on_time::run(&l.ctx, &l.wh.calendar, &p)
        .await
        .expect("on-time");
    let t = r.rows.last().expect("total");
    assert_eq!(t.group, "TOTAL");
    // the published figures
    assert_eq!(t.total, 845);
    assert_eq!(t.carried_over, 8);
    assert_eq!(t.ended, 826);
    assert_eq!(t.ended_early + t.ended_on_day, 826);
    assert_eq!(t.in_progress, 19);
    assert_eq!(t.rate, Some(1.0));
    assert_eq!(t.ended_on_time_rate, Some(1.0));
    let by_field: Vec<(String, i64)> = r.rows[..r.rows.len() - 1]
        .iter()
        .map(|r| (r.group.clone(), r.total))
        .collect();
    let mut expected: Vec<(String, i64)> = fields
        .iter()
        .map(|(c, _, n)| (c.to_string(), *n as i64))
        .collect();
    expected.sort();
    assert_eq!(by_field, expected);
}

/// Seed 003 (Phường Hồng Bàng, 7/2025): "5,179 received, online 999/1,141 eligible =
/// 87.55%" — Decision 766 criterion 3.3 (dossiers of online-capable procedures submitted
/// online) over a fixture built to those counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_hong_bang_online_share() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cat = tmp.path().join("procedures.csv");
    std::fs::write(
        &cat,
        "procedure_code,procedure_name,field_code,field_name,procedure_level,authority_level,\
         max_working_days,has_fee,fee_online_integrated,published_at,publish_due_at,content_complete\n\
         8.000001,Thủ tục trực tuyến,CT,Chứng thực,partial_online,commune,1,false,false,,,true\n\
         8.000002,Thủ tục trực tiếp,DD,Đất đai,offline,commune,10,false,false,,,true\n",
    )
    .expect("cat");
    let mut s = Seed { lines: Vec::new() };
    for n in 0..5179 {
        let eligible = n < 1141;
        let online = n < 999;
        let day = 1 + n % 28;
        s.dossier(
            &format!("HB-{n:05}"),
            if eligible { "8.000001" } else { "8.000002" },
            "11311",
            if online { "online" } else { "in_person" },
            &format!("2025-07-{day:02}T08:00:00+07:00"),
            &format!("2025-08-{day:02}T17:00:00+07:00"),
            None,
        );
    }
    let ev = tmp.path().join("events.ndjson");
    std::fs::write(&ev, s.lines.join("\n")).expect("events");
    let l = common::load(Config::default(), &cat, &[ev]).await;
    let ix = index(&l.ctx, &l, "2025-07", Some("11311"), Unit::Total).await;
    let c = ix[0]
        .groups
        .iter()
        .flat_map(|g| g.criteria.iter())
        .find(|c| c.key == "3.3")
        .expect("3.3");
    assert_eq!((c.numerator, c.denominator), (999, 1141));
    let pct = c.rate.expect("rate") * 100.0;
    assert_eq!(format!("{pct:.2}"), "87.55");
    let received = ix[0]
        .groups
        .iter()
        .flat_map(|g| g.criteria.iter())
        .find(|c| c.key == "5.2")
        .expect("5.2");
    assert_eq!(received.denominator, 5179);
}

/// The CLI and HTTP give the same numbers (one code path), for the whole province and for
/// a commune viewer, in JSON and CSV; the viewer cannot widen its scope.
#[test]
fn cli_and_http_agree_and_viewer_scope_holds() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let f = common::root().join("fixtures/index766");
    common::ingest_all(&data, &f.join("procedures.csv"), &[f.join("events.ndjson")]);
    let admin = cli(&data, &["token", "add", "--role", "admin"]);
    let viewer = cli(
        &data,
        &["token", "add", "--role", "viewer", "--commune", "11311"],
    );
    let (_server, port) = start_server(&data, &[]);
    let get = |path: &str, token: &str| {
        let r = request(port, "GET", path, Some(token), None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r
    };

    for (args, path) in [
        (
            vec!["report", "766", "--period", "2026-04"],
            "/api/v1/indicators/766?period=2026-04",
        ),
        (
            vec![
                "report",
                "766",
                "--period",
                "2026-04",
                "--group-by",
                "commune",
            ],
            "/api/v1/indicators/766?period=2026-04&group_by=commune",
        ),
        (
            vec![
                "report",
                "on-time",
                "--period",
                "2026-CQ1",
                "--group-by",
                "commune",
                "--series",
                "month",
            ],
            "/api/v1/indicators/on-time?period=2026-CQ1&group_by=commune&series=month",
        ),
        (
            vec![
                "report",
                "on-time",
                "--from",
                "2026-03-15",
                "--to",
                "2026-04-30",
                "--group-by",
                "source",
            ],
            "/api/v1/indicators/on-time?from=2026-03-15&to=2026-04-30&group_by=source",
        ),
    ] {
        let from_cli: Value = serde_json::from_str(&cli(&data, &args)).expect("cli json");
        let from_http = get(path, &admin).json();
        assert_eq!(from_cli, from_http, "{path}");
    }
    let csv_cli = cli(
        &data,
        &["report", "766", "--period", "2026-04", "--format", "csv"],
    );
    let csv_http = get("/api/v1/indicators/766?period=2026-04&format=csv", &admin).text();
    assert_eq!(csv_cli.trim(), csv_http.trim());
    let total: Value = get("/api/v1/indicators/766?period=2026-04", &admin).json();
    assert!((total["total"].as_f64().expect("total") - 54.326190476).abs() < 1e-6);
    assert_eq!(total["groups"].as_array().map(Vec::len), Some(6));

    // the Hồng Bàng viewer sees its four dossiers whatever it asks for
    for path in [
        "/api/v1/indicators/766?period=2026-04",
        "/api/v1/indicators/766?period=2026-04&commune=11224",
        "/api/v1/indicators/766?period=2026-04&province=31",
    ] {
        let v = get(path, &viewer).json();
        let c21 = &v["groups"][1]["criteria"][0];
        let den = c21["denominator"].as_i64().expect("den");
        assert!(den == 4 || den == 0, "{path}: {den}");
        if path.ends_with("11224") {
            assert_eq!(den, 0, "another commune is empty for this viewer");
        }
    }
    let ot = get(
        "/api/v1/indicators/on-time?period=2026-04&group_by=commune",
        &viewer,
    )
    .json();
    let groups: Vec<&str> = ot["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["group"].as_str())
        .collect();
    assert_eq!(groups, ["11311", "TOTAL"]);

    // bad parameters: one-line JSON 400 / CLI exit 2
    for path in [
        "/api/v1/indicators/766?period=2026-Q5",
        "/api/v1/indicators/766",
        "/api/v1/indicators/766?period=2026-04&group_by=field",
        "/api/v1/indicators/on-time?period=2026-04&group_by=nonsense",
        "/api/v1/indicators/on-time?from=2026-04-01",
        "/api/v1/indicators/on-time?period=2026-04&procedure_level=x",
    ] {
        let r = request(port, "GET", path, Some(&admin), None);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(
        request(
            port,
            "GET",
            "/api/v1/indicators/766?period=2026-04",
            None,
            None
        )
        .status,
        401
    );
    let out = std::process::Command::new(common::BIN)
        .arg("--data")
        .arg(&data)
        .args(["report", "766", "--period", "2026-13"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// Alerts, reconciliation, source health and data quality: the CLI and HTTP give the same
/// JSON (one code path), on the reconciliation fixture (`fixtures/recon/`); a commune
/// viewer's lists stay inside its commune.
#[test]
fn operational_reports_cli_equals_http() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let f = common::root().join("fixtures/recon");
    common::ingest_all(&data, &f.join("procedures.csv"), &[f.join("events.ndjson")]);
    let admin = cli(&data, &["token", "add", "--role", "admin"]);
    let viewer = cli(
        &data,
        &["token", "add", "--role", "viewer", "--commune", "11224"],
    );
    let (_server, port) = start_server(&data, &[]);
    let as_of = "2026-04-24T15:00:00%2B07:00";
    let cases: [(Vec<&str>, String); 5] = [
        (
            vec!["report", "overdue", "--as-of", "2026-04-24T15:00:00+07:00"],
            format!("/api/v1/alerts?as_of={as_of}"),
        ),
        (
            vec![
                "report",
                "reconciliation",
                "--from",
                "2026-04-06",
                "--to",
                "2026-04-10",
            ],
            "/api/v1/reconciliation?from=2026-04-06&to=2026-04-10".to_string(),
        ),
        (
            vec![
                "report",
                "reconciliation",
                "--kind",
                "lost_state",
                "--tolerance-seconds",
                "1200",
            ],
            "/api/v1/reconciliation?kind=lost_state&tolerance_seconds=1200".to_string(),
        ),
        (
            vec!["report", "sources", "--as-of", "2026-04-24T15:00:00+07:00"],
            format!("/api/v1/sources?as_of={as_of}"),
        ),
        (
            vec!["report", "data-quality"],
            "/api/v1/data-quality".to_string(),
        ),
    ];
    for (args, path) in cases {
        let from_cli: Value = serde_json::from_str(&cli(&data, &args)).expect("cli json");
        let r = request(port, "GET", &path, Some(&admin), None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        // health reports `last_ingested_at`/lags identically: same data, same as_of
        assert_eq!(from_cli, r.json(), "{path}");
    }
    // hand-checked anchors (fixtures/recon/README.md): R01 is missing on the portal;
    // A01 is overdue at Friday 24/4 15:00
    let rec = request(
        port,
        "GET",
        "/api/v1/reconciliation?from=2026-04-06&to=2026-04-10",
        Some(&admin),
        None,
    )
    .json();
    assert!(rec["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|i| i["dossier_id"] == "R01" && i["kind"] == "missing_on_portal"));
    let al = request(
        port,
        "GET",
        &format!("/api/v1/alerts?as_of={as_of}"),
        Some(&admin),
        None,
    )
    .json();
    assert!(al["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|i| i["dossier_id"] == "A01" && i["status"] == "overdue"));

    // the viewer of 11224 only ever sees 11224 dossiers
    let al = request(
        port,
        "GET",
        &format!("/api/v1/alerts?as_of={as_of}&commune=11311"),
        Some(&viewer),
        None,
    )
    .json();
    assert_eq!(al["summary"]["total"], 0);
    let al = request(
        port,
        "GET",
        &format!("/api/v1/alerts?as_of={as_of}"),
        Some(&viewer),
        None,
    )
    .json();
    for i in al["items"].as_array().expect("items") {
        assert_eq!(i["commune_code"], "11224", "{i}");
    }
    let dq = request(port, "GET", "/api/v1/data-quality", Some(&viewer), None).json();
    for i in dq["items"].as_array().expect("items") {
        assert_eq!(i["commune_code"], "11224", "{i}");
    }
    // bad parameters: 400 / exit 2
    for path in [
        "/api/v1/alerts?as_of=yesterday",
        "/api/v1/alerts?due_within_hours=-1",
        "/api/v1/reconciliation?kind=nonsense",
        "/api/v1/reconciliation?tolerance_seconds=abc",
        "/api/v1/sources?stale_after_hours=x",
        "/api/v1/data-quality?limit=-5",
    ] {
        let r = request(port, "GET", path, Some(&admin), None);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
    }
    let out = std::process::Command::new(common::BIN)
        .arg("--data")
        .arg(&data)
        .args(["report", "reconciliation", "--kind", "nonsense"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
