//! One module per command (or family of commands): its options (`clap::Args`) and its
//! `run`. Errors say whose fault they are through [`crate::fail`].

pub mod explain;
pub mod export;
pub mod generate;
pub mod ingest;
pub mod maintain;
pub mod report;
pub mod serve;
pub mod sql;
pub mod token;
