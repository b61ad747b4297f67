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

use crate::QueryError;

/// The SQL file, verbatim.
pub const SQL: &str = include_str!("../sql/bieu06.sql");

/// Report grouping (CONTRACT §3 `--group-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    #[default]
    Field,
    Agency,
    Commune,
    Procedure,
}

impl GroupBy {
    /// Parse a `--group-by` value.
    pub fn parse(s: &str) -> Result<GroupBy, QueryError> {
        match s {
            "field" => Ok(GroupBy::Field),
            "agency" => Ok(GroupBy::Agency),
            "commune" => Ok(GroupBy::Commune),
            "procedure" => Ok(GroupBy::Procedure),
            o => Err(QueryError::BadInput(format!(
                "group_by không hợp lệ: {o:?} (field|agency|commune|procedure)"
            ))),
        }
    }

    fn columns(self) -> (&'static str, &'static str) {
        match self {
            GroupBy::Field => ("f.field_code", "f.field_name"),
            GroupBy::Agency => ("f.agency_code", "f.agency_name"),
            GroupBy::Commune => ("f.commune_code", "t.commune_name"),
            GroupBy::Procedure => ("f.procedure_code", "f.procedure_name"),
        }
    }
}

/// Parameters of one report.
#[derive(Debug, Clone)]
pub struct Params {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub province: Option<String>,
    pub commune: Option<String>,
    pub group_by: GroupBy,
}

/// One row: CONTRACT §4 columns, in order.
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

/// CSV header (CONTRACT §4).
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

fn code_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

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
        })
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

/// Compute Biểu 06 for the parameters.
pub async fn run(ctx: &SessionContext, cal: &Calendar, p: &Params) -> Result<Vec<Row>, QueryError> {
    let start = cal.local_midnight(p.from);
    let end = cal.local_midnight(p.to) + giamsat_warehouse::calendar::DAY_MICROS;
    let (code, name) = p.group_by.columns();
    let sql = SQL
        .replace("{group_code}", code)
        .replace("{group_name}", name);
    let ts = |v: i64| ScalarValue::TimestampMicrosecond(Some(v), Some("UTC".into()));
    let df = ctx.sql(&sql).await?.with_param_values(vec![
        ts(start),
        ts(end),
        ScalarValue::Utf8(p.province.clone()),
        ScalarValue::Utf8(p.commune.clone()),
    ])?;
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

/// Render rows as CSV with the CONTRACT §4 header.
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
