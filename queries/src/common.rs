//! Helpers shared by the operational runners (`alerts`, `recon`, `health`, `quality`):
//! reading typed values out of result batches, instants rendered for people, and the
//! validation of parameters that the runners have in common.

use chrono::{DateTime, FixedOffset, SecondsFormat};
use datafusion::arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use giamsat_warehouse::calendar::MICROS;
use giamsat_warehouse::event::{bool_col, string_col, ts_col};

use crate::QueryError;

/// Microseconds in one hour.
pub const HOUR_MICROS: i64 = 3_600 * MICROS;

/// Largest `limit` a caller may ask for.
pub const MAX_LIMIT: usize = 100_000;

/// A UTC instant (microseconds) as a bound SQL parameter (`NULL` when `None`).
pub fn ts_param(v: Option<i64>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(v, Some("UTC".into()))
}

/// An instant as RFC 3339 in local time (Asia/Ho_Chi_Minh, +07:00, no DST), e.g.
/// `2026-04-24T15:00:00+07:00`; `None` for instants chrono cannot represent (callers
/// must handle the "always overdue" marker of `warehouse::facts` themselves).
pub fn local_rfc3339(micros: i64) -> Option<String> {
    let tz = FixedOffset::east_opt(7 * 3_600)?;
    let t = DateTime::from_timestamp_micros(micros)?;
    Some(
        t.with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::AutoSi, false),
    )
}

/// An instant as a short local date-time for Vietnamese text, e.g. `24/04/2026 15:00`
/// (seconds shown only when not zero).
pub fn local_short(micros: i64) -> String {
    let Some(tz) = FixedOffset::east_opt(7 * 3_600) else {
        return String::new();
    };
    match DateTime::from_timestamp_micros(micros) {
        Some(t) => {
            let t = t.with_timezone(&tz);
            if chrono::Timelike::second(&t) == 0 {
                t.format("%d/%m/%Y %H:%M").to_string()
            } else {
                t.format("%d/%m/%Y %H:%M:%S").to_string()
            }
        }
        None => String::new(),
    }
}

/// An RFC 3339 instant (as the reports write them) as dd/mm/yyyy HH:MM in its own
/// offset, for Vietnamese readers; `None` when absent or not an instant.
pub fn rfc3339_short(t: Option<&str>) -> Option<String> {
    t.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.format("%d/%m/%Y %H:%M").to_string())
}

/// A duration in Vietnamese, e.g. `3 giờ 5 phút`, `30 phút`, `0 giây`.
pub fn duration_vi(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m, x) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    let mut parts = Vec::new();
    for (v, unit) in [(d, "ngày"), (h, "giờ"), (m, "phút"), (x, "giây")] {
        if v > 0 {
            parts.push(format!("{v} {unit}"));
        }
    }
    if parts.is_empty() {
        "0 giây".to_string()
    } else {
        parts.join(" ")
    }
}

/// A province, commune or procedure code (letters, digits, `.` and `-`, at most 32).
pub fn code_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// A source system code (docs/contract.md §1: `[a-z0-9-]{1,64}`).
pub fn source_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Check optional province / commune filters.
pub fn check_codes(province: Option<&str>, commune: Option<&str>) -> Result<(), QueryError> {
    for c in province.iter().chain(commune.iter()) {
        if !code_ok(c) {
            return Err(QueryError::BadInput(format!(
                "mã đơn vị không hợp lệ: {c:?}"
            )));
        }
    }
    Ok(())
}

/// Check a source code parameter.
pub fn check_source(name: &str, s: &str) -> Result<(), QueryError> {
    if source_ok(s) {
        Ok(())
    } else {
        Err(QueryError::BadInput(format!(
            "{name} không hợp lệ (cần [a-z0-9-]{{1,64}}): {s:?}"
        )))
    }
}

/// Check a `limit` parameter (1..=[`MAX_LIMIT`]).
pub fn check_limit(limit: usize) -> Result<(), QueryError> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(QueryError::BadInput(format!(
            "limit phải từ 1 đến {MAX_LIMIT}: {limit}"
        )))
    }
}

/// Check a number of hours: finite, within `[min, 100 000]`.
pub fn check_hours(name: &str, v: f64, min: f64) -> Result<(), QueryError> {
    if v.is_finite() && v >= min && v <= 100_000.0 {
        Ok(())
    } else {
        Err(QueryError::BadInput(format!(
            "{name} phải là số giờ từ {min} đến 100000: {v}"
        )))
    }
}

/// Hours as whole microseconds (for comparisons of instants in SQL).
pub fn hours_to_micros(h: f64) -> i64 {
    (h * HOUR_MICROS as f64).round() as i64
}

/// Typed access to the columns of one result batch, by name.
pub struct Cols<'a>(pub &'a RecordBatch);

impl Cols<'_> {
    pub fn rows(&self) -> usize {
        self.0.num_rows()
    }

    /// A string column (any string type).
    pub fn strings(&self, name: &str) -> Result<StrCol, QueryError> {
        Ok(StrCol(string_col(self.0, name)?))
    }

    /// A timestamp column as UTC microseconds.
    pub fn instants(&self, name: &str) -> Result<IntCol, QueryError> {
        let a = ts_col(self.0, name)?;
        Ok(IntCol(Int64Array::from(
            (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                .collect::<Vec<_>>(),
        )))
    }

    /// An integer column (cast to Int64).
    pub fn ints(&self, name: &str) -> Result<IntCol, QueryError> {
        let c = self
            .0
            .column_by_name(name)
            .ok_or_else(|| QueryError::BadInput(format!("missing column {name}")))?;
        let c = cast(c, &DataType::Int64)?;
        let a = c
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| QueryError::BadInput(format!("column {name} is not an integer")))?;
        Ok(IntCol(a))
    }

    /// A float column (cast to Float64).
    pub fn floats(&self, name: &str) -> Result<FloatCol, QueryError> {
        let c = self
            .0
            .column_by_name(name)
            .ok_or_else(|| QueryError::BadInput(format!("missing column {name}")))?;
        let c = cast(c, &DataType::Float64)?;
        let a = c
            .as_any()
            .downcast_ref::<Float64Array>()
            .cloned()
            .ok_or_else(|| QueryError::BadInput(format!("column {name} is not a number")))?;
        Ok(FloatCol(a))
    }

    /// A boolean column (null reads as false).
    pub fn bools(&self, name: &str) -> Result<BoolCol, QueryError> {
        Ok(BoolCol(bool_col(self.0, name)?))
    }
}

/// A string column.
pub struct StrCol(StringArray);

impl StrCol {
    pub fn get(&self, i: usize) -> Option<String> {
        (!self.0.is_null(i)).then(|| self.0.value(i).to_string())
    }
    /// The value, or `""` when null.
    pub fn text(&self, i: usize) -> String {
        self.get(i).unwrap_or_default()
    }
}

/// An integer (or instant) column.
pub struct IntCol(Int64Array);

impl IntCol {
    pub fn get(&self, i: usize) -> Option<i64> {
        (!self.0.is_null(i)).then(|| self.0.value(i))
    }
    /// The value, or 0 when null.
    pub fn or_zero(&self, i: usize) -> i64 {
        self.get(i).unwrap_or(0)
    }
}

/// A float column.
pub struct FloatCol(Float64Array);

impl FloatCol {
    pub fn get(&self, i: usize) -> Option<f64> {
        (!self.0.is_null(i)).then(|| self.0.value(i))
    }
}

/// A boolean column.
pub struct BoolCol(datafusion::arrow::array::BooleanArray);

impl BoolCol {
    pub fn get(&self, i: usize) -> bool {
        !self.0.is_null(i) && self.0.value(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_render_in_local_time() {
        // 2026-04-24T08:00:00Z
        assert_eq!(
            local_rfc3339(1_777_017_600 * MICROS).as_deref(),
            Some("2026-04-24T15:00:00+07:00")
        );
        assert_eq!(local_rfc3339(i64::MIN), None);
        assert_eq!(local_short(1_777_017_600 * MICROS), "24/04/2026 15:00");
        assert_eq!(duration_vi(10_800), "3 giờ");
        assert_eq!(duration_vi(-1_800), "30 phút");
        assert_eq!(duration_vi(90_061), "1 ngày 1 giờ 1 phút 1 giây");
        assert_eq!(duration_vi(0), "0 giây");
    }

    #[test]
    fn codes_and_limits_are_checked() {
        assert!(code_ok("31.11311") && !code_ok("31'; DROP") && !code_ok(""));
        assert!(source_ok("hp-motcua") && !source_ok("HP") && !source_ok(""));
        assert!(check_limit(0).is_err() && check_limit(MAX_LIMIT + 1).is_err());
        assert!(check_limit(1).is_ok());
        assert!(check_hours("x", f64::NAN, 0.0).is_err());
        assert!(check_hours("x", -1.0, 0.0).is_err());
        assert!(check_hours("x", 0.0, 0.0).is_ok());
    }
}
