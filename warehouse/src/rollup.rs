//! The daily rollup `daily_rollup`: per local day and per combination of the report
//! dimensions, what the counted dossiers add to every Biểu 06 count (flows of the day,
//! and the change of the in-progress and overdue stock at the next midnight). A period's
//! Biểu 06 is a sum over its rows (`queries::rollup`), so a report reads a table whose
//! size follows days × active combinations, not dossiers × state segments.
//!
//! The rows are partitioned like the facts ([`PART`], the month of the dossier's first
//! event) and rebuilt per partition from `dossier_facts` and `dossier_states` whenever
//! those partitions are rewritten, so a commit re-aggregates only the partitions it
//! touched. The rules of the rows are in `warehouse/sql/daily_rollup.sql`.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::prelude::{col, lit, SessionConfig, SessionContext};
use deltalake::protocol::SaveMode;

use crate::store::{Commit, Warehouse, DOSSIER_FACTS, DOSSIER_STATES, PART};
use crate::WarehouseError;

/// The table name.
pub const DAILY_ROLLUP: &str = "daily_rollup";

/// The SQL that builds the rows of some partitions.
const SQL: &str = include_str!("../sql/daily_rollup.sql");

/// The dimension columns of a row, in table order (besides the partition).
pub const DIMS: [&str; 12] = [
    "province_code",
    "commune_code",
    "agency_code",
    "agency_name",
    "field_code",
    "field_name",
    "procedure_code",
    "procedure_name",
    "procedure_level",
    "channel",
    "non_territorial",
    "sources",
];

/// The Biểu 06 count columns (flows and stocks), in table order.
pub const COUNTS: [&str; 8] = [
    "received_online",
    "received_offline",
    "ended",
    "ended_early",
    "ended_on_day",
    "ended_late",
    "open_delta",
    "overdue_delta",
];

/// The count columns the Decision 766 counts add after [`COUNTS`]: flags as flows, and
/// two flagged stocks.
pub const INDEX766_COUNTS: [&str; 7] = [
    "received_paid_online",
    "received_digitized",
    "received_data_reused",
    "received_vneid",
    "ended_result_digitized",
    "open_paid_online_delta",
    "open_vneid_delta",
];

/// Partitions aggregated per query of a full rebuild (bounds its memory).
const REBUILD_PARTS_PER_STEP: usize = 3;

/// Schema of `daily_rollup`.
pub fn rollup_schema() -> SchemaRef {
    let mut fields: Vec<Field> = DIMS
        .iter()
        .map(|d| match *d {
            "non_territorial" => Field::new(*d, DataType::Boolean, true),
            "channel" | "sources" => Field::new(*d, DataType::Utf8, false),
            _ => Field::new(*d, DataType::Utf8, true),
        })
        .collect();
    fields.push(Field::new("day_lo", DataType::Date32, false));
    fields.push(Field::new("day_hi", DataType::Date32, false));
    for c in COUNTS.iter().chain(&INDEX766_COUNTS) {
        fields.push(Field::new(*c, DataType::Int32, false));
    }
    fields.push(Field::new(
        "last_event_at",
        DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        ),
        false,
    ));
    fields.push(Field::new(PART, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

impl Warehouse {
    /// The rollup rows of the partitions `parts` (all partitions when `None`), computed
    /// from the current `dossier_facts` and `dossier_states`. Never an empty list: with
    /// no rows it is one empty batch, because a write of the rows (an overwrite of
    /// partitions left with no dossier included) needs at least one batch.
    async fn rollup_rows(
        &self,
        parts: Option<&BTreeSet<String>>,
    ) -> Result<Vec<RecordBatch>, WarehouseError> {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let schema = rollup_schema();
        for (name, alias) in [(DOSSIER_FACTS, "f_src"), (DOSSIER_STATES, "s_src")] {
            let Some(t) = self.open_table(name).await? else {
                return Ok(vec![RecordBatch::new_empty(schema)]);
            };
            t.update_datafusion_session(&ctx.state())?;
            let src = format!("{alias}_table");
            ctx.register_table(src.as_str(), t.table_provider().await?)?;
            let mut df = ctx.table(src.as_str()).await?;
            if let Some(parts) = parts {
                df = df.filter(
                    col(PART).in_list(parts.iter().map(|p| lit(p.as_str())).collect(), false),
                )?;
            }
            ctx.register_table(alias, df.into_view())?;
        }
        let mut dims: Vec<String> = DIMS.iter().map(|d| d.to_string()).collect();
        dims.push(PART.to_string());
        let sql = SQL.replace("{dims}", &dims.join(", "));
        let df = ctx
            .sql(&sql)
            .await?
            .with_param_values(vec![ScalarValue::Int64(Some(
                self.calendar.offset_micros(),
            ))])?;
        let rows = df
            .collect()
            .await?
            .iter()
            .map(|b| crate::derived::conform(b, &schema))
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(vec![RecordBatch::new_empty(schema)]);
        }
        Ok(rows)
    }

    /// Rewrite the rollup partitions `parts` from the current derived tables. Returns the
    /// new version of `daily_rollup`.
    pub(crate) async fn rollup_parts(
        &self,
        parts: &BTreeSet<String>,
    ) -> Result<Option<u64>, WarehouseError> {
        let table = self.open_table(DAILY_ROLLUP).await?;
        if table.is_none() {
            return self.rollup_rebuild().await;
        }
        if parts.is_empty() {
            return Ok(table.and_then(|t| t.version()));
        }
        // when every dossier of these partitions moved to others, the overwrite still
        // runs (with one empty batch), so that the partitions' old rows are removed
        let rows = self.rollup_rows(Some(parts)).await?;
        let v = self
            .commit(
                DAILY_ROLLUP,
                rows,
                Commit {
                    mode: SaveMode::Overwrite,
                    partitions: &[PART],
                    replace_where: Some(
                        col(PART).in_list(parts.iter().map(|p| lit(p.as_str())).collect(), false),
                    ),
                    ..Commit::default()
                },
            )
            .await?;
        Ok(Some(v))
    }

    /// Rebuild the whole rollup from the derived tables, a few partitions per step (the
    /// first step replaces the table and its schema).
    pub(crate) async fn rollup_rebuild(&self) -> Result<Option<u64>, WarehouseError> {
        let parts = self.fact_parts().await?;
        let mut version = None;
        let chunks: Vec<BTreeSet<String>> = parts
            .iter()
            .collect::<Vec<_>>()
            .chunks(REBUILD_PARTS_PER_STEP)
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect();
        if chunks.is_empty() {
            let empty = RecordBatch::new_empty(rollup_schema());
            return Ok(Some(self.write_rebuild_step(vec![empty], true).await?));
        }
        for (i, chunk) in chunks.iter().enumerate() {
            let rows = self.rollup_rows(Some(chunk)).await?;
            version = Some(self.write_rebuild_step(rows, i == 0).await?);
        }
        tracing::info!(partitions = parts.len(), "daily rollup rebuilt");
        Ok(version)
    }

    async fn write_rebuild_step(
        &self,
        rows: Vec<RecordBatch>,
        first: bool,
    ) -> Result<u64, WarehouseError> {
        self.commit(DAILY_ROLLUP, rows, Commit::rebuild_step(first))
            .await
    }

    /// The partitions of `dossier_facts`.
    async fn fact_parts(&self) -> Result<BTreeSet<String>, WarehouseError> {
        let Some(t) = self.open_table(DOSSIER_FACTS).await? else {
            return Ok(BTreeSet::new());
        };
        let ctx = SessionContext::new();
        t.update_datafusion_session(&ctx.state())?;
        ctx.register_table("facts_parts_list", t.table_provider().await?)?;
        let mut out = BTreeSet::new();
        let df = ctx
            .table("facts_parts_list")
            .await?
            .select_columns(&[PART])?
            .distinct()?;
        for b in df.collect().await? {
            let p = crate::event::string_col(&b, PART)?;
            for i in 0..b.num_rows() {
                out.insert(p.value(i).to_string());
            }
        }
        Ok(out)
    }
}
