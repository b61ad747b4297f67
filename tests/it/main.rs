//! All integration tests in one binary (links once).

mod common;
mod golden;
