//! Working-time scalar functions for SQL, backed by the warehouse calendar:
//! `working_seconds(a, b)` (seconds of working time in `[a, b)`) and
//! `add_working_days(ts, n)` (first instant at which `n` working days have elapsed).
//! Instants outside the calendar's years give NULL.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use giamsat_warehouse::calendar::MICROS;
use giamsat_warehouse::Calendar;

fn ts_utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn as_micros(a: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    let c = cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    match c.as_any().downcast_ref::<TimestampMicrosecondArray>() {
        Some(t) => Ok(t.clone()),
        None => exec_err!("expected a timestamp"),
    }
}

struct CalendarFn {
    name: &'static str,
    signature: Signature,
    calendar: Arc<Calendar>,
}

/// The name only: DataFusion formats a function while planning, and the calendar (every
/// holiday and working day of the years it holds) is long.
impl std::fmt::Debug for CalendarFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalendarFn")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for CalendarFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.calendar, &other.calendar)
    }
}
impl Eq for CalendarFn {}
impl Hash for CalendarFn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        (Arc::as_ptr(&self.calendar) as usize).hash(state);
    }
}

impl ScalarUDFImpl for CalendarFn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(if self.name == "working_seconds" {
            DataType::Float64
        } else {
            ts_utc()
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [a, b] = arrays.as_slice() else {
            return exec_err!("{} takes two arguments", self.name);
        };
        let a = as_micros(a)?;
        let cal = &self.calendar;
        if self.name == "working_seconds" {
            let b = as_micros(b)?;
            let out: Float64Array = (0..a.len())
                .map(|i| {
                    if a.is_null(i) || b.is_null(i) {
                        None
                    } else {
                        cal.working_micros(a.value(i), b.value(i))
                            .map(|w| w as f64 / MICROS as f64)
                    }
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        } else {
            let n = cast(b, &DataType::Float64)?;
            let Some(n) = n.as_any().downcast_ref::<Float64Array>() else {
                return exec_err!("add_working_days: n must be a number");
            };
            let out: TimestampMicrosecondArray = (0..a.len())
                .map(|i| {
                    if a.is_null(i) || n.is_null(i) {
                        None
                    } else {
                        cal.add_working_days(a.value(i), n.value(i))
                    }
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out.with_timezone("UTC"))))
        }
    }
}

/// Register `working_seconds` and `add_working_days` on a session.
pub fn register(ctx: &SessionContext, calendar: Arc<Calendar>) {
    for name in ["working_seconds", "add_working_days"] {
        ctx.register_udf(ScalarUDF::new_from_impl(CalendarFn {
            name,
            signature: Signature::any(2, Volatility::Immutable),
            calendar: calendar.clone(),
        }));
    }
}
