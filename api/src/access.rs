//! The access log: one row per API request (who, with which role and territory, what
//! was asked: endpoint or SQL text, rows returned, time taken, status) appended to the
//! Delta table `access_log`. Requests never wait for it: rows go through a bounded
//! queue to a writer that commits them in batches (every second at most), so a
//! commit costs what it adds. Only admins can read the table (`POST /api/v1/sql`,
//! `giamsat sql`). If the queue is full (the disk cannot keep up), rows are dropped and
//! counted in the server log rather than slowing every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use giamsat_warehouse::store::Warehouse;

/// The table's name.
pub const ACCESS_LOG: &str = "access_log";

/// Rows waiting to be written before new ones are dropped.
const QUEUE: usize = 100_000;
/// Rows per commit at most.
const BATCH: usize = 10_000;
/// Commits between two compactions of the table. The writer commits up to once a
/// second, so a busy server adds thousands of small files a day; every commit and every
/// reader pays for each file the table holds, so the writer compacts them as it goes
/// (the replaced files are deleted by `giamsat maintain`'s vacuum).
const COMPACT_EVERY: u64 = 300;

/// The table's columns.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("token_id", DataType::Utf8, true),
        Field::new("label", DataType::Utf8, true),
        Field::new("role", DataType::Utf8, true),
        Field::new("scope", DataType::Utf8, true),
        Field::new("method", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("sql", DataType::Utf8, true),
        Field::new("rows", DataType::Int64, true),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("status", DataType::Int32, false),
    ]))
}

/// Make `access_log` readable in `ctx` as of now (empty before the first row is
/// written). Only for admins: no scoped or analyst session ever gets it.
pub async fn register(
    ctx: &datafusion::prelude::SessionContext,
    wh: &Warehouse,
) -> Result<(), giamsat_queries::QueryError> {
    if !giamsat_queries::register_latest(ctx, wh, ACCESS_LOG).await? {
        let empty = datafusion::datasource::MemTable::try_new(schema(), vec![vec![]])?;
        ctx.register_table(ACCESS_LOG, Arc::new(empty))?;
    }
    Ok(())
}

/// The rows of the access log from local day `from` to `to` (Asia/Ho_Chi_Minh, both
/// included) in time order: the query of an `access-log` export.
pub fn period_sql(from: chrono::NaiveDate, to: chrono::NaiveDate) -> String {
    let next = to.succ_opt().unwrap_or(to);
    format!(
        "SELECT at, token_id, label, role, scope, method, target, sql, rows, duration_ms, \
         status FROM {ACCESS_LOG} \
         WHERE at >= TIMESTAMP '{from}T00:00:00+07:00' AND at < TIMESTAMP '{next}T00:00:00+07:00' \
         ORDER BY at, token_id, target, status"
    )
}

/// What a handler adds to its response for the log: the SQL text and the rows returned.
#[derive(Debug, Clone, Default)]
pub struct AccessNote {
    pub sql: Option<String>,
    pub rows: Option<i64>,
}

/// One request.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub at_micros: i64,
    pub token_id: Option<String>,
    pub label: Option<String>,
    pub role: Option<String>,
    pub scope: Option<String>,
    pub method: String,
    /// Path and query string (tokens travel only in headers, never here).
    pub target: String,
    pub sql: Option<String>,
    pub rows: Option<i64>,
    pub duration_ms: i64,
    pub status: i32,
}

/// The sending side, held by the server state.
pub struct AccessLog {
    tx: mpsc::Sender<AccessRecord>,
    dropped: AtomicU64,
}

impl AccessLog {
    /// The log and the receiver its writer drains.
    pub fn new() -> (AccessLog, mpsc::Receiver<AccessRecord>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            AccessLog {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Queue a row; never waits.
    pub fn record(&self, r: AccessRecord) {
        if self.tx.try_send(r).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "access log queue full: rows dropped");
            }
        }
    }
}

fn batch(rows: &[AccessRecord]) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let s = |f: &dyn Fn(&AccessRecord) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.at_micros).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        s(&|r| r.token_id.clone()),
        s(&|r| r.label.clone()),
        s(&|r| r.role.clone()),
        s(&|r| r.scope.clone()),
        s(&|r| Some(r.method.clone())),
        s(&|r| Some(r.target.clone())),
        s(&|r| r.sql.clone()),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.rows).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.duration_ms).collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            rows.iter().map(|r| r.status).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema(), cols)
}

/// Drain the queue into `access_log`: one commit per second at most, of up to
/// [`BATCH`] rows. Ends when every sender is gone, after writing what is left.
pub async fn writer(wh: Arc<Warehouse>, mut rx: mpsc::Receiver<AccessRecord>) {
    let mut pending: Vec<AccessRecord> = Vec::new();
    let mut commits: u64 = 0;
    loop {
        let Some(first) = rx.recv().await else {
            break;
        };
        pending.push(first);
        // gather what arrives within a second
        let until = tokio::time::Instant::now() + Duration::from_secs(1);
        while pending.len() < BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(r)) => pending.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        write(&wh, &mut pending).await;
        commits += 1;
        if commits.is_multiple_of(COMPACT_EVERY) {
            if let Err(e) = wh.compact(ACCESS_LOG).await {
                tracing::warn!(error = %e, "access log not compacted");
            }
        }
    }
    write(&wh, &mut pending).await;
}

async fn write(wh: &Warehouse, pending: &mut Vec<AccessRecord>) {
    if pending.is_empty() {
        return;
    }
    let result = match batch(pending) {
        Ok(b) => wh
            .append_batch(ACCESS_LOG, b)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => pending.clear(),
        Err(e) => {
            // keep the rows for the next attempt, but never more than a batch's worth
            tracing::warn!(error = %e, rows = pending.len(), "access log not written");
            if pending.len() > BATCH {
                pending.drain(..pending.len() - BATCH);
            }
        }
    }
}
