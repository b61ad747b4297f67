//! giamsat queries: the DataFusion session over the warehouse tables, the working-time
//! UDFs, and the indicator SQL files (`queries/sql/*.sql`) with their typed runners.

pub mod bieu06;
pub mod udf;

pub use datafusion::arrow;
pub use datafusion::prelude::SessionContext;

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Date32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionConfig;

use giamsat_warehouse::refdata;
use giamsat_warehouse::store::{self, Warehouse};
use giamsat_warehouse::WarehouseError;

/// Errors of the query layer. `BadInput` is the user's fault (HTTP 400, CLI exit 2).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    BadInput(String),
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("delta: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
}

/// The SQL of the `dossiers` view: the derived facts plus the class *now*.
const DOSSIERS_VIEW: &str = "CREATE VIEW dossiers AS SELECT *, \
    CASE WHEN ended_at IS NOT NULL THEN end_class \
         WHEN overdue_after IS NOT NULL AND now() > overdue_after THEN 'overdue' \
         ELSE 'in_time' END AS on_time_class \
    FROM dossier_facts";

fn territories() -> Result<(SchemaRef, RecordBatch), QueryError> {
    let provinces = refdata::provinces()?;
    let communes = refdata::communes()?;
    let kind = |code: &str| {
        provinces
            .iter()
            .find(|p| p.province_code == code)
            .map(|p| p.province_kind.clone())
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("province_code", DataType::Utf8, false),
        Field::new("province_name", DataType::Utf8, false),
        Field::new("province_kind", DataType::Utf8, true),
        Field::new("commune_code", DataType::Utf8, false),
        Field::new("commune_name", DataType::Utf8, false),
        Field::new("commune_kind", DataType::Utf8, false),
    ]));
    let col = |f: &dyn Fn(&refdata::Commune) -> Option<String>| {
        Arc::new(StringArray::from(
            communes.iter().map(f).collect::<Vec<_>>(),
        )) as _
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            col(&|c| Some(c.province_code.clone())),
            col(&|c| Some(c.province_name.clone())),
            col(&|c| kind(&c.province_code)),
            col(&|c| Some(c.commune_code.clone())),
            col(&|c| Some(c.commune_name.clone())),
            col(&|c| Some(c.commune_kind.clone())),
        ],
    )?;
    Ok((schema, batch))
}

fn calendar_table(wh: &Warehouse) -> Result<(SchemaRef, RecordBatch), QueryError> {
    let cal = &wh.calendar;
    let (first, last) = cal.range();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let days: Vec<_> = first.iter_days().take_while(|d| *d <= last).collect();
    let listed = cal.listed_days();
    let schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("is_working_day", DataType::Boolean, false),
        Field::new("kind", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("working_seconds", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Date32Array::from(
                days.iter()
                    .map(|d| (*d - epoch).num_days() as i32)
                    .collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from(
                days.iter()
                    .map(|d| cal.is_working_day(*d).unwrap_or(false))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                days.iter()
                    .map(|d| {
                        listed.get(d).map(|l| {
                            serde_json::to_value(l.kind)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default()
                        })
                    })
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                days.iter()
                    .map(|d| listed.get(d).map(|l| l.name.clone()))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(datafusion::arrow::array::Float64Array::from(
                days.iter()
                    .map(|d| {
                        if cal.is_working_day(*d).unwrap_or(false) {
                            cal.day_len_micros() as f64 / 1e6
                        } else {
                            0.0
                        }
                    })
                    .collect::<Vec<_>>(),
            )),
        ],
    )?;
    Ok((schema, batch))
}

async fn register_delta(
    ctx: &SessionContext,
    wh: &Warehouse,
    name: &str,
    schema: SchemaRef,
) -> Result<(), QueryError> {
    match wh.open_table(name).await? {
        Some(t) => {
            t.update_datafusion_session(&ctx.state())?;
            ctx.register_table(name, t.table_provider().await?)?;
        }
        None => {
            ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
        }
    }
    Ok(())
}

/// A session over the warehouse: Delta tables, reference tables, UDFs and views.
/// Derived facts are rebuilt first if they are stale.
pub async fn session(wh: &Warehouse) -> Result<SessionContext, QueryError> {
    wh.ensure_facts().await?;
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(2);
    let ctx = SessionContext::new_with_config(config);
    register_delta(
        &ctx,
        wh,
        store::EVENTS,
        giamsat_warehouse::event::events_schema(),
    )
    .await?;
    register_delta(&ctx, wh, store::QUARANTINE, store::quarantine_schema()).await?;
    register_delta(&ctx, wh, store::PROCEDURES, store::procedures_schema()).await?;
    register_delta(&ctx, wh, store::DOSSIER_FACTS, store::facts_schema()).await?;
    register_delta(&ctx, wh, store::DOSSIER_STATES, store::states_schema()).await?;
    let (s, b) = territories()?;
    ctx.register_table(
        "territories",
        Arc::new(MemTable::try_new(s, vec![vec![b]])?),
    )?;
    let (s, b) = calendar_table(wh)?;
    ctx.register_table("calendar", Arc::new(MemTable::try_new(s, vec![vec![b]])?))?;
    udf::register(&ctx, Arc::new(wh.calendar.clone()));
    ctx.sql(DOSSIERS_VIEW).await?.collect().await?;
    Ok(ctx)
}

/// Run a read-only query (no DDL, DML or settings statements).
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let opts = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(sql, opts)
        .await
        .map_err(|e| QueryError::BadInput(format!("SQL không hợp lệ hoặc không được phép: {e}")))?;
    Ok(df.collect().await?)
}
