//! The daily rollup answers Biểu 06, and the Decision 766 counts of a whole scope, exactly
//! as the dossier-level SQL does (`period_dossiers.sql` and `index766_flags.sql` stay the
//! definitions): random periods, every grouping, random drill-down filters and
//! territorial scopes, on generated data and on the adversarial
//! golden fixture (dossiers ended before they were received, supplements, pauses,
//! "always overdue" states, rejected and unknown ones).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use giamsat_ingest::generate;
use giamsat_queries::bieu06::{self, Filters, GroupBy, Params};
use giamsat_queries::index766::{self, Index766Config, Unit};
use giamsat_queries::period::Period;
use giamsat_queries::SessionContext;
use giamsat_warehouse::config::Config;

use crate::common;

/// The distinct non-null values of a facts column.
async fn values(ctx: &SessionContext, column: &str) -> Vec<String> {
    let sql = format!(
        "SELECT DISTINCT CAST({column} AS VARCHAR) AS v FROM dossier_facts \
         WHERE {column} IS NOT NULL ORDER BY v"
    );
    let b = giamsat_queries::run_sql(ctx, &sql).await.expect("values");
    let mut out = Vec::new();
    for batch in &b {
        let c = giamsat_warehouse::event::string_col(batch, "v").expect("v");
        for i in 0..batch.num_rows() {
            out.push(c.value(i).to_string());
        }
    }
    out
}

fn pick(rng: &mut StdRng, v: &[String]) -> Option<String> {
    if v.is_empty() || rng.random_bool(0.8) {
        None
    } else {
        Some(v[rng.random_range(0..v.len())].clone())
    }
}

/// The local days on which something changes (received, ended, a state segment starts,
/// a dossier turns overdue), each with the days before and after: periods that start
/// or end there hit every edge of the rules.
async fn edge_days(l: &common::Loaded) -> Vec<NaiveDate> {
    let sql = "SELECT DISTINCT CAST(CAST(t AS DATE) AS VARCHAR) AS v FROM ( \
        SELECT received_at + INTERVAL '7 hours' AS t FROM dossier_facts \
        UNION ALL SELECT ended_at + INTERVAL '7 hours' FROM dossier_facts \
        UNION ALL SELECT valid_from + INTERVAL '7 hours' FROM dossier_states \
        UNION ALL SELECT overdue_after + INTERVAL '7 hours' FROM dossier_states \
            WHERE overdue_after > TIMESTAMP '2000-01-01T00:00:00Z') x WHERE t IS NOT NULL";
    let b = giamsat_queries::run_sql(&l.ctx, sql)
        .await
        .expect("edge days");
    let mut out = Vec::new();
    for batch in &b {
        let c = giamsat_warehouse::event::string_col(batch, "v").expect("v");
        for i in 0..batch.num_rows() {
            let d: NaiveDate = c.value(i).parse().expect("date");
            out.extend([d.pred_opt(), Some(d), d.succ_opt()].into_iter().flatten());
        }
    }
    out.sort();
    out.dedup();
    assert!(out.len() > 10, "{out:?}");
    out
}

fn period(rng: &mut StdRng, days: &[NaiveDate]) -> (NaiveDate, NaiveDate) {
    let a = days[rng.random_range(0..days.len())];
    let b = days[rng.random_range(0..days.len())];
    (a.min(b), a.max(b))
}

/// Compare both paths on `cases` random reports of a loaded warehouse: the number of
/// reports that had a group, and the Decision 766 counts that were not zero in some case.
async fn compare(l: &common::Loaded, seed: u64, cases: usize) -> (usize, BTreeSet<String>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let cal = Arc::new(l.wh.calendar.clone());
    let agencies = values(&l.ctx, "agency_code").await;
    let fields = values(&l.ctx, "field_code").await;
    let procedures = values(&l.ctx, "procedure_code").await;
    let communes = values(&l.ctx, "commune_code").await;
    let provinces = values(&l.ctx, "province_code").await;
    assert!(
        giamsat_queries::rollup::available(&l.ctx)
            && giamsat_queries::rollup::has_index766(&l.ctx).await,
        "the session reads the rollup, with its Decision 766 columns"
    );
    let days = edge_days(l).await;
    let mut nonempty = 0;
    let mut seen = BTreeSet::new();
    for case in 0..cases {
        // a territorial scope in a third of the cases (commune- or province-scoped token)
        let scope: Option<(Vec<String>, Vec<String>)> = match rng.random_range(0..3) {
            0 => Some((vec![], pick(&mut rng, &communes).into_iter().collect())),
            1 => Some((pick(&mut rng, &provinces).into_iter().collect(), vec![])),
            _ => None,
        };
        let ctx = match &scope {
            None => l.ctx.clone(),
            Some((p, c)) => giamsat_queries::scoped_session(&l.ctx, cal.clone(), Some((p, c)))
                .await
                .expect("scoped"),
        };
        let (from, to) = period(&mut rng, &days);
        let group_by = GroupBy::ALL[rng.random_range(0..GroupBy::ALL.len())].1;
        let levels = [
            "full_online".to_string(),
            "partial_online".to_string(),
            "offline".to_string(),
        ];
        let filters = Filters {
            agency: pick(&mut rng, &agencies),
            field: pick(&mut rng, &fields),
            procedure: if rng.random_bool(0.15) {
                pick(&mut rng, &procedures)
            } else {
                None
            },
            procedure_level: pick(&mut rng, &levels),
            non_territorial: if rng.random_bool(0.2) {
                Some(rng.random_bool(0.5))
            } else {
                None
            },
        };
        let province = if rng.random_bool(0.2) {
            pick(&mut rng, &provinces)
        } else {
            None
        };
        let commune = if rng.random_bool(0.2) {
            pick(&mut rng, &communes)
        } else {
            None
        };
        let p = Params::new(from, to, province, commune, group_by)
            .expect("params")
            .with_filters(filters)
            .expect("filters");
        let fast = giamsat_queries::rollup::run(&ctx, &l.wh.calendar, &p)
            .await
            .expect("rollup");
        let slow = bieu06::run_dossiers(&ctx, &l.wh.calendar, &p)
            .await
            .expect("dossiers");
        assert_eq!(
            fast, slow,
            "case {case}: {p:?} scope {scope:?}: rollup (left) vs dossier-level SQL (right)"
        );
        // the trend's one-pass totals: the same TOTAL row, here and (in every fourth case)
        // for a second period read in the same pass
        let mut ranges = vec![(from, to)];
        let mut expected = vec![slow.last().cloned().expect("TOTAL")];
        if case % 4 == 0 {
            let (f2, t2) = period(&mut rng, &days);
            let p2 = Params::new(f2, t2, p.province.clone(), p.commune.clone(), group_by)
                .expect("params")
                .with_filters(p.filters.clone())
                .expect("filters");
            let slow2 = bieu06::run_dossiers(&ctx, &l.wh.calendar, &p2)
                .await
                .expect("dossiers");
            ranges.push((f2, t2));
            expected.push(slow2.last().cloned().expect("TOTAL"));
        }
        let totals = giamsat_queries::rollup::totals(&ctx, &l.wh.calendar, &p, &ranges)
            .await
            .expect("totals");
        assert_eq!(
            totals, expected,
            "case {case}: {ranges:?} {p:?} scope {scope:?}: one-pass totals (left) vs dossier-level SQL (right)"
        );
        if slow.len() > 1 {
            nonempty += 1;
        }
        seen.extend(
            index766_case(
                &ctx,
                l,
                &p,
                case % 8 == 0,
                &format!("case {case}: scope {scope:?}"),
            )
            .await,
        );
    }
    (nonempty, seen)
}

/// The Decision 766 counts of the whole scope and its index, from the rollup and from the
/// dossier-level SQL (the index itself only when `full`), for the period and territory
/// of `p` and its agency filter. Returns the names of the counts that were not zero.
async fn index766_case(
    ctx: &SessionContext,
    l: &common::Loaded,
    p: &Params,
    full: bool,
    what: &str,
) -> Vec<String> {
    let cfg = Index766Config::from_toml(index766::DEFAULT_CONFIG).expect("config");
    let ip = index766::Params::new(
        Period::range(p.from, p.to),
        p.province.clone(),
        p.commune.clone(),
        p.filters.agency.clone(),
        Unit::Total,
    )
    .expect("params");
    let counts = |from_rollup: bool| {
        let (cfg, ip) = (&cfg, &ip);
        async move {
            let (units, _) = index766::dossier_counts(ctx, &l.wh.calendar, cfg, ip, from_rollup)
                .await
                .expect("766 counts");
            // TOTAL, without the counts that are zero (the dossier-level SQL has no row
            // when the period has no dossier)
            let mut total: Vec<(String, i64)> = units
                .get("TOTAL")
                .map(|(_, c)| c.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default();
            total.retain(|(_, v)| *v != 0);
            total.sort();
            total
        }
    };
    let (fast, slow) = (counts(true).await, counts(false).await);
    assert_eq!(
        fast, slow,
        "{what}: {ip:?}: 766 counts from the rollup (left) vs dossier-level SQL (right)"
    );
    let nonzero = fast.iter().map(|(k, _)| k.clone()).collect();
    if !full {
        return nonzero;
    }
    let fast = index766::run(ctx, &l.wh.calendar, &cfg, &ip)
        .await
        .expect("766");
    let slow = index766::run_dossiers(ctx, &l.wh.calendar, &cfg, &ip)
        .await
        .expect("766 dossiers");
    assert_eq!(fast, slow, "{what}: {ip:?}: the index from both");
    nonzero
}

/// Dossiers at the edges the golden fixture lacks: ended before received (two days
/// apart and on the same day), received and ended exactly at local midnight; and what
/// the Decision 766 counts need that it lacks: flags (paid online, VNeID, digitized,
/// data reused, result digitized) on a dossier ended before it was received and on one
/// carried over from January, and citizens' feedback linked to dossiers (after the
/// dossier ended, while it is open, on a dossier ended before it was received).
const EDGES: &str = r#"{"source":"gs","event_id":"x1a","dossier_id":"X1","type":"received","at":"2026-02-10T09:00:00+07:00","procedure_code":"1.000001","field_code":"CT","agency_code":"31.11311","province_code":"31","commune_code":"11311","channel":"online","paid_online":true,"vneid":true,"digitized":true,"data_reused":true}
{"source":"gs","event_id":"x1b","dossier_id":"X1","type":"resolved","at":"2026-02-05T10:00:00+07:00","result_digitized":true}
{"source":"gs","event_id":"x2a","dossier_id":"X2","type":"received","at":"2026-02-20T15:00:00+07:00","procedure_code":"1.000001","field_code":"CT","agency_code":"31.11311","province_code":"31","commune_code":"11311","channel":"in_person"}
{"source":"gs","event_id":"x2b","dossier_id":"X2","type":"resolved","at":"2026-02-20T08:00:00+07:00"}
{"source":"gs","event_id":"x3a","dossier_id":"X3","type":"received","at":"2026-03-01T00:00:00+07:00","procedure_code":"1.000001","field_code":"CT","agency_code":"31.11311","province_code":"31","commune_code":"11311","channel":"online"}
{"source":"gs","event_id":"x3b","dossier_id":"X3","type":"resolved","at":"2026-03-05T00:00:00+07:00"}
{"source":"gs","event_id":"x1f","feedback_id":"F91","dossier_id":"X1","type":"feedback_received","at":"2026-02-12T09:00:00+07:00"}
{"source":"gs","event_id":"x4a","dossier_id":"X4","type":"received","at":"2026-01-20T10:00:00+07:00","procedure_code":"1.000001","field_code":"CT","agency_code":"31.11311","province_code":"31","commune_code":"11311","channel":"online","paid_online":true,"vneid":true}
{"source":"gs","event_id":"x4b","dossier_id":"X4","type":"resolved","at":"2026-03-10T10:00:00+07:00","result_digitized":true}
{"source":"gs","event_id":"x4f","feedback_id":"F92","dossier_id":"X4","type":"feedback_received","at":"2026-03-15T09:00:00+07:00"}
{"source":"gs","event_id":"x5a","dossier_id":"X5","type":"received","at":"2026-02-25T10:00:00+07:00","procedure_code":"1.000003","field_code":"DD","agency_code":"31.11311","province_code":"31","commune_code":"11311","channel":"in_person","digitized":true,"data_reused":true}
{"source":"gs","event_id":"x5f","feedback_id":"F93","dossier_id":"X5","type":"feedback_received","at":"2026-02-26T09:00:00+07:00"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_equals_dossier_level_sql_on_the_golden_fixture() {
    let extra = tempfile::tempdir().expect("dir");
    std::fs::write(extra.path().join("edges.ndjson"), EDGES).expect("write");
    let g = common::root().join("fixtures/golden");
    let l = common::load(
        Config::default(),
        &g.join("procedures.csv"),
        &[g.join("events.ndjson"), extra.path().join("edges.ndjson")],
    )
    .await;
    let b = giamsat_queries::run_sql(
        &l.ctx,
        "SELECT count(*) AS n FROM dossier_facts WHERE dossier_id IN ('X1', 'X2', 'X3') AND counted",
    )
    .await
    .expect("edges");
    assert_eq!(
        giamsat_queries::arrow::util::pretty::pretty_format_batches(&b)
            .expect("fmt")
            .to_string()
            .matches("| 3 |")
            .count(),
        1,
        "the three edge dossiers are counted"
    );
    let (nonempty, seen) = compare(&l, 11, 120).await;
    assert!(nonempty > 20, "{nonempty} of 120 reports had a group");
    // the edge dossiers' flags and feedback were counted somewhere, so the comparison
    // of every 766 count could fail
    for count in [
        "dossiers_with_feedback",
        "dossiers_synced",
        "received_with_fee_paid_online",
        "received_digitized",
        "received_data_reused",
        "received_vneid",
        "ended_certified_digitized",
        "online_procedures_with_online_dossiers",
        "fee_procedures_paid_online",
        "procedures_with_vneid_dossiers",
    ] {
        assert!(
            seen.contains(count),
            "{count} was 0 in every case: {seen:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, .. ProptestConfig::default() })]
    #[test]
    fn rollup_equals_dossier_level_sql_on_generated_data(seed in any::<u64>()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        rt.block_on(async {
            let gen = tempfile::tempdir().expect("dir");
            generate::generate(gen.path(), &generate::Params { dossiers: 600, seed, ..Default::default() }).expect("generate");
            let l = common::load(
                Config::default(),
                &gen.path().join("procedures.csv"),
                &[gen.path().join("events.ndjson")],
            ).await;
            let (nonempty, _) = compare(&l, seed, 60).await;
            assert!(nonempty > 12, "{nonempty} of 60 reports had a group");
        });
    }
}
