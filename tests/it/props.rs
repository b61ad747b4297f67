//! Property tests over generated data:
//! * ingesting the same events in any order, in several batches, with duplicates, gives
//!   identical reports;
//! * every row of every report satisfies the Biểu 06 identities;
//! * the SQL report equals an independent, naive as-of evaluation of docs/domain.md written
//!   here (no state segments, no SQL), for many random periods.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use chrono::NaiveDate;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use giamsat_ingest::{generate, Input};
use giamsat_queries::bieu06::{self, GroupBy, Row};
use giamsat_warehouse::calendar::{Calendar, CalendarConfig, DAY_MICROS};
use giamsat_warehouse::config::Config;
use giamsat_warehouse::{Event, EventType};

use crate::common;

struct Data {
    dir: tempfile::TempDir,
}

impl Data {
    fn new(dossiers: u64, seed: u64) -> Data {
        let dir = tempfile::tempdir().expect("dir");
        let p = generate::Params {
            dossiers,
            seed,
            ..Default::default()
        };
        generate::generate(dir.path(), &p).expect("generate");
        Data { dir }
    }
    fn events(&self) -> PathBuf {
        self.dir.path().join("events.ndjson")
    }
    fn procedures(&self) -> PathBuf {
        self.dir.path().join("procedures.csv")
    }
}

fn periods(seed: u64, n: usize) -> Vec<(NaiveDate, NaiveDate)> {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    let mut out = vec![
        (d("2025-12-15"), d("2026-03-14")), // official Q1 2026
        (d("2025-12-15"), d("2026-06-14")), // official half year
        (d("2026-02-01"), d("2026-02-28")),
        (d("2025-07-01"), d("2026-11-20")), // everything
        (d("2026-11-20"), d("2026-11-20")), // one day
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    let base = d("2025-06-01");
    for _ in 0..n {
        let a = base + chrono::Days::new(rng.random_range(0..560));
        let b = a + chrono::Days::new(rng.random_range(0..120));
        out.push((a, b));
    }
    out
}

async fn report(l: &common::Loaded, (from, to): (NaiveDate, NaiveDate), g: GroupBy) -> Vec<Row> {
    let p = bieu06::Params::new(from, to, None, None, g).expect("params");
    bieu06::run(&l.ctx, &l.wh.calendar, &p)
        .await
        .expect("report")
}

fn check_identities(rows: &[Row]) {
    let (total, rest) = rows.split_last().expect("TOTAL row");
    assert_eq!(total.group, "TOTAL");
    let mut sum = [0i64; 11];
    for r in rows {
        assert_eq!(r.total, r.ended + r.in_progress, "1 = 5 + 9 in {r:?}");
        assert_eq!(
            r.total,
            r.received_online + r.received_offline + r.carried_over,
            "1 = 2 + 3 + 4 in {r:?}"
        );
        assert_eq!(
            r.ended,
            r.ended_early + r.ended_on_day + r.ended_late,
            "5 = 6 + 7 + 8 in {r:?}"
        );
        assert_eq!(
            r.in_progress,
            r.in_progress_in_time + r.in_progress_overdue,
            "9 = 10 + 11 in {r:?}"
        );
    }
    for r in rest {
        for (s, v) in sum.iter_mut().zip(r.counts()) {
            *s += v;
        }
    }
    assert_eq!(sum, total.counts(), "TOTAL is the sum of the rows");
    let groups: Vec<&str> = rest.iter().map(|r| r.group.as_str()).collect();
    let mut sorted = groups.clone();
    sorted.sort();
    assert_eq!(groups, sorted, "rows sorted by group");
}

/// docs/domain.md "Time rules" and "Biểu 06", evaluated directly for one period.
fn naive_bieu06(
    events: &[Event],
    days: &HashMap<String, f64>,
    cal: &Calendar,
    start: i64,
    end: i64,
) -> BTreeMap<String, [i64; 11]> {
    let mut by: HashMap<&str, Vec<&Event>> = HashMap::new();
    for e in events {
        if let (Some(d), Some(k)) = (e.dossier_id.as_deref(), e.kind()) {
            if !k.is_feedback() {
                by.entry(d).or_default().push(e);
            }
        }
    }
    let mut out: BTreeMap<String, [i64; 11]> = BTreeMap::new();
    for evs in by.values_mut() {
        evs.sort_by(|a, b| {
            (a.at, a.kind(), &a.source, &a.event_id).cmp(&(b.at, b.kind(), &b.source, &b.event_id))
        });
        let kind = |e: &Event| e.kind().expect("kind");
        let Some(received) = evs
            .iter()
            .find(|e| kind(e) == EventType::Received)
            .map(|e| e.at)
        else {
            continue;
        };
        if evs.iter().any(|e| kind(e) == EventType::Rejected) || received >= end {
            continue;
        }
        let end_at = evs.iter().find(|e| kind(e).is_end()).map(|e| e.at);
        if end_at.is_some_and(|e| e < start) {
            continue;
        }
        let field = evs
            .iter()
            .rev()
            .find_map(|e| e.field_code.clone())
            .unwrap_or_default();
        let channel = evs
            .iter()
            .rev()
            .find_map(|e| e.channel.clone())
            .unwrap_or_else(|| "in_person".into());
        let procedure = evs.iter().rev().find_map(|e| e.procedure_code.clone());
        let ended = end_at.is_some_and(|e| e < end);
        let eval = if ended { end_at.unwrap_or(end) } else { end };
        let seen: Vec<&&Event> = evs.iter().filter(|e| e.at <= eval).collect();
        let reported = seen.iter().rev().find_map(|e| e.due_at);
        let (mut requests, mut open, mut wall, mut work) = (0, Vec::new(), 0i64, 0i64);
        let mut last: Option<(i64, EventType)> = None;
        for e in &seen {
            // one step reported by two systems at the same instant counts once
            if last == Some((e.at, kind(e))) {
                continue;
            }
            last = Some((e.at, kind(e)));
            match kind(e) {
                EventType::SupplementRequested => {
                    requests += 1;
                    open.push(e.at);
                }
                EventType::SupplementReceived if !open.is_empty() => {
                    let r = open.remove(0);
                    wall += e.at - r;
                    work += cal.working_micros(r, e.at).expect("in calendar");
                }
                _ => {}
            }
        }
        let due = reported.or_else(|| {
            let d = days.get(procedure.as_deref()?)?;
            cal.add_working_micros(
                received,
                (d * cal.day_len_micros() as f64).round() as i64 + work,
            )
        });
        let judged = if requests == 1 && !open.is_empty() {
            open[0]
        } else if reported.is_some() {
            eval - wall
        } else {
            eval
        };
        let late = requests > 1 || due.is_some_and(|d| judged > d);
        let row = out.entry(field).or_default();
        let mut add = |i: usize| row[i] += 1;
        add(0);
        if received < start {
            add(3);
        } else if channel == "online" {
            add(1);
        } else {
            add(2);
        }
        if ended {
            add(4);
            if late {
                add(7);
            } else if due.is_some_and(|d| cal.local_date(judged) < cal.local_date(d)) {
                add(5);
            } else {
                add(6);
            }
        } else {
            add(8);
            add(if late { 10 } else { 9 });
        }
    }
    out
}

fn parse_all(path: &PathBuf) -> Vec<Event> {
    let input = Input {
        name: "x".into(),
        bytes: std::fs::read(path).expect("read"),
    };
    let (good, _) = giamsat_ingest::parse_canonical(&[input], None);
    let mut seen = HashSet::new();
    good.into_iter()
        .filter(|e| seen.insert((e.source.clone(), e.event_id.clone())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_report_equals_naive_evaluation_and_identities_hold() {
    let data = Data::new(1_500, 11);
    let l = common::load(Config::default(), &data.procedures(), &[data.events()]).await;
    let events = parse_all(&data.events());
    let cal = Calendar::new(&CalendarConfig::default()).expect("cal");
    let input = Input {
        name: "p".into(),
        bytes: std::fs::read(data.procedures()).expect("read"),
    };
    let days: HashMap<String, f64> = giamsat_ingest::procedures::parse(&input)
        .expect("catalog")
        .0
        .into_iter()
        .filter_map(|p| Some((p.procedure_code, p.max_working_days?)))
        .collect();
    let mut nonzero = 0;
    for period in periods(5, 25) {
        let rows = report(&l, period, GroupBy::Field).await;
        check_identities(&rows);
        let start = cal.local_midnight(period.0);
        let end = cal.local_midnight(period.1) + DAY_MICROS;
        let mut want = naive_bieu06(&events, &days, &cal, start, end);
        let mut total = [0i64; 11];
        for v in want.values() {
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
        }
        want.insert("TOTAL".into(), total);
        let got: BTreeMap<String, [i64; 11]> =
            rows.iter().map(|r| (r.group.clone(), r.counts())).collect();
        assert_eq!(got, want, "period {period:?}");
        if total[0] > 0 {
            nonzero += 1;
        }
        for g in [GroupBy::Agency, GroupBy::Commune, GroupBy::Procedure] {
            let rows = report(&l, period, g).await;
            check_identities(&rows);
            assert_eq!(
                rows.last().expect("total").counts(),
                total,
                "same TOTAL for {g:?}"
            );
        }
    }
    assert!(
        nonzero >= 20,
        "the periods must actually contain dossiers ({nonzero})"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, .. ProptestConfig::default() })]
    #[test]
    fn order_batches_and_duplicates_do_not_change_reports(seed in any::<u64>()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        rt.block_on(async {
            let data = Data::new(400, 3);
            let base = common::load(Config::default(), &data.procedures(), &[data.events()]).await;
            // shuffle, duplicate ~10 % of lines, split into three files ingested one by one
            let text = std::fs::read_to_string(data.events()).expect("read");
            let mut lines: Vec<&str> = text.lines().collect();
            let mut rng = StdRng::seed_from_u64(seed);
            for _ in 0..lines.len() / 10 {
                let i = rng.random_range(0..lines.len());
                lines.push(lines[i]);
            }
            for i in (1..lines.len()).rev() {
                let j = rng.random_range(0..=i);
                lines.swap(i, j);
            }
            let third = lines.len() / 3 + 1;
            let dir = tempfile::tempdir().expect("dir");
            let files: Vec<PathBuf> = lines
                .chunks(third)
                .enumerate()
                .map(|(i, c)| {
                    let p = dir.path().join(format!("part{i}.ndjson"));
                    std::fs::write(&p, c.join("\n")).expect("write");
                    p
                })
                .collect();
            let wdir = tempfile::tempdir().expect("dir");
            let wh = giamsat_warehouse::store::Warehouse::open(wdir.path()).expect("wh");
            giamsat_ingest::ingest_paths(&wh, &giamsat_ingest::Format::Procedures, None, &[data.procedures()]).await.expect("catalog");
            let mut accepted = 0;
            for f in &files {
                let c = giamsat_ingest::ingest_paths(&wh, &giamsat_ingest::Format::Canonical, None, std::slice::from_ref(f)).await.expect("ingest");
                accepted += c.accepted;
            }
            assert_eq!(accepted, base.counts.accepted, "same events accepted");
            // the facts updated incrementally after each batch equal a full rebuild
            let dump = |w: &giamsat_warehouse::store::Warehouse| {
                let w = w.root().to_path_buf();
                async move {
                    let w = giamsat_warehouse::store::Warehouse::open(&w).expect("wh");
                    let ctx = giamsat_queries::session(&w).await.expect("session");
                    let b = giamsat_queries::run_sql(&ctx, "SELECT * FROM dossier_facts ORDER BY dossier_id").await.expect("facts");
                    let s = giamsat_queries::run_sql(&ctx, "SELECT * FROM dossier_states ORDER BY dossier_id, valid_from").await.expect("states");
                    (
                        giamsat_queries::arrow::util::pretty::pretty_format_batches(&b).expect("fmt").to_string(),
                        giamsat_queries::arrow::util::pretty::pretty_format_batches(&s).expect("fmt").to_string(),
                    )
                }
            };
            let incremental = dump(&wh).await;
            wh.rebuild_facts().await.expect("rebuild");
            assert_eq!(incremental, dump(&wh).await, "incremental facts equal a full rebuild");
            let ctx = giamsat_queries::session(&wh).await.expect("session");
            let other = common::Loaded { _dir: wdir, wh, ctx, counts: base.counts };
            for period in periods(seed, 4) {
                for g in [GroupBy::Field, GroupBy::Commune] {
                    assert_eq!(report(&base, period, g).await, report(&other, period, g).await, "{period:?} {g:?}");
                }
            }
        });
    }
}
