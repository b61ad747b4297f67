//! `discrepancies`: the reconciliation's findings (`warehouse/sql/recon.sql`, one row per
//! discrepancy between two systems' reports of a dossier), kept per dossier and rewritten
//! with the facts' partitions, so the reconciliation endpoint reads the discrepancies,
//! not every (dossier, source). Computed with the configured portal source and
//! end-time tolerance (`[sync]`), which each row records.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::calendar::MICROS;
use crate::config::SyncConfig;
use crate::store::PART;
use crate::WarehouseError;

/// The table name.
pub const DISCREPANCIES: &str = "discrepancies";

/// Reconciliation, step 2: the discrepancies among the rows of a table `per_source`
/// (one row per dossier and source; parameters documented in the file).
pub const RECON_SQL: &str = include_str!("../sql/recon.sql");

/// Schema of `discrepancies`.
pub fn discrepancies_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("dossier_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("source_a", DataType::Utf8, false),
        Field::new("source_b", DataType::Utf8, true),
        Field::new("a_received_at", ts(), true),
        Field::new("b_received_at", ts(), true),
        Field::new("a_received_count", DataType::Int64, true),
        Field::new("a_end_type", DataType::Utf8, true),
        Field::new("b_end_type", DataType::Utf8, true),
        Field::new("a_ended_at", ts(), true),
        Field::new("b_ended_at", ts(), true),
        Field::new("dossier_first_at", ts(), true),
        Field::new("portal_source", DataType::Utf8, false),
        Field::new("tolerance_seconds", DataType::Int64, false),
        Field::new(PART, DataType::Utf8, false),
    ]))
}

/// The discrepancies of the dossiers whose `dossier_sources` rows are `sources`.
pub async fn discrepancies_batch(
    sources: &RecordBatch,
    sync: &SyncConfig,
) -> Result<RecordBatch, WarehouseError> {
    let schema = discrepancies_schema();
    if sources.num_rows() == 0 {
        return Ok(RecordBatch::new_empty(schema));
    }
    let ctx = SessionContext::new();
    ctx.register_table(
        "dossier_sources_rows",
        Arc::new(MemTable::try_new(
            sources.schema(),
            vec![vec![sources.clone()]],
        )?),
    )?;
    let per_source = ctx
        .sql(
            "SELECT dossier_id, source, source = $1 AS is_portal, received_at, received_count, \
             end_type, ended_at FROM dossier_sources_rows WHERE reported",
        )
        .await?
        .with_param_values(vec![ScalarValue::Utf8(Some(sync.portal_source.clone()))])?;
    ctx.register_table("per_source", per_source.into_view())?;
    let found = ctx.sql(RECON_SQL).await?.with_param_values(vec![
        ScalarValue::Utf8(Some(sync.portal_source.clone())),
        ScalarValue::Int64(Some(sync.end_time_tolerance_seconds * MICROS)),
    ])?;
    ctx.register_table("found", found.into_view())?;
    let rows = ctx
        .sql(
            "SELECT f.*, d.dossier_first_at, $1 AS portal_source, $2 AS tolerance_seconds, \
             d.first_event_month \
             FROM found f \
             JOIN (SELECT DISTINCT dossier_id, dossier_first_at, first_event_month \
                   FROM dossier_sources_rows) d ON d.dossier_id = f.dossier_id",
        )
        .await?
        .with_param_values(vec![
            ScalarValue::Utf8(Some(sync.portal_source.clone())),
            ScalarValue::Int64(Some(sync.end_time_tolerance_seconds)),
        ])?
        .collect()
        .await?;
    let rows = rows
        .iter()
        .map(|b| {
            let cols = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    Ok(datafusion::arrow::compute::cast(
                        b.column(i),
                        f.data_type(),
                    )?)
                })
                .collect::<Result<Vec<_>, WarehouseError>>()?;
            Ok(RecordBatch::try_new(schema.clone(), cols)?)
        })
        .collect::<Result<Vec<_>, WarehouseError>>()?;
    Ok(datafusion::arrow::compute::concat_batches(&schema, &rows)?)
}
