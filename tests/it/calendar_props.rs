//! Property test: the SQL working-time UDFs equal a naive minute-by-minute walk.
//!
//! The naive side is written from docs/domain.md alone: it reads `holidays_vn.csv` itself and
//! checks every minute for "Mon–Fri or make-up Saturday, not a holiday, inside 07:30–11:30
//! or 13:30–17:00 local time". It shares no code with the prefix-sum calendar.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Weekday};
use giamsat_queries::arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use giamsat_queries::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use proptest::prelude::*;

use crate::common;

const MIN: i64 = 60_000_000;

fn holiday_kinds() -> HashMap<NaiveDate, String> {
    let text = std::fs::read_to_string(common::root().join("warehouse/data/holidays_vn.csv"))
        .expect("csv");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.split(',');
            let d = NaiveDate::parse_from_str(parts.next()?, "%Y-%m-%d").ok()?;
            let kind = parts.next_back()?.to_string();
            Some((d, kind))
        })
        .collect()
}

fn working_minute(h: &HashMap<NaiveDate, String>, t: i64) -> bool {
    let local = DateTime::from_timestamp_micros(t + 7 * 3600 * 1_000_000)
        .expect("t")
        .naive_utc();
    let date = local.date();
    let workday = match h.get(&date).map(String::as_str) {
        Some("holiday") => false,
        Some("makeup_workday") => true,
        _ => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
    };
    let m = local.hour() * 60 + local.minute();
    workday && ((450..690).contains(&m) || (810..1020).contains(&m))
}

fn naive_working_minutes(h: &HashMap<NaiveDate, String>, a: i64, b: i64) -> i64 {
    let mut t = a;
    let mut n = 0;
    while t < b {
        if working_minute(h, t) {
            n += 1;
        }
        t += MIN;
    }
    n
}

/// First instant at which `n_minutes` of working time have elapsed since `a`.
fn naive_add(h: &HashMap<NaiveDate, String>, a: i64, n_minutes: i64) -> i64 {
    if n_minutes == 0 {
        return a;
    }
    let mut t = a;
    let mut got = 0;
    loop {
        if working_minute(h, t) {
            got += 1;
            if got == n_minutes {
                return t + MIN;
            }
        }
        t += MIN;
    }
}

// minute-aligned instants between 2025-12-01 and 2026-12-01 (UTC)
fn instant() -> impl Strategy<Value = i64> {
    let start = 1_764_547_200_000_000i64 / MIN; // 2025-12-01T00:00:00Z in minutes
    (start..start + 365 * 24 * 60).prop_map(|m| m * MIN)
}

fn batch(rows: &[(i64, i64, i64)]) -> RecordBatch {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", ts.clone(), false),
        Field::new("b", ts, false),
        Field::new("n", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn udfs_equal_a_minute_walk(
        rows in prop::collection::vec((instant(), 0i64..(20 * 24 * 60), 0i64..12), 16)
    ) {
        let rows: Vec<(i64, i64, i64)> = rows.into_iter().map(|(a, len, n)| (a, a + len * MIN, n)).collect();
        let h = holiday_kinds();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let (ws, add) = rt.block_on(async {
            let wh_dir = tempfile::tempdir().expect("dir");
            let wh = giamsat_warehouse::store::Warehouse::open(wh_dir.path()).expect("wh");
            let ctx = giamsat_queries::session(&wh).await.expect("session");
            ctx.register_batch("pairs", batch(&rows)).expect("register");
            let out = giamsat_queries::run_sql(
                &ctx,
                "SELECT working_seconds(a, b) AS ws, add_working_days(a, n) AS t FROM pairs",
            )
            .await
            .expect("sql");
            let b = &out[0];
            let ws = b.column(0).as_any().downcast_ref::<Float64Array>().expect("f64").clone();
            let t = b.column(1).as_any().downcast_ref::<TimestampMicrosecondArray>().expect("ts").clone();
            (ws, t)
        });
        prop_assert_eq!(ws.len(), rows.len());
        for (i, &(a, b, n)) in rows.iter().enumerate() {
            prop_assert!(!ws.is_null(i) && !add.is_null(i));
            let want = naive_working_minutes(&h, a, b) * 60;
            prop_assert_eq!(ws.value(i), want as f64, "working_seconds row {}", i);
            let want_t = naive_add(&h, a, n * 450);
            prop_assert_eq!(add.value(i), want_t, "add_working_days row {} (n = {})", i, n);
        }
    }
}
