//! Decision 766/QĐ-TTg: the citizen-service index (docs/domain.md), six groups, 100 points.
//!
//! The counts behind every criterion come from three SQL files (`sql/index766_dossiers.sql`,
//! `sql/index766_catalog.sql`, `sql/index766_feedback.sql`); which count is the numerator and
//! which the denominator of a criterion, its maximum points and its target come from the
//! configuration (`config/index766.toml`, overridable by `<data>/index766.toml`). A criterion
//! scores `min(max, max × rate / target)`; with nothing to count it scores its `empty` rule.
//!
//! The dossier counts of a whole scope (no grouping: the overview's index) are read from
//! the daily rollup when the session has it (`rollup::index766_counts`); the SQL files stay
//! their definition, and a property test holds both equal.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use giamsat_warehouse::event::string_col;
use giamsat_warehouse::Calendar;

use crate::bieu06::{period_params, with_period_dossiers, Filters};
use crate::common::code_ok;
use crate::period::Period;
use crate::QueryError;

/// The default configuration (docs/domain.md weights and targets).
pub const DEFAULT_CONFIG: &str = include_str!("../config/index766.toml");
const DOSSIERS_SQL: &str = include_str!("../sql/index766_dossiers.sql");

/// The dossiers of a period with a 0/1 column per dossier count (the CTE `d`).
pub const FLAGS_SQL: &str = include_str!("../sql/index766_flags.sql");
const CATALOG_SQL: &str = include_str!("../sql/index766_catalog.sql");
const FEEDBACK_SQL: &str = include_str!("../sql/index766_feedback.sql");

/// Every count a criterion may name, with where it comes from.
pub const COUNTS: &[(&str, &str)] = &[
    ("dossiers", "hồ sơ đã và đang giải quyết (Biểu 06 cột 1)"),
    (
        "dossiers_on_time",
        "hồ sơ trước hạn, đúng hạn, đang trong hạn",
    ),
    ("dossiers_late", "hồ sơ quá hạn (đã và đang giải quyết)"),
    ("dossiers_with_feedback", "hồ sơ có phản ánh, kiến nghị"),
    (
        "dossiers_satisfaction",
        "hồ sơ − quá hạn − có phản ánh (không âm)",
    ),
    ("dossiers_synced", "hồ sơ có trên Cổng DVCQG"),
    ("received", "hồ sơ tiếp nhận mới trong kỳ"),
    ("received_online_capable", "hồ sơ mới của TTHC trực tuyến"),
    (
        "received_online_capable_online",
        "hồ sơ mới của TTHC trực tuyến, nộp trực tuyến",
    ),
    ("received_with_fee", "hồ sơ mới của TTHC có phí"),
    (
        "received_with_fee_paid_online",
        "hồ sơ mới có phí, thanh toán trực tuyến",
    ),
    ("received_digitized", "hồ sơ mới được số hóa"),
    ("received_data_reused", "hồ sơ mới tái sử dụng dữ liệu"),
    ("received_vneid", "hồ sơ mới kết nối VNeID"),
    ("ended", "hồ sơ đã giải quyết trong kỳ"),
    (
        "ended_result_digitized",
        "hồ sơ đã giải quyết có kết quả điện tử",
    ),
    ("ended_certified", "hồ sơ chứng thực đã giải quyết"),
    (
        "ended_certified_digitized",
        "hồ sơ chứng thực có bản sao điện tử",
    ),
    ("procedures_with_dossiers", "TTHC có hồ sơ"),
    (
        "online_procedures_with_online_dossiers",
        "TTHC trực tuyến có hồ sơ trực tuyến",
    ),
    (
        "fee_procedures_paid_online",
        "TTHC đã tích hợp có thanh toán trực tuyến",
    ),
    (
        "procedures_with_vneid_dossiers",
        "TTHC có hồ sơ kết nối VNeID",
    ),
    ("procedures", "TTHC trong danh mục"),
    ("procedures_full_online", "TTHC toàn trình"),
    (
        "procedures_online",
        "TTHC trực tuyến (toàn trình, một phần)",
    ),
    ("procedures_with_fee", "TTHC có phí, lệ phí"),
    (
        "procedures_fee_integrated",
        "TTHC có phí đã tích hợp thanh toán",
    ),
    ("procedures_publish_due", "TTHC đến hạn công khai trong kỳ"),
    (
        "procedures_published_on_time",
        "TTHC đến hạn trong kỳ, công khai đúng hạn",
    ),
    ("procedures_published_in_period", "TTHC công khai trong kỳ"),
    (
        "procedures_published_in_period_on_time",
        "TTHC công khai trong kỳ, đúng hạn",
    ),
    ("procedures_published", "TTHC đã công khai"),
    (
        "procedures_published_complete",
        "TTHC đã công khai đầy đủ nội dung",
    ),
    ("feedback", "phản ánh, kiến nghị trong kỳ"),
    ("feedback_on_time", "phản ánh, kiến nghị xử lý đúng hạn"),
    ("feedback_rated", "phản ánh, kiến nghị có đánh giá"),
    (
        "feedback_satisfied",
        "phản ánh, kiến nghị được đánh giá hài lòng",
    ),
];

fn known_count(name: &str) -> bool {
    COUNTS.iter().any(|(n, _)| *n == name)
}

/// Points of a criterion with nothing to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Empty {
    Full,
    Zero,
}

/// One criterion of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionConfig {
    pub key: String,
    pub name: String,
    pub max: f64,
    pub target: f64,
    pub numerator: String,
    pub denominator: String,
    #[serde(default)]
    pub empty: Option<Empty>,
}

/// One group of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub group: u8,
    pub name: String,
    pub criteria: Vec<CriterionConfig>,
}

/// The index configuration (`config/index766.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index766Config {
    pub portal_source: String,
    pub empty_default: Empty,
    pub feedback_working_days: f64,
    pub certified_copy_fields: Vec<String>,
    pub group: Vec<GroupConfig>,
}

impl Index766Config {
    /// Parse and check a configuration text.
    pub fn from_toml(text: &str) -> Result<Index766Config, QueryError> {
        let c: Index766Config = giamsat_warehouse::config::parse_toml("index766.toml", text)
            .map_err(|e| QueryError::BadInput(format!("cấu hình chỉ số 766 sai: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// `<data>/index766.toml` if present, else the default.
    pub fn for_data_dir(data: &Path) -> Result<Index766Config, QueryError> {
        let p = data.join("index766.toml");
        if p.exists() {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| QueryError::BadInput(format!("không đọc được index766.toml: {e}")))?;
            Index766Config::from_toml(&text)
        } else {
            Index766Config::from_toml(DEFAULT_CONFIG)
        }
    }

    fn validate(&self) -> Result<(), QueryError> {
        let bad = |m: String| {
            Err(QueryError::BadInput(format!(
                "cấu hình chỉ số 766 sai: {m}"
            )))
        };
        if !code_ok(&self.portal_source) {
            return bad(format!("portal_source {:?}", self.portal_source));
        }
        if self.certified_copy_fields.iter().any(|f| !code_ok(f)) {
            return bad("certified_copy_fields chứa mã không hợp lệ".into());
        }
        if !self.feedback_working_days.is_finite() || self.feedback_working_days <= 0.0 {
            return bad("feedback_working_days phải dương".into());
        }
        for g in &self.group {
            for c in &g.criteria {
                let max_ok = c.max.is_finite() && c.max >= 0.0;
                let target_ok = c.target.is_finite() && c.target > 0.0 && c.target <= 1.0;
                if !max_ok || !target_ok {
                    return bad(format!("tiêu chí {}: max ≥ 0 và 0 < target ≤ 1", c.key));
                }
                for n in [&c.numerator, &c.denominator] {
                    if !known_count(n) {
                        return bad(format!("tiêu chí {}: không có số đếm {n:?}", c.key));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The unit an index is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// The whole scope.
    #[default]
    Total,
    Province,
    Commune,
    Agency,
}

impl Unit {
    /// Parse a `group_by` value (`none`/empty = total).
    pub fn parse(s: &str) -> Result<Unit, QueryError> {
        match s {
            "" | "none" | "total" => Ok(Unit::Total),
            "province" => Ok(Unit::Province),
            "commune" => Ok(Unit::Commune),
            "agency" => Ok(Unit::Agency),
            o => Err(QueryError::BadInput(format!(
                "group_by không hợp lệ: {o:?} (province|commune|agency)"
            ))),
        }
    }

    fn dossier_columns(self) -> (&'static str, &'static str) {
        match self {
            Unit::Total => ("'TOTAL'", "'Tổng cộng'"),
            Unit::Province => ("c.province_code", "c.province_name"),
            Unit::Commune => ("c.commune_code", "c.commune_name"),
            Unit::Agency => ("c.agency_code", "c.agency_name"),
        }
    }

    fn feedback_column(self) -> &'static str {
        match self {
            Unit::Total => "'TOTAL'",
            Unit::Province => "province_code",
            Unit::Commune => "commune_code",
            Unit::Agency => "agency_code",
        }
    }
}

/// Parameters of one index computation.
#[derive(Debug, Clone)]
pub struct Params {
    pub period: Period,
    pub province: Option<String>,
    pub commune: Option<String>,
    pub agency: Option<String>,
    pub unit: Unit,
}

impl Params {
    /// Validate the codes.
    pub fn new(
        period: Period,
        province: Option<String>,
        commune: Option<String>,
        agency: Option<String>,
        unit: Unit,
    ) -> Result<Params, QueryError> {
        for c in [&province, &commune, &agency].into_iter().flatten() {
            if !code_ok(c) {
                return Err(QueryError::BadInput(format!(
                    "mã đơn vị không hợp lệ: {c:?}"
                )));
            }
        }
        Ok(Params {
            period,
            province,
            commune,
            agency,
            unit,
        })
    }
}

/// One scored criterion (docs/contract.md §3).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Criterion {
    pub key: String,
    pub name: String,
    pub max: f64,
    pub target: f64,
    /// numerator / denominator; null when the denominator is 0.
    pub rate: Option<f64>,
    pub numerator: i64,
    pub denominator: i64,
    pub points: f64,
    /// The count names behind the numerator and denominator.
    pub numerator_name: String,
    pub denominator_name: String,
}

/// One group of criteria.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub group: u8,
    pub name: String,
    pub max: f64,
    pub points: f64,
    pub criteria: Vec<Criterion>,
}

/// The territory and agency asked for (null = all that the token may see).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Scope {
    pub province: Option<String>,
    pub commune: Option<String>,
    pub agency: Option<String>,
}

/// The index of one unit: docs/contract.md §3 `report 766 --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Index {
    pub period: String,
    #[schema(value_type = String)]
    pub from: chrono::NaiveDate,
    #[schema(value_type = String)]
    pub to: chrono::NaiveDate,
    pub scope: Scope,
    /// `TOTAL`, or the province/commune/agency code when grouped.
    pub unit: String,
    pub unit_name: Option<String>,
    /// Sum of the groups' points.
    pub total: f64,
    pub groups: Vec<Group>,
}

fn clean(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// Score the configured criteria from a unit's counts.
pub fn score(cfg: &Index766Config, counts: &HashMap<String, i64>) -> (f64, Vec<Group>) {
    let get = |n: &str| counts.get(n).copied().unwrap_or(0);
    let mut groups = Vec::new();
    for g in &cfg.group {
        let mut criteria = Vec::new();
        for c in &g.criteria {
            let num = get(&c.numerator);
            let den = get(&c.denominator);
            let (rate, points) = if den == 0 {
                let empty = c.empty.unwrap_or(cfg.empty_default);
                (None, if empty == Empty::Full { c.max } else { 0.0 })
            } else {
                let r = num as f64 / den as f64;
                (Some(clean(r)), clean(c.max.min(c.max * r / c.target)))
            };
            criteria.push(Criterion {
                key: c.key.clone(),
                name: c.name.clone(),
                max: c.max,
                target: c.target,
                rate,
                numerator: num,
                denominator: den,
                points,
                numerator_name: c.numerator.clone(),
                denominator_name: c.denominator.clone(),
            });
        }
        groups.push(Group {
            group: g.group,
            name: g.name.clone(),
            max: clean(criteria.iter().map(|c| c.max).sum()),
            points: clean(criteria.iter().map(|c| c.points).sum()),
            criteria,
        });
    }
    let total = clean(groups.iter().map(|g| g.points).sum());
    (total, groups)
}

/// All Int64-castable columns of `batches` by unit (column `unit`); names from `unit_name`.
fn read_counts(batches: &[RecordBatch], into: &mut Units) -> Result<(), QueryError> {
    for b in batches {
        let units = b
            .column_by_name("unit")
            .map(|_| string_col(b, "unit"))
            .transpose()?;
        let names = b
            .column_by_name("unit_name")
            .map(|_| string_col(b, "unit_name"))
            .transpose()?;
        let schema = b.schema();
        let mut cols = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if f.name() == "unit" || f.name() == "unit_name" {
                continue;
            }
            let c = cast(b.column(i), &DataType::Int64)?;
            if let Some(a) = c.as_any().downcast_ref::<Int64Array>() {
                cols.push((f.name().clone(), a.clone()));
            }
        }
        for r in 0..b.num_rows() {
            let unit = units
                .as_ref()
                .map_or_else(|| "TOTAL".to_string(), |u| u.value(r).to_string());
            let entry = into.entry(unit).or_default();
            if let Some(n) = &names {
                if !n.is_null(r) && entry.0.is_none() {
                    entry.0 = Some(n.value(r).to_string());
                }
            }
            for (name, a) in &cols {
                let v = if a.is_null(r) { 0 } else { a.value(r) };
                *entry.1.entry(name.clone()).or_default() += v;
            }
        }
    }
    Ok(())
}

/// The CTEs of [`FLAGS_SQL`] (ending with `d`, one row per dossier of the period with a
/// 0/1 column per dossier count) for the parameters, and their bound values `$1`–`$10`.
pub fn dossier_flags(
    cal: &Calendar,
    cfg: &Index766Config,
    p: &Params,
) -> (String, Vec<ScalarValue>) {
    let filters = Filters {
        agency: p.agency.clone(),
        ..Filters::default()
    };
    let mut params = period_params(
        cal,
        p.period.from,
        p.period.to,
        &p.province,
        &p.commune,
        &filters,
    );
    params.push(ScalarValue::Utf8(Some(cfg.portal_source.clone())));
    let (code, name) = p.unit.dossier_columns();
    let sql = with_period_dossiers(FLAGS_SQL)
        .replace("{unit_code}", code)
        .replace("{unit_name}", name)
        .replace("{certified_fields}", &certified_fields(cfg));
    (sql, params)
}

/// The certified-copy field codes as a quoted SQL list (validated codes), `NULL` when
/// there are none.
fn certified_fields(cfg: &Index766Config) -> String {
    if cfg.certified_copy_fields.is_empty() {
        "NULL".to_string()
    } else {
        cfg.certified_copy_fields
            .iter()
            .map(|f| format!("'{f}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The dossier counts of [`FLAGS_SQL`]: each is the number of dossiers of the period
/// whose column of that name is 1.
pub const DOSSIER_COUNTS: [&str; 17] = [
    "dossiers",
    "dossiers_on_time",
    "dossiers_late",
    "dossiers_with_feedback",
    "dossiers_synced",
    "received",
    "received_online_capable",
    "received_online_capable_online",
    "received_with_fee",
    "received_with_fee_paid_online",
    "received_digitized",
    "received_data_reused",
    "received_vneid",
    "ended",
    "ended_result_digitized",
    "ended_certified",
    "ended_certified_digitized",
];

/// The Vietnamese name of a count of the index.
pub fn count_label(name: &str) -> Option<&'static str> {
    COUNTS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

/// The dossier counts per unit (with the unit's name where the dossiers give one), and
/// the parameters `$1`–`$10` they were computed with. For the whole scope ([`Unit::Total`])
/// with `from_rollup` they come from the daily rollup where the session has its 766
/// columns; otherwise, and always when `from_rollup` is false, from the dossier-level SQL
/// (`sql/index766_dossiers.sql`), which is their definition.
pub async fn dossier_counts(
    ctx: &SessionContext,
    cal: &Calendar,
    cfg: &Index766Config,
    p: &Params,
    from_rollup: bool,
) -> Result<(Units, Vec<ScalarValue>), QueryError> {
    let (with, params) = dossier_flags(cal, cfg, p);
    let mut units: Units = BTreeMap::new();
    if from_rollup && p.unit == Unit::Total && crate::rollup::has_index766(ctx).await {
        let counts = crate::rollup::index766_counts(
            ctx,
            &params,
            (p.period.from, p.period.to),
            &cfg.certified_copy_fields,
            &cfg.portal_source,
        )
        .await?;
        units.insert("TOTAL".to_string(), (None, counts));
        return Ok((units, params));
    }
    let sql = DOSSIERS_SQL.replace("{index766_flags}", &with);
    let dossiers = ctx.sql(&sql).await?.with_param_values(params.clone())?;
    read_counts(&dossiers.collect().await?, &mut units)?;
    Ok((units, params))
}

/// Counts per unit code: the unit's name and each count by name.
pub type Units = BTreeMap<String, (Option<String>, HashMap<String, i64>)>;

/// Compute the index for the parameters: one [`Index`] per unit (exactly one, `TOTAL`,
/// for [`Unit::Total`], even when there is no data), sorted by unit code.
pub async fn run(
    ctx: &SessionContext,
    cal: &Calendar,
    cfg: &Index766Config,
    p: &Params,
) -> Result<Vec<Index>, QueryError> {
    run_with(ctx, cal, cfg, p, true).await
}

/// [`run`] with the dossier counts from the dossier-level SQL only (the definition the
/// rollup's answer is tested against).
pub async fn run_dossiers(
    ctx: &SessionContext,
    cal: &Calendar,
    cfg: &Index766Config,
    p: &Params,
) -> Result<Vec<Index>, QueryError> {
    run_with(ctx, cal, cfg, p, false).await
}

async fn run_with(
    ctx: &SessionContext,
    cal: &Calendar,
    cfg: &Index766Config,
    p: &Params,
    from_rollup: bool,
) -> Result<Vec<Index>, QueryError> {
    let (mut units, params) = dossier_counts(ctx, cal, cfg, p, from_rollup).await?;

    let fb_sql = FEEDBACK_SQL.replace("{unit_code}", p.unit.feedback_column());
    let fb = ctx.sql(&fb_sql).await?.with_param_values(vec![
        params[0].clone(),
        params[1].clone(),
        params[2].clone(),
        params[3].clone(),
        params[4].clone(),
        ScalarValue::Float64(Some(cfg.feedback_working_days)),
    ])?;
    read_counts(&fb.collect().await?, &mut units)?;

    let date = |d: chrono::NaiveDate| {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        ScalarValue::Date32(Some((d - epoch).num_days() as i32))
    };
    let cat = ctx
        .sql(CATALOG_SQL)
        .await?
        .with_param_values(vec![date(p.period.from), date(p.period.to)])?;
    let mut catalog = BTreeMap::new();
    read_counts(&cat.collect().await?, &mut catalog)?;
    let catalog = catalog.remove("TOTAL").map(|c| c.1).unwrap_or_default();

    if p.unit == Unit::Total {
        units.entry("TOTAL".to_string()).or_default();
    }
    let scope = Scope {
        province: p.province.clone(),
        commune: p.commune.clone(),
        agency: p.agency.clone(),
    };
    let mut out = Vec::new();
    for (unit, (unit_name, mut counts)) in units {
        for (k, v) in &catalog {
            counts.insert(k.clone(), *v);
        }
        let (total, groups) = score(cfg, &counts);
        out.push(Index {
            period: p.period.label.clone(),
            from: p.period.from,
            to: p.period.to,
            scope: scope.clone(),
            unit_name: match unit.as_str() {
                "TOTAL" => Some("Tổng cộng".to_string()),
                "" => Some("Không xác định".to_string()),
                _ => unit_name,
            },
            unit,
            total,
            groups,
        });
    }
    Ok(out)
}

/// CSV of indices: one line per criterion (unit, group, criterion, max, target, rate,
/// numerator, denominator, points), then one line per group and the total.
pub fn to_csv(indices: &[Index]) -> Result<String, QueryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| QueryError::BadInput(e.to_string());
    w.write_record([
        "period",
        "unit",
        "unit_name",
        "group",
        "criterion",
        "name",
        "max",
        "target",
        "rate",
        "numerator",
        "denominator",
        "points",
    ])
    .map_err(err)?;
    let f = |x: f64| format!("{x}");
    for ix in indices {
        let un = ix.unit_name.clone().unwrap_or_default();
        for g in &ix.groups {
            for c in &g.criteria {
                w.write_record([
                    ix.period.clone(),
                    ix.unit.clone(),
                    un.clone(),
                    g.group.to_string(),
                    c.key.clone(),
                    c.name.clone(),
                    f(c.max),
                    f(c.target),
                    c.rate.map(f).unwrap_or_default(),
                    c.numerator.to_string(),
                    c.denominator.to_string(),
                    f(c.points),
                ])
                .map_err(err)?;
            }
            w.write_record([
                ix.period.clone(),
                ix.unit.clone(),
                un.clone(),
                g.group.to_string(),
                String::new(),
                g.name.clone(),
                f(g.max),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                f(g.points),
            ])
            .map_err(err)?;
        }
        w.write_record([
            ix.period.clone(),
            ix.unit.clone(),
            un,
            "TOTAL".to_string(),
            String::new(),
            "Tổng điểm".to_string(),
            "100".to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            f(ix.total),
        ])
        .map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| QueryError::BadInput(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_100_points() {
        let c = Index766Config::from_toml(DEFAULT_CONFIG).expect("default");
        let maxes: Vec<f64> = c
            .group
            .iter()
            .map(|g| g.criteria.iter().map(|c| c.max).sum())
            .collect();
        assert_eq!(maxes, [18.0, 20.0, 12.0, 10.0, 22.0, 18.0]);
    }

    #[test]
    fn scoring_caps_at_target_and_handles_empty() {
        let c = Index766Config::from_toml(DEFAULT_CONFIG).expect("default");
        let mut counts = HashMap::new();
        // 3.3: target 50%, 3 of 4 online → capped at 4 points; 3.1: 1 of 4 full online,
        // target 80% → 4 × 0.25 / 0.8 = 1.25
        counts.insert("received_online_capable".to_string(), 4);
        counts.insert("received_online_capable_online".to_string(), 3);
        counts.insert("procedures".to_string(), 4);
        counts.insert("procedures_full_online".to_string(), 1);
        let (_, groups) = score(&c, &counts);
        let g3 = &groups[2];
        assert_eq!(g3.criteria[2].points, 4.0);
        assert_eq!(g3.criteria[0].points, 1.25);
        // no feedback → full points for 6.1 and 6.2; no dossiers → 0 for 6.3 and 2.1
        assert_eq!(groups[5].criteria[0].points, 6.0);
        assert_eq!(groups[5].criteria[1].points, 6.0);
        assert_eq!(groups[5].criteria[2].points, 0.0);
        assert_eq!(groups[1].points, 0.0);
    }

    #[test]
    fn bad_configs_are_refused() {
        let broken = DEFAULT_CONFIG.replace("\"dossiers_on_time\"", "\"no_such_count\"");
        assert!(Index766Config::from_toml(&broken).is_err());
        let broken = DEFAULT_CONFIG.replace("target = 0.5", "target = 0");
        assert!(Index766Config::from_toml(&broken).is_err());
        let broken = DEFAULT_CONFIG.replace("[\"CT\"]", "[\"CT'; DROP\"]");
        assert!(Index766Config::from_toml(&broken).is_err());
    }
}
