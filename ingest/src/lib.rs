//! giamsat ingest: input formats → canonical events; validation; quarantine;
//! de-duplication by (source, event_id); one Delta commit per batch.

pub mod canonical;
pub mod generate;
pub mod procedures;

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;

use giamsat_warehouse::store::{QuarantineRow, Warehouse};
use giamsat_warehouse::{Event, WarehouseError};

/// Errors that make an input unusable as a whole (CLI exit 2).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("không đọc được {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Canonical,
    Procedures,
}

/// What one ingest did (CONTRACT §3 JSON line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestCounts {
    pub accepted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

/// One input: a name (file path) and its bytes.
pub struct Input {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Read input files; an unreadable file fails the whole ingest before anything is written.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, IngestError> {
    if paths.is_empty() {
        return Err(IngestError::Input("cần ít nhất một tệp đầu vào".into()));
    }
    paths
        .iter()
        .map(|p| {
            std::fs::read(p)
                .map(|bytes| Input {
                    name: p.display().to_string(),
                    bytes,
                })
                .map_err(|source| IngestError::Read {
                    path: p.clone(),
                    source,
                })
        })
        .collect()
}

/// Split into lines (1-based numbers), dropping blank lines and trailing `\r`.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = (i64, &[u8])> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            (!l.iter().all(|b| b.is_ascii_whitespace())).then_some((i as i64 + 1, l))
        })
}

/// Parse canonical records; good events and quarantined rows.
pub fn parse_canonical(
    inputs: &[Input],
    default_source: Option<&str>,
) -> (Vec<Event>, Vec<QuarantineRow>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for input in inputs {
        for (no, line) in lines(&input.bytes) {
            match canonical::parse_event(line, default_source) {
                Ok(e) => good.push(e),
                Err(reason) => bad.push(QuarantineRow {
                    source: default_source
                        .map(str::to_string)
                        .or_else(|| sniff_source(line)),
                    input: input.name.clone(),
                    line: no,
                    reason,
                    original: line.to_vec(),
                }),
            }
        }
    }
    (good, bad)
}

/// Best effort: the `source` of a bad record, for the quarantine's source column.
fn sniff_source(line: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v.get("source")?.as_str().map(str::to_string)
}

/// Commit events: drop those whose (source, event_id) is stored or earlier in the batch,
/// append the rest and the quarantined rows, then refresh the derived dossier facts.
pub async fn commit_events(
    wh: &Warehouse,
    events: Vec<Event>,
    quarantine: Vec<QuarantineRow>,
) -> Result<IngestCounts, IngestError> {
    let mut seen: HashSet<(String, String)> = wh.event_keys().await?;
    let mut fresh = Vec::with_capacity(events.len());
    let mut duplicates = 0u64;
    for e in events {
        if seen.insert((e.source.clone(), e.event_id.clone())) {
            fresh.push(e);
        } else {
            duplicates += 1;
        }
    }
    wh.append_quarantine(&quarantine).await?;
    wh.append_events(&fresh).await?;
    if !fresh.is_empty() {
        wh.rebuild_facts().await?;
    }
    Ok(IngestCounts {
        accepted: fresh.len() as u64,
        duplicates,
        quarantined: quarantine.len() as u64,
    })
}

/// Ingest files of one format into the warehouse.
pub async fn ingest_paths(
    wh: &Warehouse,
    format: Format,
    default_source: Option<&str>,
    paths: &[PathBuf],
) -> Result<IngestCounts, IngestError> {
    let inputs = read_inputs(paths)?;
    match format {
        Format::Canonical => {
            let (good, bad) = parse_canonical(&inputs, default_source);
            tracing::info!(
                good = good.len(),
                bad = bad.len(),
                "parsed canonical events"
            );
            commit_events(wh, good, bad).await
        }
        Format::Procedures => {
            let mut rows = Vec::new();
            let mut bad = Vec::new();
            for input in &inputs {
                let (r, b) = procedures::parse(input)?;
                rows.extend(r);
                bad.extend(b);
            }
            wh.append_quarantine(&bad).await?;
            let n = wh.upsert_procedures(&rows).await?;
            wh.ensure_facts().await?;
            Ok(IngestCounts {
                accepted: n as u64,
                duplicates: 0,
                quarantined: bad.len() as u64,
            })
        }
    }
}
