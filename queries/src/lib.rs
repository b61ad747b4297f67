//! giamsat queries: the DataFusion session over the warehouse tables, the working-time
//! UDFs, and the indicator SQL files (`queries/sql/*.sql`) with their typed runners.

pub mod alerts;
pub mod bieu06;
pub mod common;
pub mod deadline;
pub mod drill;
pub mod explain;
pub mod guard;
pub mod health;
pub mod health_fast;
pub mod index766;
pub mod on_time;
pub mod period;
pub mod quality;
pub mod recon;
pub mod rollup;
pub mod scope;
pub mod udf;

pub use datafusion::arrow;
pub use datafusion::execution::runtime_env::RuntimeEnv;
pub use datafusion::prelude::SessionContext;

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Date32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::JoinType;
use datafusion::datasource::MemTable;
use datafusion::prelude::{col, lit, DataFrame, Expr, SessionConfig};

use giamsat_warehouse::refdata;
use giamsat_warehouse::store::{self, Warehouse};
pub use giamsat_warehouse::ErrorKind;
use giamsat_warehouse::WarehouseError;

/// Errors of the query layer. `BadInput` is the user's fault (HTTP 400, CLI exit 2).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    BadInput(String),
    /// What was asked for does not exist, or not for this caller (HTTP 404, exit 2).
    #[error("{0}")]
    NotFound(String),
    /// A statement over a limit of [`guard::SqlLimits`] (the user's fault).
    #[error("{0}")]
    Limit(#[from] guard::LimitExceeded),
    /// Not the user's fault (HTTP 500, exit 1).
    #[error("{0}")]
    Internal(String),
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("delta: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
}

impl QueryError {
    /// Whose fault it is ([`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueryError::BadInput(_) | QueryError::Limit(_) => ErrorKind::BadInput,
            QueryError::NotFound(_) => ErrorKind::NotFound,
            QueryError::DataFusion(d) => ErrorKind::of_datafusion(d),
            QueryError::Warehouse(w) => w.kind(),
            QueryError::Internal(_) | QueryError::Arrow(_) | QueryError::Delta(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// Whether a DataFusion error is ours (storage, I/O, a bug of the engine or of ours)
/// rather than the statement's: a 500, not a 400.
pub fn is_internal(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as D;
    matches!(
        e.find_root(),
        D::ObjectStore(_) | D::IoError(_) | D::Internal(_)
    )
}

/// The SQL of the `dossiers` view: the derived facts plus the class *now* (or at a
/// pinned instant, microseconds UTC).
fn dossiers_view(as_of_micros: Option<i64>) -> String {
    let now = match as_of_micros {
        None => "now()".to_string(),
        Some(t) => format!("arrow_cast({t}, 'Timestamp(Microsecond, Some(\"UTC\"))')"),
    };
    format!(
        "CREATE VIEW dossiers AS SELECT *, \
         CASE WHEN ended_at IS NOT NULL THEN end_class \
              WHEN overdue_after IS NOT NULL AND {now} > overdue_after THEN 'overdue' \
              ELSE 'in_time' END AS on_time_class \
         FROM dossier_facts"
    )
}

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

/// Which version of a Delta table a session reads.
enum At {
    Latest,
    Version(i64),
    /// The table did not exist at the pinned moment: read as empty.
    Absent,
}

/// Register table `name` at `at` in `ctx`; false when there is no such table (then nothing
/// is registered).
async fn register_if_present(
    ctx: &SessionContext,
    wh: &Warehouse,
    name: &str,
    at: At,
) -> Result<bool, QueryError> {
    let table = match at {
        At::Latest => wh.open_table(name).await?,
        At::Version(v) => wh.open_table_at(name, v).await?,
        At::Absent => None,
    };
    let Some(t) = table else {
        return Ok(false);
    };
    t.update_datafusion_session(&ctx.state())?;
    ctx.register_table(name, t.table_provider().await?)?;
    Ok(true)
}

/// Register the latest version of table `name` if it exists (the access log, read by
/// admins as of the moment they ask).
pub async fn register_latest(
    ctx: &SessionContext,
    wh: &Warehouse,
    name: &str,
) -> Result<bool, QueryError> {
    register_if_present(ctx, wh, name, At::Latest).await
}

/// Register table `name` at `at`, or an empty table of `schema` when there is none.
async fn register_delta(
    ctx: &SessionContext,
    wh: &Warehouse,
    name: &str,
    schema: SchemaRef,
    at: At,
) -> Result<(), QueryError> {
    if !register_if_present(ctx, wh, name, at).await? {
        ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
    }
    Ok(())
}

/// A session pinned to table versions and to an instant: what an export read, so that
/// running it again gives the same bytes whatever was ingested since.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pin {
    /// Delta version of each table (`Warehouse::table_versions`); a table not listed did
    /// not exist and reads as empty.
    pub versions: std::collections::BTreeMap<String, i64>,
    /// "Now" for the `dossiers` view (microseconds since the epoch, UTC).
    pub as_of_micros: i64,
}

fn config() -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(2)
}

/// A session over the warehouse: Delta tables, reference tables, UDFs and views.
/// Derived facts are rebuilt first if they are stale.
pub async fn session(wh: &Warehouse) -> Result<SessionContext, QueryError> {
    session_with(wh, Arc::new(RuntimeEnv::default())).await
}

/// [`session`] on a given runtime (memory pool, object stores).
pub async fn session_with(
    wh: &Warehouse,
    runtime: Arc<RuntimeEnv>,
) -> Result<SessionContext, QueryError> {
    wh.ensure_facts().await?;
    build_session(wh, runtime, None).await
}

/// A session over the tables at the versions of `pin`, with `now()` of the `dossiers`
/// view fixed at `pin.as_of_micros`. Derived facts are not rebuilt (they are read as
/// they were).
pub async fn session_pinned(
    wh: &Warehouse,
    runtime: Arc<RuntimeEnv>,
    pin: &Pin,
) -> Result<SessionContext, QueryError> {
    build_session(wh, runtime, Some(pin)).await
}

async fn build_session(
    wh: &Warehouse,
    runtime: Arc<RuntimeEnv>,
    pin: Option<&Pin>,
) -> Result<SessionContext, QueryError> {
    let ctx = SessionContext::new_with_config_rt(config(), runtime);
    // unpinned: events and the facts derived from them at the versions that agree
    let stamped = match pin {
        None => wh.stamped_versions(),
        Some(_) => None,
    };
    let at = |name: &str| match (pin, &stamped) {
        (Some(p), _) => p.versions.get(name).map_or(At::Absent, |v| At::Version(*v)),
        (None, Some(s)) => s.get(name).map_or(At::Latest, |v| At::Version(*v)),
        (None, None) => At::Latest,
    };
    let tables = [
        (store::EVENTS, giamsat_warehouse::event::events_schema()),
        (store::QUARANTINE, store::quarantine_schema()),
        (store::PROCEDURES, store::procedures_schema()),
        (store::DOSSIER_FACTS, store::facts_schema()),
        (store::DOSSIER_STATES, store::states_schema()),
    ];
    for (name, schema) in tables {
        register_delta(&ctx, wh, name, schema, at(name)).await?;
    }
    // the rollup only where it agrees with the facts read (a pin from before it existed
    // reads Biểu 06 from the dossiers)
    for name in KEPT_AT_INGEST {
        register_if_present(&ctx, wh, name, at(name)).await?;
    }
    let (s, b) = territories()?;
    ctx.register_table(
        "territories",
        Arc::new(MemTable::try_new(s, vec![vec![b]])?),
    )?;
    let (s, b) = calendar_table(wh)?;
    ctx.register_table("calendar", Arc::new(MemTable::try_new(s, vec![vec![b]])?))?;
    udf::register(&ctx, Arc::new(wh.calendar.clone()));
    ctx.sql(&dossiers_view(pin.map(|p| p.as_of_micros)))
        .await?
        .collect()
        .await?;
    Ok(ctx)
}

/// Tables kept at ingest so that reports do not scan the dossiers or the events: the
/// daily rollup (Biểu 06), and what sync health needs. A session has them only where
/// they agree with the facts it reads (a session pinned to versions from before they
/// existed reads the dossier-level SQL instead).
const KEPT_AT_INGEST: [&str; 5] = [
    giamsat_warehouse::discrepancy::DISCREPANCIES,
    giamsat_warehouse::rollup::DAILY_ROLLUP,
    giamsat_warehouse::open::OPEN_STATES,
    giamsat_warehouse::health::SOURCE_DAYS,
    giamsat_warehouse::health::DOSSIER_SOURCES,
];

/// Tables every session exposes (docs/contract.md §6), besides the `dossiers` view.
pub const TABLES: [&str; 9] = [
    store::EVENTS,
    store::QUARANTINE,
    store::PROCEDURES,
    store::DOSSIER_FACTS,
    store::DOSSIER_STATES,
    "territories",
    "calendar",
    "dossiers",
    giamsat_warehouse::rollup::DAILY_ROLLUP,
];

/// A fresh session over `base` that sees only the given territory: every table holding
/// dossier rows is registered as a [`scope::ScopedTable`] filtered by the scope (`dossier_facts` by
/// province/commune; `dossier_states` and `events` by the dossiers in scope;
/// feedback events without a dossier by their own territory; `quarantine` empty, because a bad record has no trustworthy territory). Reference
/// tables stay whole. `None` = no restriction. Nothing else of `base` is reachable.
pub async fn scoped_session(
    base: &SessionContext,
    calendar: Arc<giamsat_warehouse::Calendar>,
    scope: Option<(&[String], &[String])>,
) -> Result<SessionContext, QueryError> {
    scoped_session_at(base, calendar, scope, None).await
}

/// [`scoped_session`] of a pinned session: `as_of_micros` is the pin's instant.
pub async fn scoped_session_at(
    base: &SessionContext,
    calendar: Arc<giamsat_warehouse::Calendar>,
    scope: Option<(&[String], &[String])>,
    as_of_micros: Option<i64>,
) -> Result<SessionContext, QueryError> {
    scoped_session_in(base, calendar, scope, as_of_micros, base.runtime_env()).await
}

/// [`scoped_session_at`] whose queries take their memory from `runtime` (another pool
/// than the base session's).
pub async fn scoped_session_in(
    base: &SessionContext,
    calendar: Arc<giamsat_warehouse::Calendar>,
    scope: Option<(&[String], &[String])>,
    as_of_micros: Option<i64>,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<SessionContext, QueryError> {
    let ctx = SessionContext::new_with_config_rt(config(), runtime);
    udf::register(&ctx, calendar);
    let mut facts = base.table(store::DOSSIER_FACTS).await?;
    let mut states = base.table(store::DOSSIER_STATES).await?;
    let mut events = base.table(store::EVENTS).await?;
    let mut quarantine = base.table(store::QUARANTINE).await?;
    // tables kept at ingest with a territory: scoped like the facts
    let mut kept = Vec::new();
    for name in [
        giamsat_warehouse::rollup::DAILY_ROLLUP,
        giamsat_warehouse::open::OPEN_STATES,
    ] {
        if base.table_exist(name)? {
            kept.push((name, base.table(name).await?));
        }
    }
    if let Some((provinces, communes)) = scope {
        let in_list = |c: &str, v: &[String]| {
            col(c).in_list(v.iter().map(|x| lit(x.clone())).collect(), false)
        };
        let pred: Expr = match (provinces.is_empty(), communes.is_empty()) {
            (true, true) => lit(false),
            (false, true) => in_list("province_code", provinces),
            (true, false) => in_list("commune_code", communes),
            (false, false) => {
                in_list("province_code", provinces).or(in_list("commune_code", communes))
            }
        };
        facts = facts.filter(pred.clone())?;
        kept = kept
            .into_iter()
            .map(|(n, t)| Ok::<_, QueryError>((n, t.filter(pred.clone())?)))
            .collect::<Result<_, _>>()?;
        let ids = facts
            .clone()
            .select_columns(&["dossier_id"])?
            .alias("scope_ids")?;
        // the rows of a per-dossier table that belong to a dossier in scope
        let of_scope = |df: DataFrame| {
            df.join(
                ids.clone(),
                JoinType::LeftSemi,
                &["dossier_id"],
                &["dossier_id"],
                None,
            )
        };
        states = of_scope(states)?;
        // what each source said about the dossiers in scope, and the discrepancies
        // between them (reconciliation)
        for name in [
            giamsat_warehouse::health::DOSSIER_SOURCES,
            giamsat_warehouse::discrepancy::DISCREPANCIES,
        ] {
            if base.table_exist(name)? {
                kept.push((name, of_scope(base.table(name).await?)?));
            }
        }
        // events of the dossiers in scope, plus the events without a dossier (citizens'
        // feedback) of every feedback that is in scope: linked to a dossier in scope, or
        // reported with a territory in scope
        let of_dossiers = of_scope(events.clone())?;
        let loose = events.clone().filter(col("dossier_id").is_null())?;
        let feedback_ids = of_dossiers
            .clone()
            .union(loose.clone().filter(pred.clone())?)?
            .filter(col("feedback_id").is_not_null())?
            .select(vec![col("feedback_id").alias("scope_feedback_id")])?;
        let loose = loose.join(
            feedback_ids,
            JoinType::LeftSemi,
            &["feedback_id"],
            &["scope_feedback_id"],
            None,
        )?;
        events = of_dossiers.union(loose)?;
        quarantine = quarantine.filter(lit(false))?;
    }
    let mut scoped = vec![
        (store::DOSSIER_FACTS, facts),
        (store::DOSSIER_STATES, states),
        (store::EVENTS, events),
        (store::QUARANTINE, quarantine),
    ];
    scoped.extend(kept);
    for (name, df) in scoped {
        if scope.is_some() {
            // a leaf the user's query cannot reach into (see `scope`)
            let plan = df.into_unoptimized_plan();
            ctx.register_table(name, Arc::new(scope::ScopedTable::new(name, plan)))?;
        } else {
            ctx.register_table(name, Arc::new(scope::AsTable(df.into_view())))?;
        }
    }
    for t in [store::PROCEDURES, "territories", "calendar"] {
        ctx.register_table(
            t,
            Arc::new(scope::AsTable(base.table(t).await?.into_view())),
        )?;
    }
    // sync health's tables have no territory: a scoped session reads health from its
    // own events instead (and what each source said, and the discrepancies, through the
    // dossiers in scope, above)
    if scope.is_none() {
        for t in [
            giamsat_warehouse::health::SOURCE_DAYS,
            giamsat_warehouse::health::DOSSIER_SOURCES,
            giamsat_warehouse::discrepancy::DISCREPANCIES,
        ] {
            if base.table_exist(t)? {
                ctx.register_table(
                    t,
                    Arc::new(scope::AsTable(base.table(t).await?.into_view())),
                )?;
            }
        }
    }
    ctx.sql(&dossiers_view(as_of_micros))
        .await?
        .collect()
        .await?;
    Ok(ctx)
}

/// Run a read-only query within the default [`guard::SqlLimits`]: DDL (CREATE, DROP,
/// CREATE EXTERNAL TABLE), DML (INSERT, UPDATE, DELETE, COPY) and statements (SET,
/// transactions) are refused.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    run_sql_limited(ctx, sql, None).await
}

/// [`run_sql`] producing at most `max_rows` rows.
pub async fn run_sql_limited(
    ctx: &SessionContext,
    sql: &str,
    max_rows: Option<usize>,
) -> Result<Vec<RecordBatch>, QueryError> {
    guard::plan(
        ctx,
        guard::Request {
            sql: sql.to_string(),
            limits: guard::SqlLimits::default(),
            explain: guard::Explain::Any,
            max_rows,
            deadline: None,
            params: None,
        },
    )
    .await?
    .collect()
    .await
}
