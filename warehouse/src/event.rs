//! The canonical event (docs/contract.md §1) and its Arrow layout in the `events` table.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::WarehouseError;

/// Event types of docs/contract.md §1, in the order used to break ties between events at the
/// same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Submitted,
    Received,
    Rejected,
    Processing,
    Transferred,
    SupplementRequested,
    SupplementReceived,
    FinancialObligation,
    Paid,
    Resolved,
    Returned,
    Withdrawn,
    Stopped,
    FeedbackReceived,
    FeedbackResolved,
}

impl EventType {
    pub const ALL: [EventType; 15] = [
        EventType::Submitted,
        EventType::Received,
        EventType::Rejected,
        EventType::Processing,
        EventType::Transferred,
        EventType::SupplementRequested,
        EventType::SupplementReceived,
        EventType::FinancialObligation,
        EventType::Paid,
        EventType::Resolved,
        EventType::Returned,
        EventType::Withdrawn,
        EventType::Stopped,
        EventType::FeedbackReceived,
        EventType::FeedbackResolved,
    ];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Submitted => "submitted",
            EventType::Received => "received",
            EventType::Rejected => "rejected",
            EventType::Processing => "processing",
            EventType::Transferred => "transferred",
            EventType::SupplementRequested => "supplement_requested",
            EventType::SupplementReceived => "supplement_received",
            EventType::FinancialObligation => "financial_obligation",
            EventType::Paid => "paid",
            EventType::Resolved => "resolved",
            EventType::Returned => "returned",
            EventType::Withdrawn => "withdrawn",
            EventType::Stopped => "stopped",
            EventType::FeedbackReceived => "feedback_received",
            EventType::FeedbackResolved => "feedback_resolved",
        }
    }

    /// The Vietnamese name of the step.
    pub fn label(self) -> &'static str {
        match self {
            EventType::Submitted => "Nộp hồ sơ",
            EventType::Received => "Tiếp nhận",
            EventType::Rejected => "Từ chối tiếp nhận",
            EventType::Processing => "Đang xử lý",
            EventType::Transferred => "Chuyển xử lý",
            EventType::SupplementRequested => "Yêu cầu bổ sung",
            EventType::SupplementReceived => "Nhận hồ sơ bổ sung",
            EventType::FinancialObligation => "Thông báo nghĩa vụ tài chính",
            EventType::Paid => "Đã nộp phí, lệ phí",
            EventType::Resolved => "Đã giải quyết",
            EventType::Returned => "Trả kết quả",
            EventType::Withdrawn => "Công dân rút hồ sơ",
            EventType::Stopped => "Dừng xử lý",
            EventType::FeedbackReceived => "Tiếp nhận phản ánh, kiến nghị",
            EventType::FeedbackResolved => "Xử lý xong phản ánh, kiến nghị",
        }
    }

    /// Parse a canonical name.
    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether this event ends a dossier (docs/domain.md "End time").
    pub fn is_end(self) -> bool {
        matches!(
            self,
            EventType::Resolved | EventType::Returned | EventType::Stopped | EventType::Withdrawn
        )
    }

    /// Whether this is a feedback (not dossier) event.
    pub fn is_feedback(self) -> bool {
        matches!(
            self,
            EventType::FeedbackReceived | EventType::FeedbackResolved
        )
    }
}

/// One canonical event. Instants are microseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Event {
    pub source: String,
    pub event_id: String,
    pub dossier_id: Option<String>,
    pub feedback_id: Option<String>,
    pub event_type: String,
    pub at: i64,
    pub due_at: Option<i64>,
    pub procedure_code: Option<String>,
    pub procedure_name: Option<String>,
    pub procedure_level: Option<String>,
    pub field_code: Option<String>,
    pub field_name: Option<String>,
    pub agency_code: Option<String>,
    pub agency_name: Option<String>,
    pub province_code: Option<String>,
    pub commune_code: Option<String>,
    pub channel: Option<String>,
    pub applicant_province_code: Option<String>,
    pub applicant_commune_code: Option<String>,
    pub paid_online: Option<bool>,
    pub digitized: Option<bool>,
    pub result_digitized: Option<bool>,
    pub data_reused: Option<bool>,
    pub vneid: Option<bool>,
    pub satisfied: Option<bool>,
    /// Other fields of the record, as a JSON object text.
    pub attrs: Option<String>,
}

/// The string dimension columns, in table order (after `due_at`).
pub const DIM_COLUMNS: [&str; 12] = [
    "procedure_code",
    "procedure_name",
    "procedure_level",
    "field_code",
    "field_name",
    "agency_code",
    "agency_name",
    "province_code",
    "commune_code",
    "channel",
    "applicant_province_code",
    "applicant_commune_code",
];

/// The boolean flag columns, in table order.
pub const FLAG_COLUMNS: [&str; 6] = [
    "paid_online",
    "digitized",
    "result_digitized",
    "data_reused",
    "vneid",
    "satisfied",
];

impl Event {
    /// Dimension values in `DIM_COLUMNS` order.
    pub fn dims_ref(&self) -> [&Option<String>; 12] {
        [
            &self.procedure_code,
            &self.procedure_name,
            &self.procedure_level,
            &self.field_code,
            &self.field_name,
            &self.agency_code,
            &self.agency_name,
            &self.province_code,
            &self.commune_code,
            &self.channel,
            &self.applicant_province_code,
            &self.applicant_commune_code,
        ]
    }

    /// Flag values in `FLAG_COLUMNS` order.
    pub fn flags_ref(&self) -> [Option<bool>; 6] {
        [
            self.paid_online,
            self.digitized,
            self.result_digitized,
            self.data_reused,
            self.vneid,
            self.satisfied,
        ]
    }

    /// Mutable dimension slots in `DIM_COLUMNS` order.
    pub fn dims_mut(&mut self) -> [&mut Option<String>; 12] {
        [
            &mut self.procedure_code,
            &mut self.procedure_name,
            &mut self.procedure_level,
            &mut self.field_code,
            &mut self.field_name,
            &mut self.agency_code,
            &mut self.agency_name,
            &mut self.province_code,
            &mut self.commune_code,
            &mut self.channel,
            &mut self.applicant_province_code,
            &mut self.applicant_commune_code,
        ]
    }

    /// Mutable flag slots in `FLAG_COLUMNS` order.
    pub fn flags_mut(&mut self) -> [&mut Option<bool>; 6] {
        [
            &mut self.paid_online,
            &mut self.digitized,
            &mut self.result_digitized,
            &mut self.data_reused,
            &mut self.vneid,
            &mut self.satisfied,
        ]
    }

    /// The parsed event type (events in the table always have a valid one).
    pub fn kind(&self) -> Option<EventType> {
        EventType::parse(&self.event_type)
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Schema of the `events` table. `month` (local `YYYY-MM` of `at`) is the partition column.
pub fn events_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("event_id", DataType::Utf8, false),
        Field::new("dossier_id", DataType::Utf8, true),
        Field::new("feedback_id", DataType::Utf8, true),
        Field::new("type", DataType::Utf8, false),
        Field::new("at", ts_type(), false),
        Field::new("due_at", ts_type(), true),
    ];
    fields.extend(
        DIM_COLUMNS
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true)),
    );
    fields.extend(
        FLAG_COLUMNS
            .iter()
            .map(|c| Field::new(*c, DataType::Boolean, true)),
    );
    fields.push(Field::new("attrs", DataType::Utf8, true));
    fields.push(Field::new("ingested_at", ts_type(), false));
    fields.push(Field::new("month", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// Local `YYYY-MM` of an instant (the partition value).
pub fn month_of(at: i64, offset_micros: i64) -> String {
    let local = chrono::DateTime::from_timestamp_micros(at + offset_micros)
        .map(|d| d.naive_utc())
        .unwrap_or_default();
    local.format("%Y-%m").to_string()
}

/// Build a record batch of the `events` table.
pub fn events_to_batch(
    events: &[Event],
    ingested_at: i64,
    offset_micros: i64,
) -> Result<RecordBatch, WarehouseError> {
    let strs = |f: &dyn Fn(&Event) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(events.len(), events.len() * 8);
        for e in events {
            b.append_option(f(e));
        }
        Arc::new(b.finish())
    };
    let mut cols: Vec<ArrayRef> = vec![
        strs(&|e| Some(e.source.as_str())),
        strs(&|e| Some(e.event_id.as_str())),
        strs(&|e| e.dossier_id.as_deref()),
        strs(&|e| e.feedback_id.as_deref()),
        strs(&|e| Some(e.event_type.as_str())),
    ];
    let mut at = TimestampMicrosecondBuilder::with_capacity(events.len());
    let mut due = TimestampMicrosecondBuilder::with_capacity(events.len());
    for e in events {
        at.append_value(e.at);
        due.append_option(e.due_at);
    }
    cols.push(Arc::new(at.finish().with_timezone("UTC")));
    cols.push(Arc::new(due.finish().with_timezone("UTC")));
    for i in 0..DIM_COLUMNS.len() {
        cols.push(strs(&|e| e.dims_ref()[i].as_deref()));
    }
    for i in 0..FLAG_COLUMNS.len() {
        let mut b = BooleanBuilder::with_capacity(events.len());
        for e in events {
            b.append_option(e.flags_ref()[i]);
        }
        cols.push(Arc::new(b.finish()));
    }
    cols.push(strs(&|e| e.attrs.as_deref()));
    let mut ing = TimestampMicrosecondBuilder::with_capacity(events.len());
    for _ in events {
        ing.append_value(ingested_at);
    }
    cols.push(Arc::new(ing.finish().with_timezone("UTC")));
    let months: Vec<String> = events
        .iter()
        .map(|e| month_of(e.at, offset_micros))
        .collect();
    cols.push(Arc::new(StringArray::from(months)));
    Ok(RecordBatch::try_new(events_schema(), cols)?)
}

/// A string column of any string type, as a `StringArray`.
pub fn string_col(batch: &RecordBatch, name: &str) -> Result<StringArray, WarehouseError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| WarehouseError::Data(format!("missing column {name}")))?;
    let c = cast(col, &DataType::Utf8)?;
    c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| WarehouseError::Data(format!("column {name} is not a string")))
}

/// A timestamp column as microseconds.
pub fn ts_col(
    batch: &RecordBatch,
    name: &str,
) -> Result<TimestampMicrosecondArray, WarehouseError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| WarehouseError::Data(format!("missing column {name}")))?;
    let c = cast(col, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    c.as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .cloned()
        .ok_or_else(|| WarehouseError::Data(format!("column {name} is not a timestamp")))
}

/// A boolean column.
pub fn bool_col(batch: &RecordBatch, name: &str) -> Result<BooleanArray, WarehouseError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| WarehouseError::Data(format!("missing column {name}")))?;
    col.as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| WarehouseError::Data(format!("column {name} is not boolean")))
}

fn opt(a: &StringArray, i: usize) -> Option<String> {
    if a.is_null(i) {
        None
    } else {
        Some(a.value(i).to_string())
    }
}

/// Read events back from batches of the `events` table (any subset of rows, all columns).
pub fn events_from_batches(batches: &[RecordBatch]) -> Result<Vec<Event>, WarehouseError> {
    let mut out = Vec::new();
    for b in batches {
        let source = string_col(b, "source")?;
        let event_id = string_col(b, "event_id")?;
        let dossier_id = string_col(b, "dossier_id")?;
        let feedback_id = string_col(b, "feedback_id")?;
        let typ = string_col(b, "type")?;
        let at = ts_col(b, "at")?;
        let due = ts_col(b, "due_at")?;
        let dims = DIM_COLUMNS
            .iter()
            .map(|c| string_col(b, c))
            .collect::<Result<Vec<_>, _>>()?;
        let flags = FLAG_COLUMNS
            .iter()
            .map(|c| bool_col(b, c))
            .collect::<Result<Vec<_>, _>>()?;
        let attrs = string_col(b, "attrs")?;
        for i in 0..b.num_rows() {
            let mut e = Event {
                source: source.value(i).to_string(),
                event_id: event_id.value(i).to_string(),
                dossier_id: opt(&dossier_id, i),
                feedback_id: opt(&feedback_id, i),
                event_type: typ.value(i).to_string(),
                at: at.value(i),
                due_at: if due.is_null(i) {
                    None
                } else {
                    Some(due.value(i))
                },
                attrs: opt(&attrs, i),
                ..Default::default()
            };
            for (slot, col) in e.dims_mut().into_iter().zip(&dims) {
                *slot = opt(col, i);
            }
            for (slot, col) in e.flags_mut().into_iter().zip(&flags) {
                *slot = if col.is_null(i) {
                    None
                } else {
                    Some(col.value(i))
                };
            }
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip() {
        let e = Event {
            source: "hp-motcua".into(),
            event_id: "e1".into(),
            dossier_id: Some("D1".into()),
            event_type: "received".into(),
            at: 1_767_580_000_000_000,
            due_at: Some(1_767_900_000_000_000),
            field_code: Some("CT".into()),
            channel: Some("online".into()),
            paid_online: Some(true),
            attrs: Some("{\"x\":1}".into()),
            ..Default::default()
        };
        let b = events_to_batch(std::slice::from_ref(&e), 5, 7 * 3_600_000_000).expect("batch");
        let back = events_from_batches(&[b]).expect("back");
        assert_eq!(back, vec![e]);
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }
}
