//! All integration tests in one binary (links once).

mod api;
mod backup;
mod calendar_props;
mod common;
mod dashboard;
mod drill;
mod dvcqg;
mod e2e;
mod explain;
mod exports;
mod faults;
mod flight;
mod forms;
mod fuzz;
mod golden;
mod hardening;
mod health;
mod indicators;
mod ingest_robust;
mod pg;
mod props;
mod recon;
mod rollup;
mod scale;
mod sheets;
mod tokens;
