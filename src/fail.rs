//! The command line's errors: which are the user's fault (one line on stderr, exit 2) and
//! which are ours (exit 1), decided by the [`ErrorKind`] of each crate's error: the one
//! mapping from kinds to exit codes.

use giamsat_ingest::IngestError;
use giamsat_queries::QueryError;
use giamsat_warehouse::ErrorKind;

/// An error the user caused: one line on stderr, exit 2.
#[derive(Debug)]
pub struct BadInput(String);
impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

pub fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// The error of a crate below as the command's error: when its kind is the user's fault
/// ([`ErrorKind::is_user_fault`]) its message on one line and exit 2, else ours (exit 1).
fn classify<E: std::error::Error + Send + Sync + 'static>(kind: ErrorKind, e: E) -> anyhow::Error {
    if kind.is_user_fault() {
        bad(e.to_string())
    } else {
        anyhow::Error::new(e)
    }
}

pub fn classify_ingest(e: IngestError) -> anyhow::Error {
    classify(e.kind(), e)
}

pub fn classify_query(e: QueryError) -> anyhow::Error {
    classify(e.kind(), e)
}

pub fn classify_backup(e: giamsat_warehouse::backup::BackupError) -> anyhow::Error {
    classify(e.kind(), e)
}

pub fn classify_export(e: giamsat_api::exports::ExportError) -> anyhow::Error {
    classify(e.kind(), e)
}

/// An error and its causes on one line, each cause once: layers that already quote
/// their source's message (deltalake, object_store) are not repeated.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if text.is_empty() || out.contains(text.trim()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The exit code of a failed command: 2 when the user's input was at fault, else 1.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<BadInput>().is_some() {
        2
    } else {
        1
    }
}
