//! All integration tests in one binary (links once).

mod api;
mod calendar_props;
mod common;
mod e2e;
mod golden;
mod props;
