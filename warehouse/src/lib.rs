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
