//! Sync health from the tables kept at ingest (`source_days`, `dossier_sources`) equals
//! the event-level SQL (`health.sql`, the definition): every count, time and the largest
//! lag exactly; the lag percentiles within the stated bound of the exact ones. On the
//! recon fixture (future events, quarantined records, several sources per dossier) at
//! many instants, and on generated data committed in many shuffled batches (the tables
//! are then built by appends and partition rewrites, not by one rebuild).

use giamsat_queries::health::{self, Params, Report};
use giamsat_queries::SessionContext;
use giamsat_warehouse::config::Config;
use giamsat_warehouse::health::LAG_RELATIVE_ERROR;

use crate::common;

/// Exact order statistics of each source's lags (seconds) for events at or before
/// `as_of`, ascending.
async fn lags(ctx: &SessionContext, as_of: i64) -> Vec<(String, Vec<f64>)> {
    let sql = format!(
        "SELECT source, (CAST(ingested_at AS BIGINT) - CAST(at AS BIGINT)) / 1000000.0 AS lag \
         FROM events WHERE CAST(at AS BIGINT) <= {as_of} ORDER BY source, lag"
    );
    let b = giamsat_queries::run_sql(ctx, &sql).await.expect("lags");
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for batch in &b {
        let s = giamsat_warehouse::event::string_col(batch, "source").expect("source");
        let l = batch
            .column_by_name("lag")
            .expect("lag")
            .as_any()
            .downcast_ref::<giamsat_queries::arrow::array::Float64Array>()
            .expect("f64")
            .clone();
        for i in 0..batch.num_rows() {
            match out.last_mut() {
                Some((src, v)) if src == s.value(i) => v.push(l.value(i)),
                _ => out.push((s.value(i).to_string(), vec![l.value(i)])),
            }
        }
    }
    out
}

fn check_percentile(fast: Option<f64>, exact: Option<f64>, sorted: &[f64], q: f64, what: &str) {
    let (Some(f), Some(e)) = (fast, exact) else {
        assert_eq!(fast.is_some(), exact.is_some(), "{what}");
        return;
    };
    let r = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (sorted[r.floor() as usize], sorted[r.ceil() as usize]);
    let bound = LAG_RELATIVE_ERROR * lo.abs().max(hi.abs()) + 1.0 + 1e-6;
    assert!(
        (f - e).abs() <= bound,
        "{what}: from buckets {f}, exact {e}, bound {bound}"
    );
}

/// Both reports at `as_of`: equal but for the percentiles, which are within the bound.
async fn compare(l: &common::Loaded, as_of: i64) -> usize {
    let p = Params::new(as_of);
    let exact: Report = health::run(&l.ctx, &p).await.expect("exact");
    let fast: Report = health::run_with(&l.ctx, &l.wh.calendar, &p)
        .await
        .expect("fast");
    let strip = |r: &Report| {
        let mut r = r.clone();
        for s in &mut r.sources {
            s.lag_p50_seconds = None;
            s.lag_p90_seconds = None;
        }
        r
    };
    assert_eq!(strip(&fast), strip(&exact), "as of {as_of}");
    let sorted = lags(&l.ctx, as_of).await;
    for (f, e) in fast.sources.iter().zip(&exact.sources) {
        let v = sorted
            .iter()
            .find(|(s, _)| *s == e.source)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[]);
        check_percentile(f.lag_p50_seconds, e.lag_p50_seconds, v, 0.5, &e.source);
        check_percentile(f.lag_p90_seconds, e.lag_p90_seconds, v, 0.9, &e.source);
    }
    exact.sources.iter().filter(|s| s.events > 0).count()
}

fn at(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .timestamp_micros()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_from_ingest_tables_equals_event_level_sql_on_the_recon_fixture() {
    let l = common::load_recon(Config::default()).await;
    assert!(l.ctx.table_exist("source_days").expect("exists"));
    let mut with_events = 0;
    for t in [
        "2026-04-01T00:00:00+07:00",
        "2026-04-06T09:00:00+07:00",
        "2026-04-06T08:59:59+07:00",
        "2026-04-13T08:00:00+07:00",
        "2026-04-24T00:00:00+07:00",
        "2026-04-24T15:00:00+07:00",
        "2026-04-24T23:59:59+07:00",
        "2026-04-30T12:00:00+07:00",
        "2026-06-01T00:00:00+07:00",
    ] {
        with_events += compare(&l, at(t)).await;
    }
    assert!(with_events > 15, "{with_events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_from_ingest_tables_after_many_commits_equals_event_level_sql() {
    let gen = tempfile::tempdir().expect("dir");
    giamsat_ingest::generate::generate(
        gen.path(),
        &giamsat_ingest::generate::Params {
            dossiers: 400,
            seed: 5,
            ..Default::default()
        },
    )
    .expect("generate");
    // the events in 7 batches by line order, each its own commit (as HTTP pushes)
    let text = std::fs::read_to_string(gen.path().join("events.ndjson")).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let dir = tempfile::tempdir().expect("dir");
    let wh = giamsat_warehouse::store::Warehouse::open(dir.path()).expect("open");
    giamsat_ingest::ingest_paths(
        &wh,
        &giamsat_ingest::Format::Procedures,
        None,
        &[gen.path().join("procedures.csv")],
    )
    .await
    .expect("catalog");
    for (i, part) in lines.chunks(lines.len() / 7 + 1).enumerate() {
        let (events, bad) = giamsat_ingest::parse_canonical(
            &[giamsat_ingest::Input {
                name: format!("part{i}"),
                bytes: part.join("\n").into_bytes(),
            }],
            None,
        );
        giamsat_ingest::commit_events(&wh, events, bad)
            .await
            .expect("commit");
    }
    let ctx = giamsat_queries::session(&wh).await.expect("session");
    let l = common::Loaded {
        _dir: dir,
        wh,
        ctx,
        counts: Default::default(),
    };
    // the generated data has no portal-only quirks of the fixture, but many dossiers
    let generated_items = {
        use giamsat_queries::recon;
        let p = recon::Params::default();
        let kept = recon::run(&l.ctx, &p).await.expect("kept");
        assert_eq!(
            kept,
            recon::run_from_events(&l.ctx, &p).await.expect("events")
        );
        let sync = (
            l.wh.config.sync.portal_source.clone(),
            l.wh.config.sync.end_time_tolerance_seconds,
        );
        let found = recon::run(
            &l.ctx,
            &recon::Params {
                kept: Some(sync),
                ..p.clone()
            },
        )
        .await
        .expect("found");
        assert_eq!(kept, found);
        kept.items.len()
    };
    assert!(generated_items > 3, "{generated_items}");
    let flagged = compare_alerts(
        &l,
        &[
            "2026-02-01T10:00:00+07:00",
            "2026-11-20T12:00:00+07:00",
            "2026-12-01T08:00:00+07:00",
        ],
    )
    .await;
    assert!(flagged > 3, "{flagged}");
    let mut with_events = 0;
    for t in [
        "2025-09-01T10:00:00+07:00",
        "2026-03-15T00:00:00+07:00",
        "2026-11-20T12:00:00+07:00",
        "2027-01-01T00:00:00+07:00",
    ] {
        with_events += compare(&l, at(t)).await;
    }
    assert!(with_events >= 4, "{with_events}");
}

/// Reconciliation from `dossier_sources` equals reconciliation from the events, for
/// several windows, kinds and tolerances; its pages, walked with `next_cursor`, are the
/// whole list in order.
async fn compare_recon(l: &common::Loaded) -> usize {
    use giamsat_queries::recon::{self, Kind};
    let windows = [
        (None, None),
        (
            Some(at("2026-04-06T00:00:00+07:00")),
            Some(at("2026-04-11T00:00:00+07:00")),
        ),
        (
            Some(at("2026-01-01T00:00:00+07:00")),
            Some(at("2026-06-01T00:00:00+07:00")),
        ),
        (None, Some(at("2026-04-08T00:00:00+07:00"))),
    ];
    let sync = (
        l.wh.config.sync.portal_source.clone(),
        l.wh.config.sync.end_time_tolerance_seconds,
    );
    // the server's unscoped session reads the kept discrepancies too (it once had only
    // the per-source rows, and computed every discrepancy on every request)
    let server =
        giamsat_queries::scoped_session(&l.ctx, std::sync::Arc::new(l.wh.calendar.clone()), None)
            .await
            .expect("session");
    assert!(server
        .table_exist(giamsat_warehouse::discrepancy::DISCREPANCIES)
        .expect("exist"));
    let mut items = 0;
    for (from, to) in windows {
        for kind in [None, Some(Kind::LostState), Some(Kind::Duplicate)] {
            for tolerance_seconds in [0, 3_600, 86_400] {
                let p = recon::Params {
                    from,
                    to,
                    kind,
                    tolerance_seconds,
                    ..recon::Params::default()
                };
                // per (dossier, source) kept; and the discrepancies kept (used when the
                // settings are the warehouse's: the default tolerance)
                let kept = recon::run(&l.ctx, &p).await.expect("kept");
                let found = recon::run(
                    &l.ctx,
                    &recon::Params {
                        kept: Some(sync.clone()),
                        ..p.clone()
                    },
                )
                .await
                .expect("found");
                let exact = recon::run_from_events(&l.ctx, &p).await.expect("events");
                let served = recon::run(
                    &server,
                    &recon::Params {
                        kept: Some(sync.clone()),
                        ..p.clone()
                    },
                )
                .await
                .expect("served");
                assert_eq!(served, exact, "server session: {p:?}");
                assert_eq!(kept, exact, "{p:?}");
                assert_eq!(found, exact, "kept discrepancies: {p:?}");
                items += exact.items.len();
            }
        }
        // pages of 2 walked with the cursor = the whole list
        let all = recon::run(
            &l.ctx,
            &recon::Params {
                from,
                to,
                kept: Some(sync.clone()),
                ..recon::Params::default()
            },
        )
        .await
        .expect("all");
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = recon::run(
                &l.ctx,
                &recon::Params {
                    from,
                    to,
                    limit: 2,
                    cursor: cursor.clone(),
                    kept: Some(sync.clone()),
                    ..recon::Params::default()
                },
            )
            .await
            .expect("page");
            assert!(page.items.len() <= 2);
            paged.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(
            paged, all.items,
            "pages of 2 = the whole list ({from:?}..{to:?})"
        );
    }
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_from_ingest_tables_equals_reconciliation_from_events() {
    let l = common::load_recon(Config::default()).await;
    let items = compare_recon(&l).await;
    assert!(items > 50, "{items}");
    // a bad cursor is the user's fault
    let p = giamsat_queries::recon::Params {
        cursor: Some("zz".into()),
        ..Default::default()
    };
    assert!(matches!(
        giamsat_queries::recon::run(&l.ctx, &p).await,
        Err(giamsat_queries::QueryError::BadInput(_))
    ));
}

/// Alerts from `open_states` and the kept last events equal alerts from the facts, the
/// state segments and the events, at instants before, between and after the dossiers'
/// ends (before some end, the open dossiers come from the facts again).
async fn compare_alerts(l: &common::Loaded, instants: &[&str]) -> i64 {
    use giamsat_queries::alerts;
    let mut flagged = 0;
    for t in instants {
        for (province, commune) in [
            (None, None),
            (Some("31".to_string()), None),
            (None, Some("11311".to_string())),
        ] {
            let mut p = alerts::Params::new(at(t));
            p.province = province.clone();
            p.commune = commune.clone();
            p.limit = 7;
            let kept = alerts::run(&l.ctx, &l.wh.calendar, &p).await.expect("kept");
            let exact = alerts::run_from_events(&l.ctx, &l.wh.calendar, &p)
                .await
                .expect("events");
            assert_eq!(kept, exact, "alerts at {t} ({province:?}, {commune:?})");
            flagged += exact.summary.total;
        }
    }
    flagged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_from_ingest_tables_equal_alerts_from_facts_and_events() {
    let l = common::load_recon(Config::default()).await;
    let flagged = compare_alerts(
        &l,
        &[
            "2026-04-10T12:00:00+07:00",
            "2026-04-17T09:00:00+07:00",
            "2026-04-24T15:00:00+07:00",
            "2026-04-30T10:00:00+07:00",
            "2026-05-20T10:00:00+07:00",
        ],
    )
    .await;
    assert!(flagged > 10, "{flagged}");
}
