//! Scheduled exports (issue #8): schedules in Asia/Ho_Chi_Minh across month ends and Tết,
//! catch-up after downtime, retries with backoff that never block other jobs,
//! byte-identical re-runs at the recorded table versions after more ingest, two servers
//! on one store exporting each slot once, and the exported XLSX read back cell by cell
//! against the report endpoint.
//!
//! The clock is injected: `Exporter::tick(now)` is called with chosen instants. Expected
//! numbers come from the hand-computed golden fixture (`tests/it/golden.rs`, official Q1
//! 2026 = 15/12/2025–14/3/2026) or from the report endpoint, never from export output.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calamine::{Data, Reader, Xlsx};
use chrono::{DateTime, Utc};
use serde_json::Value;

use giamsat_api::exports::{ExportRun, Exporter, ExportsConfig};
use giamsat_api::reports::ReportEnv;
use giamsat_warehouse::config::Config;
use giamsat_warehouse::store::Warehouse;

use crate::common;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("instant")
        .with_timezone(&Utc)
}

fn job(toml: &str) -> giamsat_api::exports::JobSpec {
    ExportsConfig::from_toml(toml).expect("config").jobs[0].clone()
}

#[test]
fn schedules_fire_at_local_times_across_month_ends_and_tet() {
    let cal = giamsat_warehouse::Calendar::new(&Default::default()).expect("calendar");
    let slots = |toml: &str, from: &str, to: &str| -> Vec<String> {
        let j = job(toml);
        j.slots(t(from), t(to), 100)
            .expect("slots")
            .into_iter()
            .map(|s| j.effective(s, &cal).to_rfc3339())
            .collect()
    };
    let head = "[[export]]\nname = \"j\"\nreport = \"bieu06\"\nperiod = \"previous_month\"\n";

    // 07:00 local on the 16th of each quarter's last month = 00:00 UTC
    assert_eq!(
        slots(
            &format!("{head}schedule = \"0 7 16 3,6,9,12 *\""),
            "2026-01-01T00:00:00Z",
            "2026-12-31T00:00:00Z"
        ),
        [
            "2026-03-16T00:00:00+00:00",
            "2026-06-16T00:00:00+00:00",
            "2026-09-16T00:00:00+00:00",
            "2026-12-16T00:00:00+00:00"
        ]
    );
    // 23:30 local on the last day of the month (L): 31, 28 (2026 is not a leap year), 31, 30
    assert_eq!(
        slots(
            &format!("{head}schedule = \"30 23 L * *\""),
            "2026-01-01T00:00:00Z",
            "2026-05-01T00:00:00Z"
        ),
        [
            "2026-01-31T16:30:00+00:00",
            "2026-02-28T16:30:00+00:00",
            "2026-03-31T16:30:00+00:00",
            "2026-04-30T16:30:00+00:00"
        ]
    );
    // 00:05 local on the 1st is still the previous day in UTC
    assert_eq!(
        slots(
            &format!("{head}schedule = \"5 0 1 * *\""),
            "2026-02-15T00:00:00Z",
            "2026-04-15T00:00:00Z"
        ),
        ["2026-02-28T17:05:00+00:00", "2026-03-31T17:05:00+00:00"]
    );
    // next working day: 1/1/2026 (holiday), 2/1 (day off for the make-up Saturday 10/1),
    // 3–4/1 weekend → Monday 5/1; 17/2/2026 (Tết 16–20/2, then the weekend) → Monday
    // 23/2; 10/1/2026 is a Saturday but a make-up working day → runs that day; 17/1 is
    // an ordinary Saturday → Monday 19/1.
    let nwd = format!("{head}on_holiday = \"next_working_day\"\n");
    assert_eq!(
        slots(
            &format!("{nwd}schedule = \"0 8 1 1,2 *\""),
            "2025-12-20T00:00:00Z",
            "2026-02-10T00:00:00Z"
        ),
        ["2026-01-05T01:00:00+00:00", "2026-02-02T01:00:00+00:00"]
    );
    assert_eq!(
        slots(
            &format!("{nwd}schedule = \"0 8 10,17 1,2 *\""),
            "2026-01-01T00:00:00Z",
            "2026-02-28T00:00:00Z"
        ),
        [
            "2026-01-10T01:00:00+00:00",
            "2026-01-19T01:00:00+00:00",
            "2026-02-10T01:00:00+00:00",
            "2026-02-23T01:00:00+00:00"
        ]
    );
    // without the rule the slot stays on Tết
    assert_eq!(
        slots(
            &format!("{head}schedule = \"0 8 17 2 *\""),
            "2026-01-01T00:00:00Z",
            "2026-02-28T00:00:00Z"
        ),
        ["2026-02-17T01:00:00+00:00"]
    );
}

/// The TOTAL row of Biểu 06 for official Q1 2026 of the golden fixture, by hand
/// (tests/it/golden.rs): online 17, in person 7, carried 0, early 9, on the day 7, late 6,
/// in progress in time 1, overdue 1.
const OQ1_TOTAL: [f64; 11] = [24.0, 17.0, 7.0, 0.0, 22.0, 9.0, 7.0, 6.0, 2.0, 1.0, 1.0];

fn sheet_rows(xlsx: &[u8], sheet: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(xlsx.to_vec())).expect("xlsx");
    let range = wb.worksheet_range(sheet).expect("sheet");
    range.rows().map(|r| r.to_vec()).collect()
}

const CONFIG: &str = r#"
[exports]
retry_base_seconds = 60
max_attempts = 3
catch_up_days = 60

[[export]]
name = "bieu06-quy"
report = "bieu06"
schedule = "0 7 16 3,6,9,12 *"
period = "previous_official_quarter"
group_by = "field"

[[export]]
name = "dem-thang"
report = "sql"
format = "csv"
schedule = "0 8 1 * *"
period = "previous_month"
sql = "SELECT count(*) AS dossiers FROM dossiers WHERE received_at >= {from} AND received_at < {to} + INTERVAL '1 day'"

[[export]]
name = "dung-han"
report = "on-time"
schedule = "0 8 1 * *"
period = "previous_official_quarter"
group_by = "field"
enabled = false

[[export]]
name = "hong"
report = "sql"
format = "csv"
schedule = "0 8 1 * *"
period = "previous_month"
sql = "SELECT * FROM no_such_table"
"#;

fn exporter(data: &Path, config: &str) -> Exporter {
    let wh = Warehouse::open(data).expect("open");
    let env = ReportEnv::for_warehouse(&wh).expect("env");
    Exporter::new(
        Arc::new(wh),
        env,
        Arc::new(giamsat_queries::RuntimeEnv::default()),
        ExportsConfig::from_toml(config).expect("config"),
    )
    .expect("exporter")
}

fn of<'a>(runs: &'a [ExportRun], job: &str) -> Vec<&'a ExportRun> {
    runs.iter().filter(|r| r.job == job).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_retries_and_byte_identical_rerun_after_more_ingest() {
    let w = common::load_golden(Config::default()).await;
    let data = w.wh.root().to_path_buf();
    let ex = exporter(&data, CONFIG);

    // first sight of the jobs on 1/3/2026 07:00 local: nothing due yet
    assert!(ex
        .tick(t("2026-03-01T00:00:00Z"))
        .await
        .expect("tick")
        .is_empty());

    // the server was down from then until 20/4/2026 10:00 local: the quarter's slot
    // (16/3) and the monthly slots (1/3 08:00, 1/4 08:00) are caught up; the broken job
    // fails both its slots without holding up the others
    let now = t("2026-04-20T03:00:00Z");
    let runs = ex.tick(now).await.expect("tick");
    let b06 = of(&runs, "bieu06-quy");
    assert_eq!(b06.len(), 1, "{runs:#?}");
    let b = b06[0];
    assert_eq!(
        (b.status.as_str(), b.trigger.as_str(), b.attempt),
        ("ok", "catch_up", 1),
        "{b:#?}"
    );
    assert_eq!(b.scheduled_for, Some(t("2026-03-16T00:00:00Z")));
    assert_eq!(
        (b.period_from.to_string(), b.period_to.to_string()),
        ("2025-12-15".to_string(), "2026-03-14".to_string())
    );
    let versions: Value = serde_json::from_str(&b.table_versions).expect("versions");
    for table in ["events", "dossier_facts", "dossier_states", "procedures"] {
        assert!(versions[table].is_i64(), "{table} version in {versions}");
    }
    let months: Vec<(String, String)> = of(&runs, "dem-thang")
        .iter()
        .map(|r| (r.status.clone(), r.period_label.clone()))
        .collect();
    assert_eq!(
        months,
        [
            ("ok".to_string(), "2026-02".to_string()),
            ("ok".to_string(), "2026-03".to_string())
        ]
    );
    let broken = of(&runs, "hong");
    assert_eq!(broken.len(), 2);
    assert!(broken.iter().all(|r| r.status == "failed"
        && r.error
            .as_deref()
            .is_some_and(|e| e.contains("no_such_table"))));

    // the file: read back cell by cell; TOTAL equals the hand-computed official Q1
    let f = ex.file(b).await.expect("file");
    assert_eq!(f.body.len() as i64, b.bytes.expect("bytes"));
    let rows = sheet_rows(&f.body, "Biểu 06");
    let total = rows
        .iter()
        .find(|r| r.get(1) == Some(&Data::String("Tổng cộng".into())))
        .expect("total row");
    let nums: Vec<f64> = total[2..13]
        .iter()
        .map(|c| match c {
            Data::Float(v) => *v,
            other => panic!("not a number: {other:?}"),
        })
        .collect();
    assert_eq!(nums, OQ1_TOTAL);

    // a saved-SQL CSV export: February 2026 dossiers received, counted independently
    let feb = of(&runs, "dem-thang")[0];
    let csv = String::from_utf8(ex.file(feb).await.expect("csv").body).expect("utf8");
    let expected = giamsat_queries::run_sql(
        &w.ctx,
        "SELECT count(*) AS n FROM dossier_facts WHERE received_at >= TIMESTAMP '2026-02-01T00:00:00' AND received_at < TIMESTAMP '2026-03-01T00:00:00'",
    )
    .await
    .expect("count");
    let n = datafusion_count(&expected);
    assert_eq!(csv.trim(), format!("dossiers\n{n}"));

    // ten seconds later: nothing to do (the broken job waits for its backoff of 60 s)
    assert!(ex
        .tick(now + chrono::Duration::seconds(10))
        .await
        .expect("tick")
        .is_empty());
    // after 90 s (a backoff of 60 s after failures that finished within 30 s of `now`,
    // however slow this machine is): the broken job's second attempt, for both slots,
    // and nothing else
    let retry = ex
        .tick(now + chrono::Duration::seconds(90))
        .await
        .expect("tick");
    assert_eq!(retry.len(), 2, "{retry:#?}");
    assert!(retry
        .iter()
        .all(|r| r.job == "hong" && r.attempt == 2 && r.trigger == "retry"));
    // the next backoff is 120 s: not yet 100 s later; after the third failure
    // (max_attempts = 3) it stops
    assert!(ex
        .tick(now + chrono::Duration::seconds(90 + 100))
        .await
        .expect("tick")
        .is_empty());
    let third = ex
        .tick(now + chrono::Duration::seconds(90 + 150))
        .await
        .expect("tick");
    assert_eq!(third.iter().filter(|r| r.attempt == 3).count(), 2);
    assert!(ex
        .tick(now + chrono::Duration::days(1))
        .await
        .expect("tick")
        .iter()
        .all(|r| r.job != "hong"));

    // a disabled job never runs on schedule (none of the ticks above made one); by hand,
    // the on-time XLSX of official Q1: 24 dossiers, 17 on time (9 early + 7 on the day + 1
    // in progress in time), rate 17/24
    let ot = ex
        .run_now("dung-han", Some("2026-Q1"), now)
        .await
        .expect("on-time");
    assert_eq!(ot.status, "ok", "{ot:?}");
    let rows = sheet_rows(&ex.file(&ot).await.expect("file").body, "Tỷ lệ đúng hạn");
    let total = rows
        .iter()
        .find(|r| r.get(1) == Some(&Data::String("Tổng cộng".into())))
        .expect("total");
    assert_eq!(total[2], Data::Float(24.0));
    assert_eq!(total[10], Data::Float(17.0));
    assert_eq!(total[11], Data::Float(17.0 / 24.0));

    // more events arrive: a new dossier received 5/1/2026, in the official quarter
    let extra = data.join("extra.ndjson");
    std::fs::write(
        &extra,
        concat!(
            r#"{"event_id":"X1-r","dossier_id":"X1","source":"hp-motcua","type":"received","at":"2026-01-05T09:00:00+07:00","procedure_code":"P1","agency_code":"A1","province_code":"31","commune_code":"11311","channel":"online"}"#,
            "\n"
        ),
    )
    .expect("write");
    let wh = Warehouse::open(&data).expect("open");
    let c = giamsat_ingest::ingest_paths(&wh, &giamsat_ingest::Format::Canonical, None, &[extra])
        .await
        .expect("ingest");
    assert_eq!(c.accepted, 1, "{c:?}");
    wh.ensure_facts().await.expect("facts");
    // maintenance with no retention at all: compaction and vacuum delete every file no
    // current version needs, except those the recorded runs read
    let pinned = ex.pinned_versions().await.expect("pins");
    assert!(pinned.contains_key("dossier_facts"), "{pinned:?}");
    let done = wh
        .maintain(&pinned, 0, chrono::Utc::now())
        .await
        .expect("maintain");
    assert!(done.iter().all(|m| m.checkpoint), "{done:?}");

    // the past export, again at its recorded versions: the same bytes
    let (_, again, same) = ex.rerun(&b.run_id).await.expect("rerun");
    assert!(same, "re-run differs from the recorded checksum");
    assert_eq!(again, f.body);
    // a new run of the same period sees the new dossier (so the pin is what kept it equal)
    let fresh = ex
        .run_now("bieu06-quy", Some("2026-Q1"), now)
        .await
        .expect("run");
    assert_eq!(fresh.status, "ok");
    assert_ne!(fresh.sha256, b.sha256);
    let rows = sheet_rows(&ex.file(&fresh).await.expect("file").body, "Biểu 06");
    let total = rows
        .iter()
        .find(|r| r.get(1) == Some(&Data::String("Tổng cộng".into())))
        .expect("total");
    assert_eq!(total[2], Data::Float(OQ1_TOTAL[0] + 1.0));
    // and re-running that one is byte-identical too
    assert!(ex.rerun(&fresh.run_id).await.expect("rerun").2);
}

fn datafusion_count(batches: &[giamsat_queries::arrow::array::RecordBatch]) -> i64 {
    use giamsat_queries::arrow::array::{Array, Int64Array};
    let b = &batches[0];
    let a = b
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("int64");
    assert_eq!(a.len(), 1);
    a.value(0)
}

/// Two real servers on one data directory, a schedule every 2 seconds: each slot is
/// exported once. Then the history and the file over HTTP, the XLSX read back cell by
/// cell against `GET /api/v1/reports/bieu06`, and a viewer of another territory sees
/// neither.
#[test]
fn two_servers_export_each_slot_once_and_files_match_the_endpoint() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();
    let g = common::root().join("fixtures/golden");
    common::ingest_all(data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
    std::fs::write(
        data.join("config.toml"),
        r#"
[exports]
poll_seconds = 0.3
[[export]]
name = "b06-field"
report = "bieu06"
schedule = "*/2 * * * * *"
period = "2026-Q1"
group_by = "field"
# slow (about a second): both servers are awake while it runs
[[export]]
name = "cham"
report = "sql"
format = "csv"
schedule = "*/2 * * * * *"
period = "2026-Q1"
sql = "SELECT count(*) AS n FROM generate_series(1, 20000000) t WHERE value % 7 = 0"
"#,
    )
    .expect("config");
    let admin = common::cli(data, &["token", "add", "--role", "admin"]);
    let viewer = common::cli(
        data,
        &["token", "add", "--role", "viewer", "--commune", "11224"],
    );
    let (s1, port) = common::start_server(data, &[]);
    let (s2, _) = common::start_server(data, &[]);
    let started = Instant::now();
    // wait for at least four ok runs
    loop {
        let list = common::request(port, "GET", "/api/v1/exports", Some(&admin), None).json();
        let ok = list["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .filter(|r| r["status"] == "ok" && r["job"] == "b06-field")
            .count();
        if ok >= 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no exports after 60 s: {list}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(s2);
    drop(s1);

    let runs: Vec<Value> = common::cli(data, &["export", "list", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let mut per_slot = std::collections::HashMap::new();
    for r in &runs {
        assert_eq!(r["status"], "ok", "{r}");
        *per_slot
            .entry((
                r["job"].as_str().expect("job").to_string(),
                r["scheduled_for"].as_str().expect("slot").to_string(),
            ))
            .or_insert(0) += 1;
    }
    assert!(per_slot.len() >= 4, "{per_slot:?}");
    assert!(
        per_slot.values().all(|n| *n == 1),
        "a slot exported twice: {per_slot:?}"
    );
    let servers: std::collections::HashSet<&str> =
        runs.iter().filter_map(|r| r["server"].as_str()).collect();
    eprintln!("runs by {} server(s): {per_slot:?}", servers.len());

    // the history and the file over HTTP (a fresh server)
    let (_s3, port) = common::start_server(data, &[]);
    let list = common::request(
        port,
        "GET",
        "/api/v1/exports?limit=1&job=b06-field",
        Some(&admin),
        None,
    );
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json();
    assert_eq!(list["jobs"], serde_json::json!(["b06-field", "cham"]));
    let run = &list["runs"][0];
    let link = run["download"].as_str().expect("download link");
    let file = common::request(port, "GET", link, Some(&admin), None);
    assert_eq!(file.status, 200);
    assert!(file
        .header("content-type")
        .is_some_and(|c| c.contains("spreadsheetml")));
    use sha2::Digest;
    assert_eq!(
        Some(hex::encode(sha2::Sha256::digest(&file.body)).as_str()),
        run["sha256"].as_str()
    );
    let want = common::request(
        port,
        "GET",
        "/api/v1/reports/bieu06?from=2025-12-15&to=2026-03-14&group_by=field",
        Some(&admin),
        None,
    )
    .json();
    let want = want.as_array().expect("rows");
    let rows = sheet_rows(&file.body, "Biểu 06");
    assert_eq!(
        rows[1][0],
        Data::String("Kỳ báo cáo: từ ngày 15/12/2025 đến ngày 14/03/2026".into())
    );
    let body = &rows[giamsat_api::xlsx::HEADER_ROW as usize + 1..];
    assert_eq!(body.len(), want.len(), "one line per endpoint row");
    let columns = giamsat_queries::bieu06::COLUMNS;
    for (line, w) in body.iter().zip(want) {
        let group = w["group"].as_str().expect("group");
        if group == "TOTAL" {
            assert!(matches!(&line[0], Data::Empty) || line[0] == Data::String(String::new()));
            assert_eq!(line[1], Data::String("Tổng cộng".into()));
        } else {
            assert_eq!(line[0], Data::String(group.into()));
            assert_eq!(
                line[1],
                Data::String(w["group_name"].as_str().expect("name").into())
            );
        }
        for (c, name) in columns.iter().enumerate().skip(2) {
            assert_eq!(
                line[c],
                Data::Float(w[*name].as_i64().expect(name) as f64),
                "row {group}, column {name}"
            );
        }
    }
    // and the endpoint agrees with the hand-computed TOTAL
    let last = want.last().expect("total");
    assert_eq!(last["total"], 24);

    // a viewer of another commune sees no run of a province-wide export, nor its file
    let v = common::request(port, "GET", "/api/v1/exports", Some(&viewer), None).json();
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["jobs"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        common::request(port, "GET", link, Some(&viewer), None).status,
        404
    );
    assert_eq!(common::request(port, "GET", link, None, None).status, 401);
    assert_eq!(
        common::request(
            port,
            "GET",
            "/api/v1/exports/..%2F..%2Fetc/file",
            Some(&admin),
            None
        )
        .status,
        400
    );
}
