//! Ingest that loses nothing: HTTP push (roles, sources, idempotency, group commit) and
//! crash tests that kill -9 the real binary at random moments.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{self, cli, request, start_server, BIN};

fn push(port: u16, token: &str, query: &str, key: Option<&str>, body: &str) -> common::Reply {
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(k) = key {
        headers.push(("Idempotency-Key", k));
    }
    common::request_with(
        port,
        "POST",
        &format!("/api/v1/events?{query}"),
        Some(token),
        &headers,
        Some(body),
    )
}

fn counts(r: &common::Reply) -> (u64, u64, u64) {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let n = |k: &str| v[k].as_u64().expect(k);
    (n("accepted"), n("duplicates"), n("quarantined"))
}

#[test]
fn http_push_roles_idempotency_and_group_commit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let g = common::root().join("fixtures/golden");
    common::ingest_all(&data, &g.join("procedures.csv"), &[]);
    let ingest = cli(
        &data,
        &["token", "add", "--role", "ingest", "--source", "gs"],
    );
    let admin = cli(&data, &["token", "add", "--role", "admin"]);
    let viewer = cli(&data, &["token", "add", "--role", "viewer"]);
    let (_server, port) = start_server(&data, &[]);
    let body = std::fs::read_to_string(g.join("events.ndjson")).expect("fixture");

    assert_eq!(push(port, &viewer, "source=gs", None, &body).status, 403);
    assert_eq!(push(port, &ingest, "source=other", None, &body).status, 403);
    assert_eq!(push(port, &ingest, "", None, &body).status, 400);
    // 88 lines: 86 distinct events, one repeated line, one malformed line; the ingest
    // token may not push the three `dvcqg` records (G27, G34): quarantined, not dropped
    assert_eq!(
        counts(&push(port, &ingest, "source=gs", None, &body)),
        (83, 1, 4)
    );
    // a retry with a key adds nothing; its second retry does not even re-quarantine
    assert_eq!(
        counts(&push(port, &ingest, "source=gs", Some("k1"), &body)),
        (0, 84, 4)
    );
    assert_eq!(
        counts(&push(port, &ingest, "source=gs", Some("k1"), &body)),
        (0, 84, 0)
    );
    // the admin pushes the portal's record
    let dvcqg_line = body
        .lines()
        .find(|l| l.contains("\"dvcqg\""))
        .expect("G27 dvcqg line");
    assert_eq!(
        counts(&push(port, &admin, "source=dvcqg", None, dvcqg_line)),
        (1, 0, 0)
    );
    // the pushed data is what reports see: the golden January
    let jan = request(
        port,
        "GET",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-01-31",
        Some(&admin),
        None,
    )
    .json();
    assert_eq!(
        jan.as_array().and_then(|a| a.last()).expect("TOTAL")["total"],
        15
    );

    // concurrent pushes of disjoint batches are all committed
    let gen = tmp.path().join("gen");
    cli(
        &data,
        &[
            "generate",
            "--out",
            gen.to_str().expect("p"),
            "--dossiers",
            "200",
            "--seed",
            "4",
        ],
    );
    let text = std::fs::read_to_string(gen.join("events.ndjson")).expect("gen");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let chunks: Vec<String> = lines
        .chunks(lines.len() / 8 + 1)
        .map(|c| c.join("\n"))
        .collect();
    let admin2 = admin.clone();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|c| {
            let t = admin2.clone();
            std::thread::spawn(move || counts(&push(port, &t, "source=hp-motcua", None, &c)))
        })
        .collect();
    let total: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .map(|(a, d, q)| a + d + q)
        .sum();
    assert_eq!(total, lines.len() as u64, "every line accounted for");
    let n = request(port, "POST", "/api/v1/sql", Some(&admin), Some(r#"{"sql":"SELECT count(*) AS n, count(DISTINCT source || '/' || event_id) AS d FROM events"}"#)).json();
    assert_eq!(n[0]["n"], n[0]["d"], "no duplicate event ids");
}

fn split_events(dir: &Path, dossiers: u64, seed: u64, parts: usize) -> (PathBuf, Vec<PathBuf>) {
    let gen = dir.join("gen");
    let out = Command::new(BIN)
        .args([
            "generate",
            "--out",
            gen.to_str().expect("p"),
            "--dossiers",
            &dossiers.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .expect("generate");
    assert!(out.status.success());
    let text = std::fs::read_to_string(gen.join("events.ndjson")).expect("events");
    let lines: Vec<&str> = text.lines().collect();
    let files = lines
        .chunks(lines.len() / parts + 1)
        .enumerate()
        .map(|(i, c)| {
            let p = gen.join(format!("part{i}.ndjson"));
            std::fs::write(&p, c.join("\n")).expect("write");
            p
        })
        .collect();
    (gen.join("procedures.csv"), files)
}

fn outcome(data: &Path) -> (String, String) {
    let count = cli(
        data,
        &[
            "sql",
            "SELECT count(*) AS n, count(DISTINCT source || '/' || event_id) AS d FROM events",
            "--format",
            "csv",
        ],
    );
    let report = cli(
        data,
        &[
            "report",
            "bieu06",
            "--from",
            "2025-07-01",
            "--to",
            "2026-11-20",
            "--group-by",
            "commune",
        ],
    );
    (count, report)
}

#[test]
fn kill_minus_nine_during_file_ingest_loses_and_doubles_nothing() {
    kill_file_ingest(None);
}

/// Files of ~190 lines in chunks of 40: kills land before, inside and between the
/// chunks' commits and during the facts catch-up after the last one.
#[test]
fn kill_minus_nine_during_chunked_file_ingest_loses_and_doubles_nothing() {
    kill_file_ingest(Some(40));
}

fn kill_file_ingest(chunk_lines: Option<usize>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (procs, files) = split_events(tmp.path(), 300, 9, 8);
    let config = |dir: &Path| {
        std::fs::create_dir_all(dir).expect("dir");
        if let Some(n) = chunk_lines {
            std::fs::write(
                dir.join("config.toml"),
                format!("[ingest]\nchunk_lines = {n}\n"),
            )
            .expect("config");
        }
    };
    // the clean run reads every file in one chunk
    let clean = tmp.path().join("clean");
    common::ingest_all(&clean, &procs, &[]);
    for f in &files {
        cli(&clean, &["ingest", f.to_str().expect("p")]);
    }
    let want = outcome(&clean);
    let (n, d) = want
        .0
        .lines()
        .nth(1)
        .and_then(|l| l.split_once(','))
        .expect("counts");
    assert_eq!(n, d);
    // kill at a random moment within the fastest uninterrupted ingest of that config
    let timing = tmp.path().join("timing");
    config(&timing);
    common::ingest_all(&timing, &procs, &[]);
    let mut fastest = Duration::MAX;
    for f in &files {
        let start = std::time::Instant::now();
        cli(&timing, &["ingest", f.to_str().expect("p")]);
        fastest = fastest.min(start.elapsed());
    }
    let window = (fastest.as_millis() as u64).max(20);

    let crash = tmp.path().join("crash");
    config(&crash);
    common::ingest_all(&crash, &procs, &[]);
    let mut rng = StdRng::seed_from_u64(2026);
    // keep killing at random moments until 50 kills landed while an ingest was running
    let mut killed = 0;
    let mut attempts = 0;
    while killed < 50 && attempts < 400 {
        let f = &files[attempts % files.len()];
        attempts += 1;
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(&crash)
            .arg("ingest")
            .arg(f)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(rng.random_range(0..window)));
        if child.try_wait().expect("wait").is_none() {
            killed += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().ok();
    }
    assert_eq!(
        killed, 50,
        "50 ingests killed mid-way ({attempts} attempts)"
    );
    for f in &files {
        cli(&crash, &["ingest", f.to_str().expect("p")]);
    }
    assert_eq!(outcome(&crash), want);
}

#[test]
fn kill_minus_nine_during_http_push_loses_and_doubles_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (procs, files) = split_events(tmp.path(), 300, 10, 4);
    let bodies: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    let clean = tmp.path().join("clean");
    common::ingest_all(&clean, &procs, &files);
    let want = outcome(&clean);

    let crash = tmp.path().join("crash");
    common::ingest_all(&crash, &procs, &[]);
    let token = cli(&crash, &["token", "add", "--role", "admin"]);
    let mut rng = StdRng::seed_from_u64(766);
    let mut killed_mid = 0;
    for i in 0..50 {
        let (server, port) = start_server(&crash, &[]);
        let body = bodies[i % bodies.len()].clone();
        let t = token.clone();
        let key = format!("part-{}", i % bodies.len());
        let h = std::thread::spawn(move || {
            std::panic::catch_unwind(|| {
                push(port, &t, "source=hp-motcua", Some(&key), &body).status
            })
            .ok()
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(0..600)));
        drop(server); // kill -9
        if h.join().expect("thread").is_none() {
            killed_mid += 1;
        }
    }
    assert!(
        killed_mid >= 5,
        "some pushes must be cut mid-way ({killed_mid} of 50)"
    );
    // the client retries everything, then the result equals a clean run
    let (_server, port) = start_server(&crash, &[]);
    for (i, b) in bodies.iter().enumerate() {
        let r = push(
            port,
            &token,
            "source=hp-motcua",
            Some(&format!("part-{i}")),
            b,
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    drop(_server);
    let got = outcome(&crash);
    assert_eq!(got.1, want.1, "Biểu 06 equals a clean run");
    let v: Vec<&str> = got.0.lines().nth(1).expect("row").split(',').collect();
    let w: Vec<&str> = want.0.lines().nth(1).expect("row").split(',').collect();
    assert_eq!(v[0], v[1], "no duplicate event ids");
    assert_eq!(v[0], w[0], "same number of events");
}

#[test]
fn ten_thousand_bad_records_among_a_million_good_ones() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("big.ndjson");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let kinds = ["received", "processing", "resolved", "returned"];
    let mut good = 0u64;
    let mut bad = 0u64;
    for d in 0..250_000u64 {
        let day = 2 + d % 25;
        for (k, kind) in kinds.iter().enumerate() {
            writeln!(
                w,
                r#"{{"source":"hp-motcua","dossier_id":"D{d:07}","type":"{kind}","at":"2026-03-{day:02}T{:02}:{:02}:00+07:00","field_code":"CT"}}"#,
                8 + k,
                d % 60
            )
            .expect("write");
            good += 1;
            if good.is_multiple_of(100) {
                let line = match bad % 5 {
                    0 => format!(
                        r#"{{"source":"hp-motcua","dossier_id":"B{bad}","type":"received","at":"2026-02-30T08:00:00+07:00"}}"#
                    ),
                    1 => format!(
                        r#"{{"source":"hp-motcua","dossier_id":"B{bad}","type":"recieved","at":"2026-03-02T08:00:00+07:00"}}"#
                    ),
                    2 => format!(
                        r#"{{"source":"HP MOTCUA","dossier_id":"B{bad}","type":"received","at":"2026-03-02T08:00:00+07:00"}}"#
                    ),
                    3 => format!(
                        r#"{{"source":"hp-motcua","type":"received","at":"2026-03-02T08:00:00+07:00","x":{bad}}}"#
                    ),
                    _ => {
                        format!(r#"{{"source":"hp-motcua","dossier_id":"B{bad}","type":"received""#)
                    }
                };
                writeln!(w, "{line}").expect("write");
                bad += 1;
            }
        }
    }
    w.flush().expect("flush");
    drop(w);
    assert_eq!((good, bad), (1_000_000, 10_000));
    let data = tmp.path().join("data");
    let c: serde_json::Value =
        serde_json::from_str(&cli(&data, &["ingest", path.to_str().expect("p")])).expect("json");
    assert_eq!(c["accepted"], 1_000_000, "{c}");
    assert_eq!(c["quarantined"], 10_000, "{c}");
    assert_eq!(c["duplicates"], 0, "{c}");
    let q = cli(
        &data,
        &[
            "sql",
            "SELECT (SELECT count(*) FROM events) AS events, count(*) AS quarantined, \
             count(DISTINCT reason) > 5 AS varied, min(length(reason)) > 0 AS reasons, \
             min(length(encode(original, 'hex'))) > 0 AS bytes FROM quarantine",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        q.lines().nth(1),
        Some("1000000,10000,true,true,true"),
        "{q}"
    );
}
