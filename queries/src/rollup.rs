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
//! A group's name is the name of its most recently changed row among the rows whose
//! names dossiers of the period carry (a name that only dossiers ended before the period
//! carry is not a candidate, as in the dossier-level rule). It can differ from the
//! dossier-level rule (the name on the period's most recently changed dossier) only when
//! one code carries two names in the period and a dossier outside the period changed
//! more recently under the older one.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;

use crate::bieu06::{GroupBy, Params, Row};
use crate::common::{Cols, IntCol};
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

/// The filters `$3`–`$9` of the dossier-level SQL (province, commune, agency, field,
/// procedure, level, non-territorial; NULL = any) on the rows of `alias`.
fn filters(alias: &str) -> String {
    [
        "province_code",
        "commune_code",
        "agency_code",
        "field_code",
        "procedure_code",
        "procedure_level",
        "non_territorial",
    ]
    .iter()
    .enumerate()
    .map(|(i, c)| format!("(${n} IS NULL OR {alias}.{c} = ${n})", n = i + 3))
    .collect::<Vec<_>>()
    .join("\n    AND ")
}

/// The rollup rows (alias `r`) a period ending before `$2` reads, under the filters.
fn rows_of() -> String {
    format!("WHERE r.day_hi < $2\n    AND {}", filters("r"))
}

/// Whether a session answers Biểu 06 from the rollup (a session pinned to versions
/// from before the rollup existed does not have it, and reads the dossiers).
pub fn available(ctx: &SessionContext) -> bool {
    ctx.table_exist(DAILY_ROLLUP).unwrap_or(false)
}

/// The SQL over the rollup for a grouping: one row per raw group value and name.
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
            {rows_of}
        )
        SELECT
            {code} AS grp,
            {name} AS grp_name,
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
        GROUP BY {code}, {name}",
        rows_of = rows_of(),
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

/// The parameters of the rollup's statements: `$1` the first day of `p`, `$2` the day after
/// `to`, then `p`'s territory and filters (`$3`–`$9`, as in the dossier-level SQL).
fn rollup_params(cal: &giamsat_warehouse::Calendar, p: &Params, to: NaiveDate) -> Vec<ScalarValue> {
    day_params(
        crate::bieu06::period_params(cal, p.from, to, &p.province, &p.commune, &p.filters),
        p.from,
        to,
    )
}

/// The dossier-level parameters `params` (instants `$1`, `$2`) with the period as day
/// numbers instead: `$1` the first day, `$2` the day after `to`.
fn day_params(mut params: Vec<ScalarValue>, from: NaiveDate, to: NaiveDate) -> Vec<ScalarValue> {
    params[0] = ScalarValue::Date32(Some(day_number(from)));
    params[1] = ScalarValue::Date32(Some(day_number(to) + 1));
    params
}

/// Row `i` of the integer columns `ints`, NULL read as 0.
fn row_sums<const N: usize>(ints: &[IntCol], i: usize) -> [i64; N] {
    std::array::from_fn(|k| ints.get(k).map_or(0, |c| c.or_zero(i)))
}

/// Biểu 06 from the rollup: groups in code order, then TOTAL.
pub async fn run(
    ctx: &SessionContext,
    cal: &giamsat_warehouse::Calendar,
    p: &Params,
) -> Result<Vec<Row>, QueryError> {
    let params = rollup_params(cal, p, p.to);
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
            let sums: [i64; 9] = row_sums(&ints, i);
            // a name is a candidate only where dossiers of the period carry it (received
            // in the period or carried over into it: each such dossier adds 1 to these
            // three sums, no dossier subtracts); rows before the period also hold
            // dossiers that ended before it
            let in_period = sums[0] + sums[1] + sums[2] > 0;
            let name = names
                .get(i)
                .filter(|_| in_period)
                .map(|n| (last.or_zero(i), n));
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

/// The SQL of [`totals`]: the rollup's sums per (day_lo, day_hi) under the filters. It
/// takes the same nine parameters as [`sql`]; `$1` (the first day) is only named, so that
/// every bound value has its placeholder.
fn days_sql() -> String {
    format!(
        "SELECT r.day_lo, r.day_hi,
            SUM(r.received_online) AS received_online,
            SUM(r.received_offline) AS received_offline,
            SUM(r.ended) AS ended,
            SUM(r.ended_early) AS ended_early,
            SUM(r.ended_on_day) AS ended_on_day,
            SUM(r.ended_late) AS ended_late,
            SUM(r.open_delta) AS open_delta,
            SUM(r.overdue_delta) AS overdue_delta
        FROM {DAILY_ROLLUP} r
        {rows_of} AND $1 IS NOT NULL
        GROUP BY r.day_lo, r.day_hi",
        rows_of = rows_of(),
    )
}

/// The TOTAL row of Biểu 06 for each of `periods` (first and last local date), under the
/// filters of `p` (its own period and grouping are not used), read from the rollup in one
/// pass: the sums per pair of days are read once, then each period takes the same sums as
/// [`run`] does (flows of the days inside it, stocks of the days before its start and its
/// end). A trend of twelve months costs one scan instead of twelve.
pub async fn totals(
    ctx: &SessionContext,
    cal: &giamsat_warehouse::Calendar,
    p: &Params,
    periods: &[(NaiveDate, NaiveDate)],
) -> Result<Vec<Row>, QueryError> {
    let Some(last) = periods.iter().map(|(_, to)| *to).max() else {
        return Ok(Vec::new());
    };
    let params = rollup_params(cal, p, last);
    let batches = ctx
        .sql(&days_sql())
        .await?
        .with_param_values(params)?
        .collect()
        .await?;
    // (day_lo, day_hi, the eight count sums in the table's order)
    let mut days: Vec<(i64, i64, [i64; 8])> = Vec::new();
    for b in &batches {
        let c = Cols(b);
        // day numbers since 1970-01-01 (Date32 read as integers)
        let lo = c.ints("day_lo")?;
        let hi = c.ints("day_hi")?;
        let ints = giamsat_warehouse::rollup::COUNTS
            .iter()
            .map(|name| c.ints(name))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..c.rows() {
            days.push((lo.or_zero(i), hi.or_zero(i), row_sums(&ints, i)));
        }
    }
    Ok(periods
        .iter()
        .map(|(from, to)| {
            let (p1, p2) = (i64::from(day_number(*from)), i64::from(day_number(*to)) + 1);
            let mut acc = Acc::default();
            for (lo, hi, s) in &days {
                if *hi >= p2 {
                    continue;
                }
                let flow = *lo >= p1;
                let f = |v: i64| if flow { v } else { 0 };
                // the order of SUMS: received online/offline, carried over, ended and
                // its classes, in progress, overdue
                let sums = [
                    f(s[0]),
                    f(s[1]),
                    if *hi < p1 { s[6] } else { 0 },
                    f(s[2]),
                    f(s[3]),
                    f(s[4]),
                    f(s[5]),
                    s[6],
                    s[7],
                ];
                acc.add(None, &sums);
            }
            acc.row("TOTAL".into(), "Tổng cộng".into())
        })
        .collect())
}

/// Whether the session's rollup carries the Decision 766 columns (a session pinned to a
/// rollup written before them reads the dossiers instead).
pub async fn has_index766(ctx: &SessionContext) -> bool {
    if !available(ctx) {
        return false;
    }
    match ctx.table_provider(DAILY_ROLLUP).await {
        Ok(t) => t.schema().field_with_name("open_vneid_delta").is_ok(),
        Err(_) => false,
    }
}

/// The SQL of [`index766_counts`]: the period's sums per combination of the dimensions a
/// count of the index distinguishes (procedure, its level, field, source systems), read
/// in Rust with the catalog's fee flags. Parameters as [`sql`].
fn index766_sql() -> String {
    let flow = |c: &str| format!("SUM(CASE WHEN r.day_lo >= $1 THEN r.{c} ELSE 0 END) AS {c}");
    // a stock at the period start: what was carried over into it
    let carried = |open: &str, name: &str| {
        format!("SUM(CASE WHEN r.day_hi < $1 THEN r.{open} ELSE 0 END) AS {name}")
    };
    // every count of the table but the stocks (`*_delta`)
    let flows = giamsat_warehouse::rollup::COUNTS
        .iter()
        .chain(&giamsat_warehouse::rollup::INDEX766_COUNTS)
        .filter(|c| !c.ends_with("_delta"))
        .map(|c| flow(c))
        .collect::<Vec<_>>()
        .join(",\n            ");
    format!(
        "SELECT
            r.procedure_code, r.procedure_level, r.field_code, r.sources,
            {flows},
            {carried_over},
            {carried_paid_online},
            {carried_vneid},
            SUM(r.open_delta) AS in_progress,
            SUM(r.overdue_delta) AS in_progress_overdue
        FROM {DAILY_ROLLUP} r
        {rows_of}
        GROUP BY r.procedure_code, r.procedure_level, r.field_code, r.sources",
        carried_over = carried("open_delta", "carried_over"),
        carried_paid_online = carried("open_paid_online_delta", "carried_paid_online"),
        carried_vneid = carried("open_vneid_delta", "carried_vneid"),
        rows_of = rows_of(),
    )
}

/// The catalog's fee flags per procedure code: has a fee; has a fee and its payment is
/// integrated online (the catalog holds one row per code).
const CATALOG_FEES_SQL: &str = "SELECT procedure_code,
        COALESCE(has_fee, false) AS has_fee,
        COALESCE(has_fee AND fee_online_integrated, false) AS fee_integrated
    FROM procedures";

/// The dossiers of the period with a citizen's feedback before its end: the few dossiers
/// named by feedback events, looked up in the facts with the period's rule of
/// `period_dossiers.sql` (parameters `$1`–`$9` as there).
fn with_feedback_sql() -> String {
    format!(
        "WITH complained AS (
            SELECT DISTINCT dossier_id
            FROM events
            WHERE type = 'feedback_received' AND dossier_id IS NOT NULL AND at < $2
        )
        SELECT COUNT(*) AS n
        FROM dossier_facts f
        JOIN complained x ON x.dossier_id = f.dossier_id
        WHERE f.counted
          AND f.received_at < $2
          AND (f.ended_at IS NULL OR f.ended_at >= $1)
          AND {}",
        filters("f")
    )
}

/// The Decision 766 dossier counts of the whole scope (the counts of
/// `index766_dossiers.sql` for one TOTAL unit) from the rollup, the feedback events and
/// the catalog. `params` are the dossier-level parameters `$1`–`$9` of
/// `period_dossiers.sql`; `certified_fields` the certified-copy field codes and `portal`
/// the portal's source code.
pub async fn index766_counts(
    ctx: &SessionContext,
    params: &[ScalarValue],
    (from, to): (NaiveDate, NaiveDate),
    certified_fields: &[String],
    portal: &str,
) -> Result<std::collections::HashMap<String, i64>, QueryError> {
    use std::collections::{BTreeSet, HashMap};
    let params: Vec<ScalarValue> = params.iter().take(9).cloned().collect();
    let feedback = ctx
        .sql(&with_feedback_sql())
        .await?
        .with_param_values(params.clone())?
        .collect();
    let sums = ctx
        .sql(&index766_sql())
        .await?
        .with_param_values(day_params(params, from, to))?
        .collect();
    let catalog = ctx.sql(CATALOG_FEES_SQL).await?.collect();
    let (feedback, sums, catalog) = tokio::try_join!(feedback, sums, catalog)?;
    // procedure code → (has a fee, fee paid online integrated)
    let mut fees: HashMap<String, (bool, bool)> = HashMap::new();
    for b in &catalog {
        let c = Cols(b);
        let (code, fee, integrated) = (
            c.strings("procedure_code")?,
            c.bools("has_fee")?,
            c.bools("fee_integrated")?,
        );
        for i in 0..c.rows() {
            if let Some(code) = code.get(i) {
                fees.insert(code, (fee.get(i), integrated.get(i)));
            }
        }
    }
    let mut n: HashMap<String, i64> = HashMap::new();
    let mut add = |k: &str, v: i64| *n.entry(k.to_string()).or_default() += v;
    for b in &feedback {
        let c = Cols(b);
        let v = c.ints("n")?;
        for i in 0..c.rows() {
            add("dossiers_with_feedback", v.or_zero(i));
        }
    }
    let mut procedures: [BTreeSet<String>; 4] = Default::default();
    for b in &sums {
        let c = Cols(b);
        let (code, level, field, sources) = (
            c.strings("procedure_code")?,
            c.strings("procedure_level")?,
            c.strings("field_code")?,
            c.strings("sources")?,
        );
        let int = |name: &str| c.ints(name);
        let (rec_on, rec_off, carried, ended, early, on_day, late) = (
            int("received_online")?,
            int("received_offline")?,
            int("carried_over")?,
            int("ended")?,
            int("ended_early")?,
            int("ended_on_day")?,
            int("ended_late")?,
        );
        let (in_progress, overdue, paid, digitized, reused, vneid, result_digitized) = (
            int("in_progress")?,
            int("in_progress_overdue")?,
            int("received_paid_online")?,
            int("received_digitized")?,
            int("received_data_reused")?,
            int("received_vneid")?,
            int("ended_result_digitized")?,
        );
        let (carried_paid, carried_vneid) = (int("carried_paid_online")?, int("carried_vneid")?);
        for i in 0..c.rows() {
            let code = code.get(i);
            let online = level
                .get(i)
                .is_some_and(|l| l == "full_online" || l == "partial_online");
            let certified = field.get(i).is_some_and(|f| certified_fields.contains(&f));
            let synced = sources.text(i).split(',').any(|s| s == portal);
            let (fee, integrated) = code
                .as_ref()
                .and_then(|c| fees.get(c))
                .copied()
                .unwrap_or_default();
            let received = rec_on.or_zero(i) + rec_off.or_zero(i);
            let dossiers = received + carried.or_zero(i);
            let open = in_progress.or_zero(i);
            let late_open = overdue.or_zero(i);
            add("dossiers", dossiers);
            add(
                "dossiers_on_time",
                early.or_zero(i) + on_day.or_zero(i) + open - late_open,
            );
            add("dossiers_late", late.or_zero(i) + late_open);
            add("dossiers_synced", if synced { dossiers } else { 0 });
            add("received", received);
            let on = |v: i64| if online { v } else { 0 };
            add("received_online_capable", on(received));
            add("received_online_capable_online", on(rec_on.or_zero(i)));
            let with_fee = |v: i64| if fee { v } else { 0 };
            add("received_with_fee", with_fee(received));
            add("received_with_fee_paid_online", with_fee(paid.or_zero(i)));
            add("received_digitized", digitized.or_zero(i));
            add("received_data_reused", reused.or_zero(i));
            add("received_vneid", vneid.or_zero(i));
            add("ended", ended.or_zero(i));
            add("ended_result_digitized", result_digitized.or_zero(i));
            let cert = |v: i64| if certified { v } else { 0 };
            add("ended_certified", cert(ended.or_zero(i)));
            add(
                "ended_certified_digitized",
                cert(result_digitized.or_zero(i)),
            );
            // a procedure counts when one of its dossiers is in the count (a group's
            // sums are numbers of dossiers, never negative)
            let Some(code) = code else { continue };
            // dossiers of the period paid online / through VNeID: received in it or
            // carried over into it
            let paid_in = paid.or_zero(i) + carried_paid.or_zero(i);
            let vneid_in = vneid.or_zero(i) + carried_vneid.or_zero(i);
            let has = [
                dossiers > 0,
                online && rec_on.or_zero(i) > 0,
                integrated && paid_in > 0,
                vneid_in > 0,
            ];
            for (set, yes) in procedures.iter_mut().zip(has) {
                if yes {
                    set.insert(code.clone());
                }
            }
        }
    }
    let get = |n: &HashMap<String, i64>, k: &str| n.get(k).copied().unwrap_or(0);
    let satisfaction =
        (get(&n, "dossiers") - get(&n, "dossiers_late") - get(&n, "dossiers_with_feedback")).max(0);
    n.insert("dossiers_satisfaction".into(), satisfaction);
    for (name, set) in [
        "procedures_with_dossiers",
        "online_procedures_with_online_dossiers",
        "fee_procedures_paid_online",
        "procedures_with_vneid_dossiers",
    ]
    .into_iter()
    .zip(procedures)
    {
        n.insert(name.into(), set.len() as i64);
    }
    Ok(n)
}
