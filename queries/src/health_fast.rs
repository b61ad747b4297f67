//! Sync health from what ingest keeps (`giamsat_warehouse::health`): the days before the
//! day of `as_of` and the days after it from `source_days`, the day of `as_of` itself
//! from the events of that day (one month partition, filtered by time), dossiers from
//! `dossier_sources`. Counts, times and the largest lag are exact; the lag percentiles
//! come from the lag buckets.

use std::collections::BTreeMap;

use datafusion::arrow::array::Array;
use datafusion::common::ScalarValue;
use datafusion::prelude::{col, lit, SessionContext};

use giamsat_warehouse::calendar::DAY_MICROS;
use giamsat_warehouse::event::{month_of, string_col, ts_col};
use giamsat_warehouse::health::{histogram_percentile, lag_bucket, DOSSIER_SOURCES, SOURCE_DAYS};
use giamsat_warehouse::store::{EVENTS, QUARANTINE};
use giamsat_warehouse::Calendar;

use crate::common::{self, Cols};
use crate::health::{Params, Report, SourceHealth};
use crate::QueryError;

#[derive(Default)]
struct Acc {
    events: i64,
    hist: BTreeMap<i32, i64>,
    first: Option<i64>,
    last: Option<i64>,
    ingested: Option<i64>,
    lag_max: Option<f64>,
    future: i64,
    dossiers: i64,
    quarantined: i64,
}

impl Acc {
    fn seen(&mut self, n: i64, bucket: i32, first: i64, last: i64, ingested: i64, lag_max: f64) {
        self.events += n;
        *self.hist.entry(bucket).or_default() += n;
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        self.last = Some(self.last.map_or(last, |l| l.max(last)));
        self.ingested = Some(self.ingested.map_or(ingested, |i| i.max(ingested)));
        self.lag_max = Some(self.lag_max.map_or(lag_max, |m| m.max(lag_max)));
    }
}

/// The events (source, at, ingested_at) of the local day of `as_of`: one month
/// partition, filtered by time.
async fn day_events(
    ctx: &SessionContext,
    off: i64,
    as_of: i64,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>, datafusion::error::DataFusionError> {
    let day0 = (as_of + off).div_euclid(DAY_MICROS) * DAY_MICROS - off;
    let ts = |v: i64| {
        lit(ScalarValue::TimestampMicrosecond(
            Some(v),
            Some("UTC".into()),
        ))
    };
    ctx.table(EVENTS)
        .await?
        .filter(
            col("month")
                .eq(lit(month_of(as_of, off)))
                .and(col("at").gt_eq(ts(day0)))
                .and(col("at").lt(ts(day0 + DAY_MICROS))),
        )?
        .select_columns(&["source", "at", "ingested_at"])?
        .collect()
        .await
}

/// The last event instant of every source at or before `as_of`.
pub async fn last_events(
    ctx: &SessionContext,
    cal: &Calendar,
    as_of: i64,
) -> Result<BTreeMap<String, i64>, QueryError> {
    let off = cal.offset_micros();
    let day = (as_of + off).div_euclid(DAY_MICROS);
    let before = async {
        ctx.sql(&format!(
            "SELECT source, MAX(last_at) AS last_at FROM {SOURCE_DAYS} WHERE day < $1 GROUP BY source"
        ))
        .await?
        .with_param_values(vec![ScalarValue::Date32(Some(day as i32))])?
        .collect()
        .await
    };
    let (before, today) = tokio::try_join!(before, day_events(ctx, off, as_of))?;
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    let mut put = |s: &str, t: i64| {
        let e = out.entry(s.to_string()).or_insert(t);
        *e = (*e).max(t);
    };
    for b in &before {
        let src = string_col(b, "source")?;
        let last = Cols(b).instants("last_at")?;
        for i in 0..b.num_rows() {
            if let Some(t) = last.get(i) {
                put(src.value(i), t);
            }
        }
    }
    for b in &today {
        let src = string_col(b, "source")?;
        let at = ts_col(b, "at")?;
        for i in 0..b.num_rows() {
            if at.value(i) <= as_of {
                put(src.value(i), at.value(i));
            }
        }
    }
    Ok(out)
}

/// See the module documentation.
pub async fn run(ctx: &SessionContext, cal: &Calendar, p: &Params) -> Result<Report, QueryError> {
    p.validate()?;
    let off = cal.offset_micros();
    let day = (p.as_of + off).div_euclid(DAY_MICROS);

    let days = async {
        ctx.sql(&format!(
            "SELECT source, lag_bucket, CASE WHEN day < $1 THEN 0 ELSE 1 END AS after, \
             SUM(events) AS n, MIN(first_at) AS first_at, MAX(last_at) AS last_at, \
             MAX(last_ingested_at) AS ingested, MAX(lag_max_seconds) AS lag_max \
             FROM {SOURCE_DAYS} WHERE day <> $1 GROUP BY source, lag_bucket, \
             CASE WHEN day < $1 THEN 0 ELSE 1 END"
        ))
        .await?
        .with_param_values(vec![ScalarValue::Date32(Some(day as i32))])?
        .collect()
        .await
    };
    let today = day_events(ctx, off, p.as_of);
    let dossiers = async {
        ctx.sql(&format!(
            "SELECT source, COUNT(*) AS n FROM {DOSSIER_SOURCES} WHERE first_at <= $1 GROUP BY source"
        ))
        .await?
        .with_param_values(vec![common::ts_param(Some(p.as_of))])?
        .collect()
        .await
    };
    let quarantined = async {
        ctx.sql(&format!(
            "SELECT source, COUNT(*) AS n FROM {QUARANTINE} GROUP BY source"
        ))
        .await?
        .collect()
        .await
    };
    let (days, today, dossiers, quarantined) =
        tokio::try_join!(days, today, dossiers, quarantined)?;

    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for b in &days {
        let c = Cols(b);
        let src = string_col(b, "source")?;
        let bucket = c.ints("lag_bucket")?;
        let after = c.ints("after")?;
        let n = c.ints("n")?;
        let first = c.instants("first_at")?;
        let last = c.instants("last_at")?;
        let ing = c.instants("ingested")?;
        let lag = c.floats("lag_max")?;
        for i in 0..b.num_rows() {
            let a = acc.entry(src.value(i).to_string()).or_default();
            if after.or_zero(i) == 1 {
                a.future += n.or_zero(i);
            } else {
                a.seen(
                    n.or_zero(i),
                    bucket.or_zero(i) as i32,
                    first.get(i).unwrap_or_default(),
                    last.get(i).unwrap_or_default(),
                    ing.get(i).unwrap_or_default(),
                    lag.get(i).unwrap_or_default(),
                );
            }
        }
    }
    for b in &today {
        let src = string_col(b, "source")?;
        let at = ts_col(b, "at")?;
        let ing = ts_col(b, "ingested_at")?;
        for i in 0..b.num_rows() {
            let a = acc.entry(src.value(i).to_string()).or_default();
            let (t, g) = (at.value(i), ing.value(i));
            if t > p.as_of {
                a.future += 1;
            } else {
                let lag = (g - t) as f64 / 1e6;
                a.seen(1, lag_bucket(lag), t, t, g, lag);
            }
        }
    }
    for b in &dossiers {
        let src = string_col(b, "source")?;
        let n = Cols(b).ints("n")?;
        for i in 0..b.num_rows() {
            if let Some(a) = acc.get_mut(src.value(i)) {
                a.dossiers = n.or_zero(i);
            }
        }
    }
    let mut unattributed = 0;
    for b in &quarantined {
        let src = string_col(b, "source")?;
        let n = Cols(b).ints("n")?;
        for i in 0..b.num_rows() {
            if src.is_null(i) {
                unattributed += n.or_zero(i);
            } else {
                acc.entry(src.value(i).to_string()).or_default().quarantined = n.or_zero(i);
            }
        }
    }
    let stale_after = common::hours_to_micros(p.stale_after_hours);
    let sources = acc
        .into_iter()
        .map(|(source, a)| SourceHealth {
            source,
            events: a.events,
            dossiers: a.dossiers,
            first_event_at: a.first.and_then(common::local_rfc3339),
            last_event_at: a.last.and_then(common::local_rfc3339),
            last_ingested_at: a.ingested.and_then(common::local_rfc3339),
            lag_p50_seconds: histogram_percentile(&a.hist, 0.5),
            lag_p90_seconds: histogram_percentile(&a.hist, 0.9),
            lag_max_seconds: a.lag_max,
            quarantined: a.quarantined,
            error_rate: a.quarantined as f64 / (a.events + a.quarantined).max(1) as f64,
            lag_now_seconds: a.last.map(|l| (p.as_of - l) as f64 / 1e6),
            stale: a.last.is_none_or(|l| p.as_of - l > stale_after),
            future_events: a.future,
        })
        .collect();
    Ok(Report {
        as_of: common::local_rfc3339(p.as_of),
        stale_after_hours: p.stale_after_hours,
        sources,
        unattributed_quarantined: unattributed,
    })
}
