//! Biểu 06 from the daily rollup (`daily_rollup`, built by `giamsat_warehouse::rollup`):
//! the same numbers as the dossier-level SQL (`sql/bieu06.sql` over
//! `sql/period_dossiers.sql`, which stays the definition and is compared with this in a
//! property test), read from a table of days × active dimension combinations.
//!
//! For a period [P1, P2) (local midnights), over the rows with `day_hi < P2`:
//! received and ended = the flows of rows with `day_lo >= P1`; carried over = Σ
//! `open_delta` of rows before P1; in progress = Σ `open_delta`; overdue = Σ
//! `overdue_delta` (see `warehouse/sql/daily_rollup.sql` for why).
//!
//! A group's name is the name on its most recently changed row among those rows; it
//! differs from the dossier-level rule (the name on the period's most recently changed
//! dossier) only when the name of one code changed over time.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;

use crate::bieu06::{GroupBy, Params, Row};
use crate::common::Cols;
use crate::QueryError;

pub use giamsat_warehouse::rollup::DAILY_ROLLUP;

/// Sums of one group, in the order of the SQL's count columns.
const SUMS: [&str; 9] = [
    "received_online",
    "received_offline",
    "carried_over",
    "ended",
    "ended_early",
    "ended_on_day",
    "ended_late",
    "in_progress",
    "in_progress_overdue",
];

fn day_number(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days() as i32
}

/// Whether a session answers Biểu 06 from the rollup (a session pinned to versions
/// from before the rollup existed does not have it, and reads the dossiers).
pub fn available(ctx: &SessionContext) -> bool {
    ctx.table_exist(DAILY_ROLLUP).unwrap_or(false)
}

/// The SQL over the rollup for a grouping: one row per raw group value.
fn sql(group_by: GroupBy) -> String {
    let (code, name) = match group_by {
        // a dossier of several systems is in each of their groups: grouped by the raw
        // list here, split in Rust
        GroupBy::Source => ("c.sources", "CAST(NULL AS VARCHAR)"),
        g => g.columns(),
    };
    // territory names only for the groupings that show them
    let (names, join) = if matches!(group_by, GroupBy::Commune | GroupBy::Province) {
        (
            "t.commune_name, t.province_name",
            "LEFT JOIN territories t ON t.commune_code = r.commune_code",
        )
    } else {
        (
            "CAST(NULL AS VARCHAR) AS commune_name, CAST(NULL AS VARCHAR) AS province_name",
            "",
        )
    };
    format!(
        "WITH c AS (
            SELECT r.*, {names}
            FROM {DAILY_ROLLUP} r {join}
            WHERE r.day_hi < $2
              AND ($3 IS NULL OR r.province_code = $3)
              AND ($4 IS NULL OR r.commune_code = $4)
              AND ($5 IS NULL OR r.agency_code = $5)
              AND ($6 IS NULL OR r.field_code = $6)
              AND ($7 IS NULL OR r.procedure_code = $7)
              AND ($8 IS NULL OR r.procedure_level = $8)
              AND ($9 IS NULL OR r.non_territorial = $9)
        )
        SELECT
            {code} AS grp,
            first_value({name} ORDER BY {name} IS NULL, c.last_event_at DESC) AS grp_name,
            MAX(c.last_event_at) AS last_at,
            SUM(CASE WHEN c.day_lo >= $1 THEN c.received_online ELSE 0 END) AS received_online,
            SUM(CASE WHEN c.day_lo >= $1 THEN c.received_offline ELSE 0 END) AS received_offline,
            SUM(CASE WHEN c.day_hi < $1 THEN c.open_delta ELSE 0 END) AS carried_over,
            SUM(CASE WHEN c.day_lo >= $1 THEN c.ended ELSE 0 END) AS ended,
            SUM(CASE WHEN c.day_lo >= $1 THEN c.ended_early ELSE 0 END) AS ended_early,
            SUM(CASE WHEN c.day_lo >= $1 THEN c.ended_on_day ELSE 0 END) AS ended_on_day,
            SUM(CASE WHEN c.day_lo >= $1 THEN c.ended_late ELSE 0 END) AS ended_late,
            SUM(c.open_delta) AS in_progress,
            SUM(c.overdue_delta) AS in_progress_overdue
        FROM c
        GROUP BY {code}"
    )
}

#[derive(Default)]
struct Acc {
    name: Option<(i64, String)>,
    sums: [i64; 9],
}

impl Acc {
    fn add(&mut self, name: Option<(i64, String)>, sums: &[i64; 9]) {
        for (a, b) in self.sums.iter_mut().zip(sums) {
            *a += b;
        }
        if let Some((at, n)) = name {
            if self.name.as_ref().is_none_or(|(t, _)| at > *t) {
                self.name = Some((at, n));
            }
        }
    }

    fn row(&self, group: String, name: String) -> Row {
        let s = &self.sums;
        Row {
            group,
            group_name: name,
            total: s[0] + s[1] + s[2],
            received_online: s[0],
            received_offline: s[1],
            carried_over: s[2],
            ended: s[3],
            ended_early: s[4],
            ended_on_day: s[5],
            ended_late: s[6],
            in_progress: s[7],
            in_progress_in_time: s[7] - s[8],
            in_progress_overdue: s[8],
        }
    }
}

/// Biểu 06 from the rollup: groups in code order, then TOTAL.
pub async fn run(
    ctx: &SessionContext,
    cal: &giamsat_warehouse::Calendar,
    p: &Params,
) -> Result<Vec<Row>, QueryError> {
    let mut params =
        crate::bieu06::period_params(cal, p.from, p.to, &p.province, &p.commune, &p.filters);
    params[0] = ScalarValue::Date32(Some(day_number(p.from)));
    params[1] = ScalarValue::Date32(Some(day_number(p.to) + 1));
    let batches = ctx
        .sql(&sql(p.group_by))
        .await?
        .with_param_values(params)?
        .collect()
        .await?;
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    for b in &batches {
        let c = Cols(b);
        let codes = c.strings("grp")?;
        let names = c.strings("grp_name")?;
        let last = c.instants("last_at")?;
        let ints = SUMS
            .iter()
            .map(|name| c.ints(name))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..c.rows() {
            let mut sums = [0i64; 9];
            for (k, s) in sums.iter_mut().enumerate() {
                *s = ints[k].or_zero(i);
            }
            let name = names.get(i).map(|n| (last.or_zero(i), n));
            let code = codes.get(i);
            total.add(None, &sums);
            match (p.group_by, code) {
                (GroupBy::Source, Some(list)) => {
                    for s in list.split(',') {
                        groups.entry(s.to_string()).or_default().add(None, &sums);
                    }
                }
                (_, code) => groups
                    .entry(code.unwrap_or_default())
                    .or_default()
                    .add(name, &sums),
            }
        }
    }
    let mut rows: Vec<Row> = groups
        .into_iter()
        .map(|(code, acc)| {
            let name = acc
                .name
                .as_ref()
                .map_or_else(|| "Không xác định".to_string(), |(_, n)| n.clone());
            acc.row(code, name)
        })
        .filter(|r| r.total > 0)
        .collect();
    rows.push(total.row("TOTAL".into(), "Tổng cộng".into()));
    Ok(rows)
}
