//! The write path at scale: chunked file ingest equals one chunk (every input shape),
//! incremental derived facts equal a full rebuild on random batches that move dossiers
//! across partitions, and table maintenance changes no report.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use giamsat_ingest::{generate, Format};
use giamsat_queries::bieu06::{self, GroupBy};
use giamsat_warehouse::config::Config;
use giamsat_warehouse::store::Warehouse;

use crate::common;

fn chunked(lines: usize) -> Config {
    let mut c = Config::default();
    c.ingest.chunk_lines = lines;
    c
}

/// Everything a warehouse holds, as text: events, quarantine, facts, states.
async fn dump(wh: &Warehouse) -> Vec<String> {
    let ctx = giamsat_queries::session(wh).await.expect("session");
    let mut out = Vec::new();
    for sql in [
        "SELECT * EXCEPT (ingested_at) FROM events ORDER BY source, event_id",
        "SELECT source, input, line, reason, original FROM quarantine ORDER BY input, line, reason, original",
        "SELECT * FROM dossier_facts ORDER BY dossier_id",
        "SELECT * FROM dossier_states ORDER BY dossier_id, valid_from",
        "SELECT * FROM daily_rollup ORDER BY first_event_month, day_lo, day_hi, province_code, \
         commune_code, agency_code, agency_name, field_code, field_name, procedure_code, \
         procedure_name, procedure_level, channel, non_territorial, sources",
        "SELECT * FROM dossier_sources ORDER BY dossier_id, source",
        "SELECT * FROM open_states ORDER BY dossier_id, valid_from",
        "SELECT * FROM discrepancies ORDER BY dossier_id, kind, source_a, source_b",
        // appended per commit: equal as sums per key (lags depend on when it was ingested,
        // which two ingests of the same file do not share)
        "SELECT source, day, sum(events), min(first_at), max(last_at) FROM source_days \
         GROUP BY source, day ORDER BY source, day",
    ] {
        let b = giamsat_queries::run_sql(&ctx, sql).await.expect(sql);
        out.push(
            giamsat_queries::arrow::util::pretty::pretty_format_batches(&b)
                .expect("fmt")
                .to_string(),
        );
    }
    out
}

async fn ingest_into(
    config: Config,
    procedures: Option<&Path>,
    format: &Format,
    source: Option<&str>,
    files: &[PathBuf],
) -> (tempfile::TempDir, Warehouse, giamsat_ingest::IngestCounts) {
    let dir = tempfile::tempdir().expect("dir");
    let wh = Warehouse::open_with(dir.path(), config).expect("open");
    if let Some(p) = procedures {
        giamsat_ingest::ingest_paths(&wh, &Format::Procedures, None, &[p.to_path_buf()])
            .await
            .expect("procedures");
    }
    let c = giamsat_ingest::ingest_paths(&wh, format, source, files)
        .await
        .expect("ingest");
    (dir, wh, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_in_many_chunks_equals_one_chunk_in_every_shape() {
    let gen = tempfile::tempdir().expect("dir");
    generate::generate(
        gen.path(),
        &generate::Params {
            dossiers: 150,
            seed: 11,
            ..Default::default()
        },
    )
    .expect("generate");
    let procs = gen.path().join("procedures.csv");
    let root = common::root();
    // a CSV whose quoted note holds line breaks, so that records span lines
    let csv = gen.path().join("hotich-multiline.csv");
    let text = std::fs::read_to_string(root.join("fixtures/csv/hotich.csv")).expect("csv");
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().expect("header"));
    for (i, l) in lines.enumerate() {
        if i % 2 == 0 && l.ends_with(',') {
            out.push_str(&format!(
                "{l}\"ghi chú\ndòng hai, \"\"trích\"\"\ndòng ba\"\n"
            ));
        } else {
            out.push_str(&format!("{l}\n"));
        }
    }
    std::fs::write(&csv, out).expect("write");
    let profile = giamsat_ingest::csvprofile::Profile::load(
        &root.join("ingest/profiles/bo-tuphap-hotich.toml"),
    )
    .expect("profile");
    // (name, format, source, file, chunk sizes): the generated files have ~750 lines
    let cases: Vec<(&str, Format, Option<&str>, PathBuf)> = vec![
        (
            "canonical",
            Format::Canonical,
            None,
            gen.path().join("events.ndjson"),
        ),
        (
            "dvcqg lines",
            Format::Dvcqg,
            None,
            gen.path().join("dvcqg.ndjson"),
        ),
        (
            "dvcqg envelope",
            Format::Dvcqg,
            None,
            root.join("fixtures/dvcqg/dongbo_envelope.json"),
        ),
        (
            "dvcqg array",
            Format::Dvcqg,
            None,
            root.join("fixtures/dvcqg/tiendo_array.json"),
        ),
        ("csv", Format::Csv(Box::new(profile)), None, csv),
    ];
    for (name, format, source, file) in cases {
        let one = ingest_into(
            Config::default(),
            Some(&procs),
            &format,
            source,
            std::slice::from_ref(&file),
        )
        .await;
        let sizes: &[usize] = if name.starts_with("dvcqg lines") || name == "canonical" {
            &[97]
        } else {
            &[1, 3]
        };
        for &chunk in sizes {
            let many = ingest_into(
                chunked(chunk),
                Some(&procs),
                &format,
                source,
                std::slice::from_ref(&file),
            )
            .await;
            assert_eq!(one.2, many.2, "{name}: counts with chunks of {chunk}");
            assert_eq!(
                dump(&one.1).await,
                dump(&many.1).await,
                "{name}: tables with chunks of {chunk}"
            );
            // the same file again: every chunk is recognised, nothing is added
            let again =
                giamsat_ingest::ingest_paths(&many.1, &format, source, std::slice::from_ref(&file))
                    .await
                    .expect("again");
            assert_eq!(again.accepted, 0, "{name}: {again:?}");
            assert_eq!(again.quarantined, 0, "{name}: {again:?}");
        }
        assert!(one.2.accepted > 0, "{name}: {:?}", one.2);
    }
}

fn shuffled_batches(
    events: Vec<giamsat_warehouse::Event>,
    seed: u64,
) -> Vec<Vec<giamsat_warehouse::Event>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = events;
    // duplicates across batches too
    for _ in 0..events.len() / 20 {
        let i = rng.random_range(0..events.len());
        events.push(events[i].clone());
    }
    for i in (1..events.len()).rev() {
        let j = rng.random_range(0..=i);
        events.swap(i, j);
    }
    let mut batches = Vec::new();
    while !events.is_empty() {
        let n = rng.random_range(1..=events.len().min(events.len() / 3 + 40));
        batches.push(events.drain(..n).collect());
    }
    batches
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, .. ProptestConfig::default() })]
    /// Each batch goes through the commit path of an HTTP push (facts updated right
    /// after, only the touched dossiers' partitions rewritten). A shuffled order makes
    /// later batches carry earlier events of known dossiers, which moves them to an
    /// earlier partition.
    #[test]
    fn incremental_facts_equal_a_full_rebuild(seed in any::<u64>()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        rt.block_on(async {
            let gen = tempfile::tempdir().expect("dir");
            generate::generate(gen.path(), &generate::Params { dossiers: 200, seed, ..Default::default() }).expect("generate");
            let bytes = std::fs::read(gen.path().join("events.ndjson")).expect("read");
            let (events, _) = giamsat_ingest::parse_canonical(&[giamsat_ingest::Input { name: "x".into(), bytes }], None);
            let dir = tempfile::tempdir().expect("dir");
            let wh = Warehouse::open(dir.path()).expect("wh");
            giamsat_ingest::ingest_paths(&wh, &Format::Procedures, None, &[gen.path().join("procedures.csv")]).await.expect("catalog");
            let batches = shuffled_batches(events, seed);
            assert!(batches.len() >= 3, "{}", batches.len());
            for batch in batches {
                giamsat_ingest::commit_events(&wh, batch, Vec::new()).await.expect("commit");
                // the facts follow every commit: the stamp names the latest versions
                assert!(wh.facts_fresh().await.expect("fresh"), "{:?}", wh.read_stamp());
            }
            let incremental = dump(&wh).await;
            wh.rebuild_facts().await.expect("rebuild");
            assert_eq!(incremental, dump(&wh).await, "incremental facts equal a full rebuild");
        });
    }
}

async fn reports(wh: &Warehouse) -> Vec<String> {
    let ctx = giamsat_queries::session(wh).await.expect("session");
    let mut out = Vec::new();
    for (from, to) in [
        ("2025-07-01", "2026-11-30"),
        ("2026-01-01", "2026-03-31"),
        ("2026-06-15", "2026-06-20"),
    ] {
        for g in [GroupBy::Field, GroupBy::Commune] {
            let p = bieu06::Params::new(
                from.parse().expect("date"),
                to.parse().expect("date"),
                None,
                None,
                g,
            )
            .expect("params");
            let rows = bieu06::run(&ctx, &wh.calendar, &p).await.expect("bieu06");
            out.push(format!("{rows:?}"));
        }
    }
    let b = giamsat_queries::run_sql(
        &ctx,
        "SELECT count(*), count(DISTINCT source || event_id) FROM events",
    )
    .await
    .expect("sql");
    out.push(format!("{b:?}"));
    out
}

/// The compression codecs of the column chunks of every data file under `dir`.
fn parquet_codecs(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                // data files only (not the log's checkpoints)
                if !path.ends_with("_delta_log") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|x| x == "parquet") {
                let r = SerializedFileReader::new(std::fs::File::open(&path).expect("open"))
                    .expect("parquet");
                for g in r.metadata().row_groups() {
                    for c in g.columns() {
                        out.insert(format!("{:?}", c.compression()));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_compacts_and_vacuums_and_changes_no_report() {
    let gen = tempfile::tempdir().expect("dir");
    generate::generate(
        gen.path(),
        &generate::Params {
            dossiers: 300,
            seed: 3,
            ..Default::default()
        },
    )
    .expect("generate");
    // many small commits: chunks of 50 lines, facts updated once at the end
    let (_dir, wh, _) = ingest_into(
        chunked(50),
        Some(&gen.path().join("procedures.csv")),
        &Format::Canonical,
        None,
        &[gen.path().join("events.ndjson")],
    )
    .await;
    let before = reports(&wh).await;
    let done = wh
        .maintain(&Default::default(), 0, chrono::Utc::now())
        .await
        .expect("maintain");
    let events = done.iter().find(|m| m.table == "events").expect("events");
    assert!(
        events.files_after < events.files_before,
        "compaction leaves fewer files: {events:?}"
    );
    assert!(events.files_vacuumed > 0, "{events:?}");
    assert!(done.iter().all(|m| m.checkpoint));
    // compacted files use the codec of every other write (readers pay for a ZSTD decoder
    // per column chunk they open)
    let codecs = parquet_codecs(&wh.root().join("tables"));
    assert!(
        !codecs.is_empty() && codecs.iter().all(|c| c == "SNAPPY"),
        "{codecs:?}"
    );
    // the derived facts are still fresh (the stamp names the compacted versions)
    assert!(wh.facts_fresh().await.expect("fresh"));
    assert_eq!(before, reports(&wh).await, "maintenance changes no report");
    // and a later ingest still updates them incrementally
    let c = giamsat_ingest::ingest_paths(
        &wh,
        &Format::Canonical,
        None,
        &[gen.path().join("events.ndjson")],
    )
    .await
    .expect("again");
    assert_eq!(c.accepted, 0);
    assert_eq!(before, reports(&wh).await);
}

/// A table that takes many small commits (pushes, the access log) gets a checkpoint
/// every `CHECKPOINT_EVERY` commits, so opening it reads a bounded part of its log; the
/// rows read through the checkpoint are every row committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_commits_are_checkpointed() {
    use giamsat_queries::arrow::array::{ArrayRef, Int64Array, RecordBatch};
    use giamsat_queries::arrow::datatypes::{DataType, Field, Schema};
    use giamsat_warehouse::store::CHECKPOINT_EVERY;
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("tmp");
    let wh = Warehouse::open(dir.path()).expect("open");
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let commits = CHECKPOINT_EVERY + 1;
    for n in 0..commits {
        let col: ArrayRef = Arc::new(Int64Array::from(vec![n as i64]));
        let b = RecordBatch::try_new(schema.clone(), vec![col]).expect("batch");
        wh.append_batch("probe", b).await.expect("commit");
    }
    let log = dir.path().join("tables/probe/_delta_log");
    assert!(
        log.join(format!("{CHECKPOINT_EVERY:020}.checkpoint.parquet"))
            .exists(),
        "no checkpoint at version {CHECKPOINT_EVERY}"
    );
    assert!(log.join("_last_checkpoint").exists());
    let t = wh.open_table("probe").await.expect("open").expect("table");
    assert_eq!(t.version(), Some(CHECKPOINT_EVERY));
    let ctx = giamsat_queries::SessionContext::new();
    ctx.register_table("probe", t.table_provider().await.expect("provider"))
        .expect("register");
    let b = giamsat_queries::run_sql(&ctx, "SELECT count(*), sum(n) FROM probe")
        .await
        .expect("sql");
    let col = |i: usize| {
        b[0].column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64")
            .value(0)
    };
    let n = commits as i64;
    assert_eq!((col(0), col(1)), (n, n * (n - 1) / 2));
}
