//! giamsat warehouse: table layout, commits, the working-time calendar, reference data
//! and the one derivation of dossier facts from events.

pub mod backup;
pub mod calendar;
pub mod config;
pub mod derived;
pub mod discrepancy;
pub mod event;
pub mod facts;
pub mod faults;
pub mod health;
pub mod maintain;
pub mod open;
pub mod refdata;
pub mod rollup;
pub mod store;

pub use calendar::Calendar;
pub use config::Config;
pub use event::{Event, EventType};

/// Whose fault an error is and what the caller can do about it: the one taxonomy of
/// every crate's errors (`kind()` on each error type). The HTTP status and the exit code
/// are each mapped from it in one place (`giamsat_api::error`, the binary's `fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request or the input is wrong: HTTP 400, exit 2.
    BadInput,
    /// What was asked for does not exist, or not for this caller: HTTP 404, exit 2.
    NotFound,
    /// The operator's configuration is wrong: HTTP 500 (not the caller's fault), exit 2.
    Config,
    /// No room now (memory pool, queue): HTTP 503 or 429, exit 1; try again later.
    Busy,
    /// Stopped at its time limit: HTTP 408, exit 1.
    Timeout,
    /// A failure of ours (storage, a bug): HTTP 500, exit 1.
    Internal,
}

impl ErrorKind {
    /// The name used in replies (`x-giamsat-error-kind`) and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadInput => "bad_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Config => "config",
            ErrorKind::Busy => "busy",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the user (caller or operator) can fix it by changing what they gave.
    pub fn is_user_fault(self) -> bool {
        matches!(
            self,
            ErrorKind::BadInput | ErrorKind::NotFound | ErrorKind::Config
        )
    }

    /// The kind of a DataFusion error: a full memory pool is `Busy`, the rest ours.
    pub fn of_datafusion(e: &datafusion::error::DataFusionError) -> ErrorKind {
        match e.find_root() {
            datafusion::error::DataFusionError::ResourcesExhausted(_) => ErrorKind::Busy,
            _ => ErrorKind::Internal,
        }
    }
}

/// Errors of the warehouse.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("{0}")]
    Config(String),
    #[error("delta: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Data(String),
}

impl WarehouseError {
    /// Whose fault it is ([`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            WarehouseError::Config(_) => ErrorKind::Config,
            WarehouseError::DataFusion(d) => ErrorKind::of_datafusion(d),
            _ => ErrorKind::Internal,
        }
    }
}
