//! Storage faults: a file ingest runs on a store that fails on purpose
//! (`warehouse::faults`, switched on by `GIAMSAT_FAULTS` in the child process only), for
//! many seeds. After each run:
//!
//! * the command succeeded, or failed with exit 1 and one line on stderr (no panic);
//! * the warehouse, reopened without faults, equals a clean warehouse holding the first
//!   k chunks of the file for some k, possibly with the quarantined records of chunk
//!   k+1 (a chunk commits its quarantine, then its events): a prefix of the commits,
//!   nothing acknowledged lost, no commit half-visible; k is every chunk when the
//!   command succeeded;
//! * no data file is left that the table does not reference (a failed commit removes
//!   what it wrote, whole or torn);
//! * the same ingest without faults then succeeds and gives the clean result.
//!
//! `GIAMSAT_FAULT_SEEDS=N` runs more seeds (default 12); `GIAMSAT_FAULT_SEED=S` runs
//! seed S alone, which reproduces its failure.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use giamsat_ingest::Format;
use giamsat_queries::bieu06::{self, GroupBy};
use giamsat_warehouse::store::Warehouse;

use crate::common::{self, BIN};

/// Probability that one write operation fails.
const RATE: &str = "0.03";
/// Seeds of a CI run: each is a whole ingest in a debug build (~10 s).
const SEEDS: u64 = 10;
/// Lines per chunk (= per commit) of the faulty ingest.
const CHUNK_LINES: usize = 100;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).expect("copy");
        }
    }
}

/// What a reader of the warehouse sees: counts of the stored tables and Biểu 06 by
/// commune over every date, after the derived tables are brought up to date (as any
/// reader does).
async fn fingerprint(data: &Path) -> Seen {
    let wh = Warehouse::open(data).expect("open");
    wh.ensure_facts().await.expect("facts");
    let ctx = giamsat_queries::session(&wh).await.expect("session");
    let mut out = String::new();
    let mut quarantined = 0;
    for sql in [
        "SELECT count(*) AS n FROM events",
        "SELECT count(*) AS n FROM quarantine",
        "SELECT count(*) AS n FROM dossier_facts",
    ] {
        let b = giamsat_queries::run_sql(&ctx, sql).await.expect("sql");
        let n = b
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<giamsat_queries::arrow::array::Int64Array>()
                    .map(|a| a.value(0))
            })
            .expect("a count");
        if sql.contains("quarantine") {
            quarantined = n;
        } else {
            out.push_str(&format!("{sql}: {n}\n"));
        }
    }
    let p = bieu06::Params::new(
        "2024-01-01".parse().expect("date"),
        "2027-12-31".parse().expect("date"),
        None,
        None,
        GroupBy::Commune,
    )
    .expect("params");
    let rows = bieu06::run(&ctx, &wh.calendar, &p).await.expect("bieu06");
    out.push_str(&format!("{rows:?}"));
    Seen {
        quarantined,
        rest: out,
    }
}

/// What [`fingerprint`] sees: the quarantine apart, because a chunk commits its
/// quarantined records first (with the chunk's transaction id, so a retry skips them)
/// and its events second. A failure between the two leaves a state where chunk k+1's
/// quarantine has landed and its events have not: a prefix of the commits.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    quarantined: i64,
    rest: String,
}

/// The data files of the tables that no commit ever added (every version's log entry
/// is kept: `add` actions of all the JSON commits name every file any version reads).
fn orphans(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(data.join("tables"))
        .expect("tables")
        .flatten()
    {
        let log = e.path().join("_delta_log");
        let mut added: HashSet<String> = HashSet::new();
        // a table whose first commit failed may be a directory with no log (yet): then
        // no version references any file in it
        let commits = match std::fs::read_dir(&log) {
            Ok(d) => d.flatten().collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{}: {e}", log.display()),
        };
        for f in commits {
            if f.path().extension().is_some_and(|x| x == "json") {
                let text = std::fs::read_to_string(f.path()).expect("commit");
                for line in text.lines() {
                    let v: serde_json::Value = serde_json::from_str(line).expect("action");
                    if let Some(p) = v["add"]["path"].as_str() {
                        added.insert(p.rsplit('/').next().unwrap_or(p).to_string());
                    }
                }
            }
        }
        let mut stack = vec![e.path()];
        while let Some(d) = stack.pop() {
            for f in std::fs::read_dir(&d).expect("dir").flatten() {
                let p = f.path();
                if p.is_dir() {
                    if f.file_name() != "_delta_log" {
                        stack.push(p);
                    }
                } else if !added.contains(&f.file_name().to_string_lossy().into_owned()) {
                    out.push(p);
                }
            }
        }
    }
    out
}

async fn ingest(data: &Path, file: &Path) {
    let wh = Warehouse::open(data).expect("open");
    giamsat_ingest::ingest_paths(&wh, &Format::Canonical, None, &[file.to_path_buf()])
        .await
        .expect("ingest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_never_loses_or_half_shows_a_commit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let gen = tmp.path().join("gen");
    let out = common::run(
        tmp.path(),
        &[
            "generate",
            "--dossiers",
            "120",
            "--seed",
            "3",
            "--out",
            gen.to_str().expect("path"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(gen.join("events.ndjson")).expect("events");
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() * 2 / 5;
    let a = tmp.path().join("a.ndjson");
    let b = tmp.path().join("b.ndjson");
    std::fs::write(&a, lines[..half].join("\n") + "\n").expect("a");
    let rest = &lines[half..];
    std::fs::write(&b, rest.join("\n") + "\n").expect("b");
    let chunks = rest.len().div_ceil(CHUNK_LINES);
    assert!(chunks >= 3, "{chunks} chunks");

    // the warehouse before the faulty ingest
    let base = tmp.path().join("base");
    std::fs::create_dir_all(&base).expect("base");
    std::fs::write(
        base.join("config.toml"),
        format!("[ingest]\nchunk_lines = {CHUNK_LINES}\n"),
    )
    .expect("config");
    common::ingest_all(&base, &gen.join("procedures.csv"), &[a]);

    // clean references: the base plus the first k chunks, k = 0..=chunks
    let mut references = Vec::new();
    for k in 0..=chunks {
        let d = tmp.path().join(format!("ref{k}"));
        copy_dir(&base, &d);
        if k > 0 {
            let part = tmp.path().join(format!("part{k}.ndjson"));
            let n = (k * CHUNK_LINES).min(rest.len());
            std::fs::write(&part, rest[..n].join("\n") + "\n").expect("part");
            ingest(&d, &part).await;
        }
        references.push(fingerprint(&d).await);
        if k < chunks {
            std::fs::remove_dir_all(&d).expect("rm");
        }
    }
    let full = tmp.path().join(format!("ref{chunks}"));
    assert!(
        references.windows(2).all(|w| w[0] != w[1]),
        "every chunk changes what readers see"
    );

    let seeds = seeds();
    let mut failed_runs = 0;
    let mut partial = 0;
    for seed in &seeds {
        let w = tmp.path().join("w");
        copy_dir(&base, &w);
        let (code, ctx) = faulty(*seed, &w, &["ingest", b.to_str().expect("path")]);
        if code == Some(1) {
            failed_runs += 1;
        }
        let left = orphans(&w);
        assert!(
            left.is_empty(),
            "{ctx}: files no version references: {left:?}"
        );
        let seen = fingerprint(&w).await;
        let k = (0..=chunks)
            .find(|&k| {
                references[k].rest == seen.rest
                    && (references[k].quarantined == seen.quarantined
                        || references
                            .get(k + 1)
                            .is_some_and(|r| r.quarantined == seen.quarantined))
            })
            .unwrap_or_else(|| panic!("{ctx}: a state no prefix of the commits gives:\n{seen:?}"));
        if code == Some(0) {
            assert_eq!(k, chunks, "{ctx}");
        } else if k > 0 && k < chunks {
            partial += 1;
        }
        // the same command without faults finishes the work
        ingest(&w, &b).await;
        assert_eq!(
            fingerprint(&w).await,
            references[chunks],
            "{ctx}: after a clean retry"
        );
        std::fs::remove_dir_all(&w).expect("rm");
    }
    println!(
        "{} seeds at rate {RATE}: {failed_runs} failed runs ({partial} after some chunks had \
         landed)",
        seeds.len()
    );
    if seeds.len() >= 10 {
        // the faults reached the runs, at different points
        assert!(failed_runs >= seeds.len() / 5, "{failed_runs} failed runs");
        assert!(partial > 0);
    }

    // compaction, checkpoint and vacuum on the failing store: the rows never change,
    // a failed compaction leaves no file behind, and a clean run then succeeds
    let mut failed_runs = 0;
    for seed in seeds.iter().take(seeds.len().div_ceil(3)) {
        let w = tmp.path().join("m");
        copy_dir(&full, &w);
        let (code, ctx) = faulty(*seed, &w, &["maintain", "--retention-hours", "0"]);
        if code == Some(1) {
            failed_runs += 1;
        }
        let left = orphans(&w);
        assert!(
            left.is_empty(),
            "maintain {ctx}: files no version references: {left:?}"
        );
        assert_eq!(fingerprint(&w).await, references[chunks], "maintain {ctx}");
        let out = common::run(&w, &["maintain"]);
        assert!(out.status.success(), "maintain {ctx}: the clean run failed");
        assert_eq!(fingerprint(&w).await, references[chunks], "maintain {ctx}");
        std::fs::remove_dir_all(&w).expect("rm");
    }
    println!("maintain: {failed_runs} failed runs");
}

/// The seeds to run: `GIAMSAT_FAULT_SEED` alone, or the first `GIAMSAT_FAULT_SEEDS`
/// (default [`SEEDS`]).
fn seeds() -> Vec<u64> {
    match std::env::var("GIAMSAT_FAULT_SEED") {
        Ok(s) => vec![s.parse().expect("GIAMSAT_FAULT_SEED")],
        Err(_) => {
            let n: u64 = std::env::var("GIAMSAT_FAULT_SEEDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(SEEDS);
            (0..n).collect()
        }
    }
}

/// Run `giamsat --data DATA ARGS` with faults from `seed`: it succeeds silently or fails
/// with exit 1 and one line, never a panic. The exit code and a description.
fn faulty(seed: u64, data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .env("GIAMSAT_FAULTS", format!("seed={seed},rate={RATE}"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("fault injection is on"))
        .collect();
    let code = out.status.code();
    let ctx = format!("seed {seed} {args:?}: exit {code:?}, stderr {said:?}");
    assert!(!stderr.contains("panic"), "{ctx}");
    match code {
        Some(0) => assert!(said.is_empty(), "{ctx}"),
        Some(1) => {
            assert_eq!(said.len(), 1, "{ctx}");
            assert!(said[0].starts_with("giamsat: "), "{ctx}");
        }
        _ => panic!("{ctx}"),
    }
    (code, ctx)
}
