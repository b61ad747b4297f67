//! Backup while serving, restore elsewhere (docs/backup.md): a backup taken while pushes
//! arrive over HTTP restores to a warehouse whose events are whole pushes between those
//! acknowledged before the backup started and those sent by its end, whose derived tables
//! agree with those events, where export runs recorded before the backup re-run to the
//! same bytes, and which, once every push is sent again, gives the same exports as the
//! source. And the refusals: a non-empty destination, a damaged backup, a data directory
//! missing a file its tables need.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::common::{self, cli, request, run, start_server};

const SOURCE: &str = "hp-motcua";
/// Pushes at most (the pusher stops once the backup is done); the first [`BEFORE`] are
/// acknowledged before the backup starts.
const PUSHES: usize = 16;
const BEFORE: usize = 2;
/// New dossiers per push (received), each resolved by the next push.
const PER_PUSH: usize = 5;

const CONFIG: &str = r#"
[[export]]
name = "b06-xlsx"
report = "bieu06"
schedule = "0 7 16 3,6,9,12 *"
period = "previous_official_quarter"
group_by = "commune"
enabled = false

[[export]]
name = "b06-csv"
report = "bieu06"
format = "csv"
schedule = "0 7 16 3,6,9,12 *"
period = "previous_official_quarter"
group_by = "field"
enabled = false
"#;

/// Push `i`: five new dossiers received on a day of January 2026, and the resolution of
/// the five of push `i - 1` (so a push changes dossiers an earlier push created).
fn push_body(i: usize) -> String {
    let day = |i: usize| 5 + i % 20;
    let mut out = String::new();
    for k in 0..PER_PUSH {
        let (proc_code, name, field, fname) = if k % 2 == 0 {
            (
                "1.000001",
                "Chứng thực bản sao từ bản chính",
                "CT",
                "Chứng thực",
            )
        } else {
            ("1.000002", "Cấp bản sao trích lục hộ tịch", "HT", "Hộ tịch")
        };
        let commune = if k % 3 == 0 { "11224" } else { "11311" };
        out.push_str(&format!(
            "{{\"source\":\"{SOURCE}\",\"event_id\":\"BK{i}-{k}-r\",\"dossier_id\":\"BK{i}-{k}\",\"type\":\"received\",\"at\":\"2026-01-{:02}T09:00:00+07:00\",\"procedure_code\":\"{proc_code}\",\"procedure_name\":\"{name}\",\"field_code\":\"{field}\",\"field_name\":\"{fname}\",\"agency_code\":\"31.{commune}\",\"province_code\":\"31\",\"commune_code\":\"{commune}\",\"channel\":\"{}\"}}\n",
            day(i),
            if k == 4 { "in_person" } else { "online" }
        ));
        if i > 0 {
            out.push_str(&format!(
                "{{\"source\":\"{SOURCE}\",\"event_id\":\"BK{p}-{k}-x\",\"dossier_id\":\"BK{p}-{k}\",\"type\":\"resolved\",\"at\":\"2026-01-{:02}T16:00:00+07:00\"}}\n",
                day(i - 1) + 1 + k % 3,
                p = i - 1
            ));
        }
    }
    out
}

/// Event ids of push `i`.
fn push_ids(i: usize) -> BTreeSet<String> {
    push_body(i)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("event");
            v["event_id"].as_str().expect("id").to_string()
        })
        .collect()
}

fn push(port: u16, token: &str, i: usize) -> Value {
    let r = request(
        port,
        "POST",
        &format!("/api/v1/events?source={SOURCE}"),
        Some(token),
        Some(&push_body(i)),
    );
    assert_eq!(r.status, 200, "push {i}: {}", r.text());
    let v = r.json();
    assert_eq!(v["quarantined"], 0, "push {i}: {v}");
    v
}

/// Exit 2 and one line on stderr that mentions `mention`.
fn refused(out: &Output, code: i32, mention: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(mention), "{err} should mention {mention}");
}

fn sql_rows(data: &Path, sql: &str) -> Vec<String> {
    cli(data, &["sql", sql, "--format", "csv"])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("path")
}

/// The report outputs compared between warehouses: Biểu 06 (CSV by commune) and the
/// Decision 766 index (JSON).
fn reports(data: &Path) -> Vec<(String, String)> {
    let b06 = |group: &str, format: &str| {
        cli(
            data,
            &[
                "report",
                "bieu06",
                "--from",
                "2025-12-15",
                "--to",
                "2026-03-14",
                "--group-by",
                group,
                "--format",
                format,
            ],
        )
    };
    vec![
        ("bieu06 commune csv".into(), b06("commune", "csv")),
        (
            "766 json".into(),
            cli(
                data,
                &["report", "766", "--period", "2026-Q1", "--format", "json"],
            ),
        ),
    ]
}

/// An XLSX's parts but its creation time (`docProps/core.xml`, "now" for a report).
fn xlsx_parts(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).expect("xlsx");
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("part");
        let name = f.name().expect("part name").to_string();
        if name == "docProps/core.xml" {
            continue;
        }
        let mut b = Vec::new();
        f.read_to_end(&mut b).expect("read");
        out.insert(name, b);
    }
    out
}

fn export_run(data: &Path, job: &str) -> String {
    let run: Value = serde_json::from_str(&cli(
        data,
        &["export", "run", job, "--period", "2025-12-15..2026-03-14"],
    ))
    .expect("run");
    assert_eq!(run["status"], "ok", "{run}");
    run["run_id"].as_str().expect("run_id").to_string()
}

fn rerun(data: &Path, run_id: &str, out: &Path) -> Vec<u8> {
    let r: Value = serde_json::from_str(&cli(
        data,
        &["export", "rerun", run_id, "-o", out.to_str().expect("p")],
    ))
    .expect("rerun");
    assert_eq!(r["identical"], true, "{r}");
    std::fs::read(out).expect("rerun output")
}

#[test]
fn a_backup_taken_while_serving_restores_to_identical_exports() {
    let t0 = Instant::now();
    let mark = |what: &str| eprintln!("{:>6.1} s  {what}", t0.elapsed().as_secs_f64());
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("config.toml"), CONFIG).expect("config");
    let g = common::root().join("fixtures/golden");
    common::ingest_all(&data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
    // checkpoints and `_last_checkpoint` in the logs, as on a maintained warehouse
    cli(&data, &["maintain"]);
    let golden_events: usize = sql_rows(&data, "SELECT count(*) FROM events")[0]
        .parse()
        .expect("count");
    let token = cli(
        &data,
        &[
            "token",
            "add",
            "--role",
            "ingest",
            "--source",
            SOURCE,
            "--label",
            "một cửa",
        ],
    );
    let (server, port) = start_server(&data, &[]);
    mark("golden ingested, maintained, serving");

    // acknowledged before the backup, with two export runs recorded in between
    push(port, &token, 0);
    let runs = [export_run(&data, "b06-xlsx"), export_run(&data, "b06-csv")];
    for i in 1..BEFORE {
        push(port, &token, i);
    }

    // the other pushes arrive while the backup runs
    let started = Arc::new(AtomicUsize::new(BEFORE));
    let acked = Arc::new(AtomicUsize::new(BEFORE));
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (started, acked, stop) = (started.clone(), acked.clone(), stop.clone());
        let token = token.clone();
        std::thread::spawn(move || {
            for i in BEFORE..PUSHES {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                started.store(i + 1, Ordering::SeqCst);
                push(port, &token, i);
                acked.store(i + 1, Ordering::SeqCst);
            }
        })
    };
    mark("pushes and export runs before the backup");
    // a push under way (a commit takes seconds here) when the backup starts
    while started.load(Ordering::SeqCst) == BEFORE {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let backup = tmp.path().join("backup");
    let acked_at_start = acked.load(Ordering::SeqCst);
    let t_backup = Instant::now();
    let out: Value = serde_json::from_str(&cli(&data, &["backup", backup.to_str().expect("p")]))
        .expect("backup line");
    let backup_took = t_backup.elapsed();
    let started_at_end = started.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    pusher.join().expect("pusher");
    let sent = started.load(Ordering::SeqCst);
    mark("backup");
    eprintln!(
        "backup: {backup_took:?}, pushes {acked_at_start} acknowledged before, {started_at_end} sent by the end: {out}"
    );

    // the manifest: every table, each file with its size; the data files of each table
    // are exactly those of the version backed up (nothing a later commit wrote)
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("BACKUP.json")).expect("manifest"))
            .expect("manifest json");
    let tables = manifest["tables"].as_array().expect("tables");
    let names: BTreeSet<&str> = tables.iter().filter_map(|t| t["name"].as_str()).collect();
    for t in [
        "events",
        "dossier_facts",
        "daily_rollup",
        "export_runs",
        "procedures",
    ] {
        assert!(names.contains(t), "{t} in {names:?}");
    }
    let listed: BTreeSet<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    for f in ["config.toml", "tokens.toml", "facts_stamp.json"] {
        assert!(listed.contains(f), "{f} backed up");
    }
    for t in tables {
        let name = t["name"].as_str().expect("name");
        let kept = t["kept_versions"].as_array().expect("kept").is_empty();
        let on_disk = listed
            .iter()
            .filter(|p| p.starts_with(&format!("tables/{name}/")) && p.ends_with(".parquet"))
            .filter(|p| !p.contains("/_delta_log/"))
            .count();
        if kept {
            assert_eq!(on_disk as u64, t["data_files"].as_u64().expect("n"), "{t}");
        } else {
            assert!(
                on_disk as u64 >= t["data_files"].as_u64().expect("n"),
                "{t}"
            );
        }
    }
    let events_entry = tables
        .iter()
        .find(|t| t["name"] == "events")
        .expect("events");
    assert!(
        !events_entry["kept_versions"]
            .as_array()
            .expect("kept")
            .is_empty(),
        "the export runs read an older events version: {events_entry}"
    );

    mark("manifest checked");
    // restore elsewhere: whole pushes, between the acknowledged and the sent ones
    let restored = tmp.path().join("elsewhere/data");
    let summary: Value = serde_json::from_str(&cli(
        &restored,
        &[
            "restore",
            backup.to_str().expect("p"),
            restored.to_str().expect("p"),
        ],
    ))
    .expect("restore line");
    assert_eq!(
        summary["files"],
        manifest["files"].as_array().expect("f").len()
    );
    let pushed: BTreeSet<String> = sql_rows(
        &restored,
        &format!("SELECT event_id FROM events WHERE source = '{SOURCE}'"),
    )
    .into_iter()
    .collect();
    let whole = (0..=PUSHES)
        .find(|&m| (0..m).flat_map(push_ids).collect::<BTreeSet<_>>() == pushed)
        .unwrap_or_else(|| {
            let sent: BTreeSet<String> = (0..PUSHES).flat_map(push_ids).collect();
            let missing: Vec<_> = sent.difference(&pushed).take(40).collect();
            panic!(
                "not whole pushes: {} events; not restored: {missing:?}",
                pushed.len()
            )
        });
    assert!(
        (acked_at_start..=started_at_end).contains(&whole),
        "{whole} pushes restored; {acked_at_start} acknowledged before the backup, {started_at_end} sent by its end"
    );
    let total: usize = sql_rows(&restored, "SELECT count(*) FROM events")[0]
        .parse()
        .expect("count");
    assert_eq!(total, golden_events + pushed.len());

    mark(&format!("restored: {summary}"));
    // its derived tables agree with its events: the reports equal those of a fresh
    // ingest of exactly those events
    let fresh = tmp.path().join("fresh");
    common::ingest_all(
        &fresh,
        &g.join("procedures.csv"),
        &[g.join("events.ndjson")],
    );
    let restored_pushes = tmp.path().join("restored-pushes.ndjson");
    std::fs::write(
        &restored_pushes,
        (0..whole).map(push_body).collect::<String>(),
    )
    .expect("pushes file");
    cli(&fresh, &["ingest", restored_pushes.to_str().expect("p")]);
    let dossiers = |d: &Path| sql_rows(d, "SELECT count(*) FROM dossiers");
    assert_eq!(dossiers(&restored), dossiers(&fresh));
    for ((what, a), (_, b)) in reports(&restored).iter().zip(reports(&fresh)) {
        assert_eq!(a, &b, "{what}: restored vs a fresh ingest of its events");
    }

    mark("restore = fresh ingest of its events");
    // export runs recorded before the backup re-run to the recorded bytes from the restore
    let mut rerun_restored = Vec::new();
    for (i, id) in runs.iter().enumerate() {
        rerun_restored.push(rerun(
            &restored,
            id,
            &tmp.path().join(format!("rerun-r{i}")),
        ));
    }

    mark("export runs re-run from the restore");
    // every push again, to the restore, all at once: the restored ones are duplicates
    // (events are de-duplicated by source and event_id)
    let (again, again_port) = start_server(&restored, &[]);
    let replies: Vec<Value> = (0..sent)
        .map(|i| {
            let token = token.clone();
            std::thread::spawn(move || push(again_port, &token, i))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("push again"))
        .collect();
    drop(again);
    let count = |k: &str| -> u64 { replies.iter().map(|r| r[k].as_u64().expect(k)).sum() };
    let (accepted, duplicates) = (count("accepted"), count("duplicates"));
    let all: usize = (0..sent).map(|i| push_ids(i).len()).sum();
    assert_eq!(duplicates as usize, pushed.len());
    assert_eq!(accepted as usize, all - pushed.len());
    drop(server);

    mark("pushed again to the restore");
    // now source and restore give the same exports, byte for byte
    for ((what, a), (_, b)) in reports(&data).iter().zip(reports(&restored)) {
        assert_eq!(a, &b, "{what}: source vs restore");
    }
    // the XLSX of a report: the same but for its creation time (now; the export re-runs
    // below are the same to the byte, creation time included)
    let xlsx = |d: &Path, out: &Path| {
        cli(
            d,
            &[
                "report",
                "bieu06",
                "--from",
                "2025-12-15",
                "--to",
                "2026-03-14",
                "--format",
                "xlsx",
                "-o",
                s(out),
            ],
        );
        xlsx_parts(out)
    };
    assert_eq!(
        xlsx(&data, &tmp.path().join("source.xlsx")),
        xlsx(&restored, &tmp.path().join("restored.xlsx")),
        "Biểu 06 XLSX: source vs restore"
    );
    for (i, id) in runs.iter().enumerate() {
        let source = rerun(&data, id, &tmp.path().join(format!("rerun-s{i}")));
        assert_eq!(
            source, rerun_restored[i],
            "export run {id}: source vs restore"
        );
    }

    mark("source = restore");
    // a damaged backup is refused, and leaves nothing behind
    let victim = listed
        .iter()
        .find(|p| p.starts_with("tables/events/month=") && p.ends_with(".parquet"))
        .expect("an events file");
    let path = backup.join(victim);
    let mut bytes = std::fs::read(&path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).expect("write");
    let target = tmp.path().join("damaged");
    refused(
        &run(
            &target,
            &["restore", backup.to_str().expect("p"), s(&target)],
        ),
        2,
        victim,
    );
    assert!(!target.exists());
    mark("damaged backup refused");
}

/// A warehouse whose derived tables are behind its events and its stamp behind both (a
/// crash after the derived commits, before the stamp): the backup takes the derived
/// tables at the stamp's versions, the restore catches them up, and reports equal the
/// source's.
#[test]
fn a_backup_behind_its_events_is_caught_up_by_the_restore() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let g = common::root().join("fixtures/golden");
    common::ingest_all(&data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
    let stamp = std::fs::read(data.join("facts_stamp.json")).expect("stamp");
    let more = tmp.path().join("more.ndjson");
    std::fs::write(&more, (0..4).map(push_body).collect::<String>()).expect("more");
    cli(&data, &["ingest", s(&more)]);
    std::fs::write(data.join("facts_stamp.json"), &stamp).expect("old stamp");

    let backup = tmp.path().join("backup");
    cli(&data, &["backup", s(&backup)]);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("BACKUP.json")).expect("manifest"))
            .expect("manifest json");
    let old: Value = serde_json::from_slice(&stamp).expect("stamp json");
    for t in manifest["tables"].as_array().expect("tables") {
        match t["name"].as_str().expect("name") {
            "events" => assert_eq!(t["version"], 1, "{t}"),
            "dossier_facts" => {
                assert_eq!(t["pinned"], "facts_stamp", "{t}");
                assert_eq!(t["version"], old["facts_version"], "{t}");
            }
            _ => {}
        }
    }
    let restored = tmp.path().join("restored");
    let summary: Value =
        serde_json::from_str(&cli(&restored, &["restore", s(&backup), s(&restored)]))
            .expect("restore line");
    assert_eq!(summary["derived_caught_up"], true, "{summary}");
    for ((what, a), (_, b)) in reports(&data).iter().zip(reports(&restored)) {
        assert_eq!(a, &b, "{what}: source vs restore");
    }
}

#[test]
fn a_backup_refuses_a_non_empty_destination_and_a_damaged_source() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let g = common::root().join("fixtures/golden");
    cli(
        &data,
        &[
            "ingest",
            "--format",
            "procedures",
            s(&g.join("procedures.csv")),
        ],
    );

    // a destination with something in it: exit 2, one line, nothing touched
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).expect("dest");
    std::fs::write(dest.join("keep.txt"), "mine").expect("keep");
    refused(&run(&data, &["backup", s(&dest)]), 2, "dest");
    assert_eq!(std::fs::read_dir(&dest).expect("dest").count(), 1);
    assert_eq!(
        std::fs::read_to_string(dest.join("keep.txt")).expect("keep"),
        "mine"
    );
    // inside the data directory, or no data directory at all
    refused(
        &run(&data, &["backup", s(&data.join("b"))]),
        2,
        s(&data.join("b")),
    );
    assert!(!data.join("b").exists());
    refused(
        &run(
            &tmp.path().join("none"),
            &["backup", s(&tmp.path().join("b"))],
        ),
        2,
        "none",
    );

    // an empty destination is fine; restore refuses a non-empty target and a non-backup
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("empty");
    cli(&data, &["backup", s(&empty)]);
    refused(&run(&data, &["restore", s(&empty), s(&dest)]), 2, "dest");
    refused(
        &run(&data, &["restore", s(&dest), s(&tmp.path().join("x"))]),
        2,
        "BACKUP.json",
    );

    // a data file its table needs is gone: the backup fails (after its retries), one line
    let parquet = walk(&data.join("tables/procedures"))
        .into_iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "parquet")
                && !p.to_string_lossy().contains("_delta_log")
        })
        .expect("procedures file");
    std::fs::remove_file(&parquet).expect("remove");
    let out = run(&data, &["backup", s(&tmp.path().join("after"))]);
    refused(
        &out,
        1,
        parquet.file_name().and_then(|n| n.to_str()).expect("n"),
    );
    assert!(!tmp.path().join("after").exists());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
