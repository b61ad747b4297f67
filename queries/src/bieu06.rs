//! Biểu 06 runner: binds the parameters of `sql/bieu06.sql` and returns typed rows.

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use giamsat_warehouse::event::string_col;
use giamsat_warehouse::Calendar;

use crate::common::code_ok;
use crate::QueryError;

/// The SQL file, verbatim (one pass: groups and TOTAL from one aggregate).
pub const SQL: &str = include_str!("../sql/bieu06.sql");

/// Biểu 06 by source system, where a dossier may be in several groups and the TOTAL row
/// is a separate aggregate.
pub const SQL_BY_SOURCE: &str = include_str!("../sql/bieu06_by_source.sql");

/// The dossiers of a period, classified (embedded as `{period_dossiers}`).
pub const PERIOD_DOSSIERS_SQL: &str = include_str!("../sql/period_dossiers.sql");

/// `sql` with `{period_dossiers}` replaced by [`PERIOD_DOSSIERS_SQL`].
pub fn with_period_dossiers(sql: &str) -> String {
    sql.replace("{period_dossiers}", PERIOD_DOSSIERS_SQL)
}

/// Report grouping (docs/contract.md §3 `--group-by`: field, agency, commune, procedure; the
/// others are extensions used by the on-time indicator and the dashboard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    #[default]
    Field,
    Agency,
    Commune,
    Procedure,
    Province,
    ProcedureLevel,
    Channel,
    /// Each source system reporting the dossier (a dossier reported by two systems is
    /// in both groups; the TOTAL row counts it once).
    Source,
    /// Phi địa giới (received outside the applicant's commune/province) or not.
    NonTerritorial,
}

impl GroupBy {
    /// Every grouping, with its parameter name.
    pub const ALL: [(&'static str, GroupBy); 9] = [
        ("field", GroupBy::Field),
        ("agency", GroupBy::Agency),
        ("commune", GroupBy::Commune),
        ("procedure", GroupBy::Procedure),
        ("province", GroupBy::Province),
        ("procedure_level", GroupBy::ProcedureLevel),
        ("channel", GroupBy::Channel),
        ("source", GroupBy::Source),
        ("non_territorial", GroupBy::NonTerritorial),
    ];

    /// Parse a `--group-by` value.
    pub fn parse(s: &str) -> Result<GroupBy, QueryError> {
        GroupBy::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, g)| *g)
            .ok_or_else(|| {
                QueryError::BadInput(format!(
                    "group_by không hợp lệ: {s:?} (field|agency|commune|procedure|province|\
                     procedure_level|channel|source|non_territorial)"
                ))
            })
    }

    /// The parameter name.
    pub fn name(self) -> &'static str {
        GroupBy::ALL
            .iter()
            .find(|(_, g)| *g == self)
            .map_or("field", |(n, _)| *n)
    }

    /// Column expressions (code, name) over the rows of `period_dossiers.sql` (alias `c`).
    pub fn columns(self) -> (&'static str, &'static str) {
        match self {
            GroupBy::Field => ("c.field_code", "c.field_name"),
            GroupBy::Agency => ("c.agency_code", "c.agency_name"),
            GroupBy::Commune => ("c.commune_code", "c.commune_name"),
            GroupBy::Procedure => ("c.procedure_code", "c.procedure_name"),
            GroupBy::Province => ("c.province_code", "c.province_name"),
            GroupBy::ProcedureLevel => (
                "c.procedure_level",
                "CASE c.procedure_level WHEN 'full_online' THEN 'Toàn trình' \
                 WHEN 'partial_online' THEN 'Một phần' WHEN 'offline' THEN 'Trực tiếp' END",
            ),
            GroupBy::Channel => (
                "c.channel",
                "CASE c.channel WHEN 'online' THEN 'Trực tuyến' WHEN 'in_person' THEN 'Trực tiếp' \
                 WHEN 'postal' THEN 'Bưu chính' END",
            ),
            GroupBy::Source => (
                "unnest(string_to_array(c.sources, ','))",
                "CAST(NULL AS VARCHAR)",
            ),
            GroupBy::NonTerritorial => (
                "CASE WHEN c.non_territorial THEN 'non_territorial' \
                 WHEN NOT c.non_territorial THEN 'territorial' END",
                "CASE WHEN c.non_territorial THEN 'Phi địa giới' \
                 WHEN NOT c.non_territorial THEN 'Trong địa giới' END",
            ),
        }
    }
}

/// Drill-down filters besides province/commune (each `None` = any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub agency: Option<String>,
    pub field: Option<String>,
    pub procedure: Option<String>,
    pub procedure_level: Option<String>,
    pub non_territorial: Option<bool>,
}

impl Filters {
    /// Validate codes and the procedure level.
    pub fn validate(&self) -> Result<(), QueryError> {
        for c in [&self.agency, &self.field, &self.procedure]
            .into_iter()
            .flatten()
        {
            if !code_ok(c) {
                return Err(QueryError::BadInput(format!("mã không hợp lệ: {c:?}")));
            }
        }
        if let Some(l) = &self.procedure_level {
            if !["full_online", "partial_online", "offline"].contains(&l.as_str()) {
                return Err(QueryError::BadInput(format!(
                    "procedure_level không hợp lệ: {l:?} (full_online|partial_online|offline)"
                )));
            }
        }
        Ok(())
    }
}

/// The bound values of `$1`–`$9` of `period_dossiers.sql`.
pub fn period_params(
    cal: &Calendar,
    from: NaiveDate,
    to: NaiveDate,
    province: &Option<String>,
    commune: &Option<String>,
    filters: &Filters,
) -> Vec<ScalarValue> {
    let start = cal.local_midnight(from);
    let end = cal.local_midnight(to) + giamsat_warehouse::calendar::DAY_MICROS;
    let ts = |v: i64| ScalarValue::TimestampMicrosecond(Some(v), Some("UTC".into()));
    vec![
        ts(start),
        ts(end),
        ScalarValue::Utf8(province.clone()),
        ScalarValue::Utf8(commune.clone()),
        ScalarValue::Utf8(filters.agency.clone()),
        ScalarValue::Utf8(filters.field.clone()),
        ScalarValue::Utf8(filters.procedure.clone()),
        ScalarValue::Utf8(filters.procedure_level.clone()),
        ScalarValue::Boolean(filters.non_territorial),
    ]
}

/// Parameters of one report.
#[derive(Debug, Clone)]
pub struct Params {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub province: Option<String>,
    pub commune: Option<String>,
    pub group_by: GroupBy,
    pub filters: Filters,
}

/// One row: docs/contract.md §4 columns, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Row {
    pub group: String,
    pub group_name: String,
    pub total: i64,
    pub received_online: i64,
    pub received_offline: i64,
    pub carried_over: i64,
    pub ended: i64,
    pub ended_early: i64,
    pub ended_on_day: i64,
    pub ended_late: i64,
    pub in_progress: i64,
    pub in_progress_in_time: i64,
    pub in_progress_overdue: i64,
}

impl Row {
    /// The eleven Biểu 06 numbers, columns 1–11 in order.
    pub fn counts(&self) -> [i64; 11] {
        [
            self.total,
            self.received_online,
            self.received_offline,
            self.carried_over,
            self.ended,
            self.ended_early,
            self.ended_on_day,
            self.ended_late,
            self.in_progress,
            self.in_progress_in_time,
            self.in_progress_overdue,
        ]
    }
}

/// CSV header (docs/contract.md §4).
pub const COLUMNS: [&str; 13] = [
    "group",
    "group_name",
    "total",
    "received_online",
    "received_offline",
    "carried_over",
    "ended",
    "ended_early",
    "ended_on_day",
    "ended_late",
    "in_progress",
    "in_progress_in_time",
    "in_progress_overdue",
];

/// Official Vietnamese headings of the Biểu 06 columns (for XLSX and the dashboard).
pub const HEADINGS_VI: [&str; 13] = [
    "Mã",
    "Lĩnh vực / đơn vị",
    "Tổng số nhận giải quyết",
    "Mới tiếp nhận trực tuyến",
    "Mới tiếp nhận trực tiếp, bưu chính",
    "Từ kỳ trước chuyển sang",
    "Đã giải quyết",
    "Trước hạn",
    "Đúng hạn",
    "Quá hạn",
    "Đang giải quyết",
    "Trong hạn",
    "Quá hạn",
];

/// Parse a local date `YYYY-MM-DD`.
pub fn parse_date(name: &str, s: &str) -> Result<NaiveDate, QueryError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| QueryError::BadInput(format!("{name} phải là ngày YYYY-MM-DD: {s:?}")))
}

impl Params {
    /// Validate and build parameters.
    pub fn new(
        from: NaiveDate,
        to: NaiveDate,
        province: Option<String>,
        commune: Option<String>,
        group_by: GroupBy,
    ) -> Result<Params, QueryError> {
        if from > to {
            return Err(QueryError::BadInput(format!(
                "from ({from}) phải không sau to ({to})"
            )));
        }
        for c in province.iter().chain(commune.iter()) {
            if !code_ok(c) {
                return Err(QueryError::BadInput(format!(
                    "mã đơn vị không hợp lệ: {c:?}"
                )));
            }
        }
        Ok(Params {
            from,
            to,
            province,
            commune,
            group_by,
            filters: Filters::default(),
        })
    }

    /// The same parameters with drill-down filters.
    pub fn with_filters(mut self, filters: Filters) -> Result<Params, QueryError> {
        filters.validate()?;
        self.filters = filters;
        Ok(self)
    }
}

fn int_col(b: &RecordBatch, name: &str) -> Result<Int64Array, QueryError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| QueryError::BadInput(format!("missing column {name}")))?;
    let c = cast(c, &DataType::Int64)?;
    Ok(c.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .unwrap_or_else(|| Int64Array::from(vec![0; b.num_rows()])))
}

/// Compute Biểu 06 for the parameters: from the daily rollup when the session has it
/// (equal to the dossier-level SQL, see `rollup`), else from the dossiers.
pub async fn run(ctx: &SessionContext, cal: &Calendar, p: &Params) -> Result<Vec<Row>, QueryError> {
    if crate::rollup::available(ctx) {
        return crate::rollup::run(ctx, cal, p).await;
    }
    run_dossiers(ctx, cal, p).await
}

/// Compute Biểu 06 with the dossier-level SQL (the definition).
pub async fn run_dossiers(
    ctx: &SessionContext,
    cal: &Calendar,
    p: &Params,
) -> Result<Vec<Row>, QueryError> {
    let (code, name) = p.group_by.columns();
    let template = if p.group_by == GroupBy::Source {
        SQL_BY_SOURCE
    } else {
        SQL
    };
    let sql = with_period_dossiers(template)
        .replace("{group_code}", code)
        .replace("{group_name}", name);
    let df = ctx.sql(&sql).await?.with_param_values(period_params(
        cal,
        p.from,
        p.to,
        &p.province,
        &p.commune,
        &p.filters,
    ))?;
    let batches = df.collect().await?;
    let mut rows = Vec::new();
    for b in &batches {
        let g = string_col(b, "group")?;
        let n = string_col(b, "group_name")?;
        let ints = COLUMNS[2..]
            .iter()
            .map(|c| int_col(b, c))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            let v = |k: usize| {
                if ints[k].is_null(i) {
                    0
                } else {
                    ints[k].value(i)
                }
            };
            rows.push(Row {
                group: g.value(i).to_string(),
                group_name: n.value(i).to_string(),
                total: v(0),
                received_online: v(1),
                received_offline: v(2),
                carried_over: v(3),
                ended: v(4),
                ended_early: v(5),
                ended_on_day: v(6),
                ended_late: v(7),
                in_progress: v(8),
                in_progress_in_time: v(9),
                in_progress_overdue: v(10),
            });
        }
    }
    Ok(rows)
}

/// Render rows as CSV with the docs/contract.md §4 header.
pub fn to_csv(rows: &[Row]) -> Result<String, QueryError> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(COLUMNS)
        .map_err(|e| QueryError::BadInput(e.to_string()))?;
    for r in rows {
        w.serialize(r)
            .map_err(|e| QueryError::BadInput(e.to_string()))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| QueryError::BadInput(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
