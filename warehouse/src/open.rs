//! `open_states`: the in-progress state segments of the counted dossiers that have not
//! ended, with the columns alerts show. Partitioned like the facts and rewritten with
//! them, so the alert list reads the open dossiers only, not every state segment.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::facts::{DossierFacts, StateRow};
use crate::store::PART;
use crate::WarehouseError;

/// The table name.
pub const OPEN_STATES: &str = "open_states";

/// The dimension columns copied from the facts (indices into `event::DIM_COLUMNS`).
const DIMS: [(&str, usize); 7] = [
    ("procedure_code", 0),
    ("procedure_name", 1),
    ("field_code", 3),
    ("agency_code", 5),
    ("agency_name", 6),
    ("province_code", 7),
    ("commune_code", 8),
];

/// Schema of `open_states`.
pub fn open_states_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new("dossier_id", DataType::Utf8, false),
        Field::new("sources", DataType::Utf8, false),
    ];
    fields.extend(
        DIMS.iter()
            .map(|(n, _)| Field::new(*n, DataType::Utf8, true)),
    );
    fields.extend([
        Field::new("received_at", ts(), false),
        Field::new("valid_from", ts(), false),
        Field::new("valid_to", ts(), true),
        Field::new("due_at", ts(), true),
        Field::new("overdue_after", ts(), true),
        Field::new(PART, DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// The rows of the counted, not ended dossiers among `facts` (one per state segment).
pub fn open_states_batch(
    facts: &[DossierFacts],
    states: &[StateRow],
    offset: i64,
) -> Result<RecordBatch, WarehouseError> {
    let open: HashMap<&str, &DossierFacts> = facts
        .iter()
        .filter(|f| f.counted && f.ended_at.is_none() && f.received_at.is_some())
        .map(|f| (f.dossier_id.as_str(), f))
        .collect();
    let rows: Vec<(&DossierFacts, &StateRow)> = states
        .iter()
        .filter_map(|s| open.get(s.dossier_id.as_str()).map(|f| (*f, s)))
        .collect();
    let ts = |v: Vec<Option<i64>>| {
        Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
            as Arc<dyn datafusion::arrow::array::Array>
    };
    let mut cols: Vec<Arc<dyn datafusion::arrow::array::Array>> = vec![
        Arc::new(StringArray::from(
            rows.iter()
                .map(|(f, _)| f.dossier_id.as_str())
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|(f, _)| f.sources.as_str())
                .collect::<Vec<_>>(),
        )),
    ];
    for (_, i) in DIMS {
        cols.push(Arc::new(StringArray::from(
            rows.iter()
                .map(|(f, _)| f.dims.get(i).and_then(|d| d.as_deref()))
                .collect::<Vec<_>>(),
        )));
    }
    cols.push(ts(rows.iter().map(|(f, _)| f.received_at).collect()));
    cols.push(ts(rows.iter().map(|(_, s)| Some(s.valid_from)).collect()));
    cols.push(ts(rows.iter().map(|(_, s)| s.valid_to).collect()));
    cols.push(ts(rows.iter().map(|(_, s)| s.due_at).collect()));
    cols.push(ts(rows.iter().map(|(_, s)| s.overdue_after).collect()));
    cols.push(Arc::new(StringArray::from(
        rows.iter()
            .map(|(f, _)| crate::store::part_of(f.first_event_at, offset))
            .collect::<Vec<_>>(),
    )));
    Ok(RecordBatch::try_new(open_states_schema(), cols)?)
}
