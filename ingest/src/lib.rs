//! giamsat ingest: input formats → canonical events; validation; quarantine;
//! de-duplication by (source, event_id); one Delta commit per batch.

pub mod canonical;
pub mod check;
pub mod csvprofile;
pub mod dvcqg;
pub mod generate;
pub mod procedures;
pub mod sheet;
pub mod stream;

use std::collections::{BTreeSet, HashSet};
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

impl IngestError {
    /// Whose fault it is ([`ErrorKind`](giamsat_warehouse::ErrorKind)).
    pub fn kind(&self) -> giamsat_warehouse::ErrorKind {
        match self {
            IngestError::Read { .. } | IngestError::Input(_) => {
                giamsat_warehouse::ErrorKind::BadInput
            }
            IngestError::Warehouse(w) => w.kind(),
        }
    }
}

/// Input formats.
#[derive(Debug, Clone)]
pub enum Format {
    Canonical,
    /// The national portal's dossier sync records; source defaults to `dvcqg`.
    Dvcqg,
    /// A ministry system's CSV export read through a mapping profile.
    Csv(Box<csvprofile::Profile>),
    Procedures,
}

impl Format {
    /// Parse a `--format` / `format=` value.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "canonical" => Some(Format::Canonical),
            "dvcqg" => Some(Format::Dvcqg),
            "procedures" => Some(Format::Procedures),
            _ => None,
        }
    }

    /// Parse whole inputs held in memory into events and refused records: the one
    /// reading of a format for pushes (`POST /api/v1/events`) and quarantine replays
    /// (files stream through [`stream`] instead). `source` is the default source of
    /// records that carry none (the portal's records default to `dvcqg`).
    pub fn parse_events(
        &self,
        inputs: &[Input],
        source: Option<&str>,
    ) -> Result<(Vec<Event>, Vec<QuarantineRow>), IngestError> {
        Ok(match self {
            Format::Canonical => parse_canonical(inputs, source),
            Format::Dvcqg => dvcqg::parse(inputs, source.unwrap_or("dvcqg")),
            Format::Csv(p) => csvprofile::parse(inputs, p, source)?,
            Format::Procedures => {
                return Err(IngestError::Input(
                    "định dạng procedures là danh mục thủ tục, không phải sự kiện".into(),
                ))
            }
        })
    }
}

/// What one ingest did (docs/contract.md §3 JSON line).
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
    parse_canonical_with(inputs, default_source, &|_| {})
}

/// What a long ingest reports as it goes (for a progress bar).
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// This many more input bytes were parsed.
    Parsed(u64),
    /// Parsing is over; the batch is being committed.
    Committing,
}

/// Inputs are parsed in parallel only in pieces of at least this many bytes.
const MIN_PIECE: usize = if cfg!(test) { 64 << 10 } else { 4 << 20 };

/// [`parse_canonical`], reporting parsed bytes about every MiB. Large inputs are parsed
/// on all cores, in contiguous pieces cut at line ends, and put back in input order, so
/// the result is the same as a sequential parse.
pub fn parse_canonical_with(
    inputs: &[Input],
    default_source: Option<&str>,
    progress: &(dyn Fn(Step) + Sync),
) -> (Vec<Event>, Vec<QuarantineRow>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for input in inputs {
        let pieces = split_at_lines(&input.bytes, threads, MIN_PIECE);
        if pieces.len() == 1 {
            parse_piece(
                input,
                0,
                &input.bytes,
                default_source,
                progress,
                &mut good,
                &mut bad,
            );
            continue;
        }
        // first line number of each piece
        let mut first = Vec::with_capacity(pieces.len());
        let mut line_no = 0i64;
        for piece in &pieces {
            first.push(line_no);
            line_no += piece.iter().filter(|b| **b == b'\n').count() as i64;
        }
        let parsed: Vec<(Vec<Event>, Vec<QuarantineRow>)> = std::thread::scope(|sc| {
            let handles: Vec<_> = pieces
                .iter()
                .zip(&first)
                .map(|(piece, first)| {
                    sc.spawn(move || {
                        let (mut g, mut b) = (Vec::new(), Vec::new());
                        parse_piece(
                            input,
                            *first,
                            piece,
                            default_source,
                            progress,
                            &mut g,
                            &mut b,
                        );
                        (g, b)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        good.reserve(parsed.iter().map(|p| p.0.len()).sum());
        for (g, b) in parsed {
            good.extend(g);
            bad.extend(b);
        }
    }
    (good, bad)
}

/// `bytes` cut into at most `n` non-empty pieces of about equal size, each ending after a
/// `\n` (the last one at the end); one piece when smaller than `min_piece` bytes each.
fn split_at_lines(bytes: &[u8], n: usize, min_piece: usize) -> Vec<&[u8]> {
    let n = n.clamp(1, (bytes.len() / min_piece.max(1)).max(1));
    let mut pieces = Vec::with_capacity(n);
    let mut rest = bytes;
    for k in (1..n).rev() {
        if rest.is_empty() {
            break;
        }
        let target = rest.len() / (k + 1);
        let cut = rest[target..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |i| target + i + 1);
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// Parse the lines of one piece of an input; `first_line` lines precede it.
fn parse_piece(
    input: &Input,
    first_line: i64,
    piece: &[u8],
    default_source: Option<&str>,
    progress: &(dyn Fn(Step) + Sync),
    good: &mut Vec<Event>,
    bad: &mut Vec<QuarantineRow>,
) {
    let mut pending = 0u64;
    for (no, line) in lines(piece) {
        pending += line.len() as u64 + 1;
        if pending >= 1 << 20 {
            progress(Step::Parsed(pending));
            pending = 0;
        }
        match canonical::parse_event(line, default_source) {
            Ok(e) => good.push(e),
            Err(reason) => bad.push(QuarantineRow {
                source: default_source
                    .map(str::to_string)
                    .or_else(|| sniff_source(line)),
                input: input.name.clone(),
                line: first_line + no,
                reason,
                original: line.to_vec(),
            }),
        }
    }
    progress(Step::Parsed(pending));
}

/// Best effort: the `source` of a bad record, for the quarantine's source column.
fn sniff_source(line: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v.get("source")?.as_str().map(str::to_string)
}

/// One batch to commit: parsed events, quarantined records and an optional idempotency
/// key (file checksum, request id). A batch whose key a previous commit recorded is a
/// no-op: a retry after a crash adds nothing.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub quarantine: Vec<QuarantineRow>,
    pub key: Option<String>,
}

/// When the derived dossier facts follow a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    /// Right after it (HTTP pushes, replays): readers see the new events at once.
    Now,
    /// Later, once for many commits ([`Warehouse::ensure_facts`]; the chunks of a file).
    Later,
}

/// Commit events: drop those whose (source, event_id) is stored or earlier in the batch,
/// append the rest and the quarantined rows, then refresh the derived dossier facts.
pub async fn commit_events(
    wh: &Warehouse,
    events: Vec<Event>,
    quarantine: Vec<QuarantineRow>,
) -> Result<IngestCounts, IngestError> {
    let counts = commit_batches(
        wh,
        vec![Batch {
            events,
            quarantine,
            key: None,
        }],
    )
    .await?;
    Ok(counts.into_iter().next().unwrap_or_default())
}

/// [`commit_batches_with`], facts derived right after.
pub async fn commit_batches(
    wh: &Warehouse,
    batches: Vec<Batch>,
) -> Result<Vec<IngestCounts>, IngestError> {
    commit_batches_with(wh, batches, Derive::Now).await
}

/// Commit several batches together (group commit): one durable Delta commit for the
/// quarantine, one for the events (carrying every batch's key), then, with
/// [`Derive::Now`], one facts update for the dossiers they touched. Counts are per batch,
/// in order; duplicates within and across batches count once. A batch whose key was
/// committed before counts its events as duplicates (its bad records were quarantined
/// then).
///
/// Whether an event is new is decided without holding the stored keys: the batch's
/// keys are looked up while the stored ones stream past ([`Warehouse::stored_keys`]),
/// in every month or, with `[ingest] dedup = "month"`, in the months of the batch.
pub async fn commit_batches_with(
    wh: &Warehouse,
    batches: Vec<Batch>,
    derive: Derive,
) -> Result<Vec<IngestCounts>, IngestError> {
    use giamsat_warehouse::store::{EVENTS, QUARANTINE};
    let t0 = std::time::Instant::now();
    let events_were_empty = wh.open_table(EVENTS).await?.is_none();
    let facts_fresh = derive == Derive::Now && wh.facts_fresh().await?;
    // which batches were committed before (their keys), and the keys to look up
    let mut pending = Vec::with_capacity(batches.len());
    let mut wanted: HashSet<(String, String)> = HashSet::new();
    let mut months: BTreeSet<String> = BTreeSet::new();
    let offset = wh.calendar.offset_micros();
    for b in batches {
        let app = b.key.as_ref().map(|k| format!("giamsat-ingest-{k}"));
        let done = match &app {
            Some(app) => wh.has_txn(EVENTS, app).await?,
            None => false,
        };
        if !done {
            for e in &b.events {
                wanted.insert((e.source.clone(), e.event_id.clone()));
                months.insert(giamsat_warehouse::event::month_of(e.at, offset));
            }
        }
        pending.push((b, app, done));
    }
    let month_scope = matches!(
        wh.config.ingest.dedup,
        giamsat_warehouse::config::DedupScope::Month
    );
    let mut seen = if events_were_empty {
        HashSet::new()
    } else {
        wh.stored_keys(&wanted, month_scope.then_some(&months))
            .await?
    };
    drop(wanted);
    let t_dedup = t0.elapsed();
    let mut fresh = Vec::new();
    let mut quarantine = Vec::new();
    let mut keys = Vec::new();
    let mut counts = Vec::with_capacity(pending.len());
    for (b, app, done) in pending {
        if done {
            counts.push(IngestCounts {
                accepted: 0,
                duplicates: b.events.len() as u64,
                quarantined: 0,
            });
            continue;
        }
        if let Some(app) = &app {
            keys.push(app.clone());
        }
        let mut c = IngestCounts::default();
        for e in b.events {
            if seen.insert((e.source.clone(), e.event_id.clone())) {
                fresh.push(e);
                c.accepted += 1;
            } else {
                c.duplicates += 1;
            }
        }
        let already_quarantined = match &app {
            Some(app) => wh.has_txn(QUARANTINE, app).await?,
            None => false,
        };
        if !already_quarantined {
            c.quarantined = b.quarantine.len() as u64;
            quarantine.extend(b.quarantine);
        }
        counts.push(c);
    }
    drop(seen);
    wh.append_quarantine(&quarantine, &keys).await?;
    wh.append_events(&fresh, &keys).await?;
    let t_append = t0.elapsed();
    if !fresh.is_empty() && derive == Derive::Now {
        if facts_fresh {
            let touched: HashSet<String> =
                fresh.iter().filter_map(|e| e.dossier_id.clone()).collect();
            let months: BTreeSet<String> = fresh
                .iter()
                .map(|e| giamsat_warehouse::event::month_of(e.at, offset))
                .collect();
            let known = events_were_empty.then_some(fresh.as_slice());
            wh.update_facts(&touched, &months, known).await?;
        } else {
            wh.ensure_facts().await?;
        }
    }
    tracing::debug!(
        events = fresh.len(),
        dedup_ms = t_dedup.as_millis() as u64,
        append_ms = (t_append - t_dedup).as_millis() as u64,
        facts_ms = (t0.elapsed() - t_append).as_millis() as u64,
        "commit"
    );
    Ok(counts)
}

/// What a quarantine replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReplayCounts {
    /// Quarantined records that now parse and were turned into events.
    pub replayed: u64,
    /// Events those records gave that were new.
    pub accepted: u64,
    pub duplicates: u64,
    /// Records still in quarantine (of the selected source).
    pub still_quarantined: u64,
}

/// Re-parse unresolved quarantined records of `source` (all when None) with `format`
/// (e.g. after fixing a mapping profile); those that now parse are committed and marked
/// resolved, the others stay.
pub async fn replay_quarantine(
    wh: &Warehouse,
    format: &Format,
    source: Option<&str>,
) -> Result<ReplayCounts, IngestError> {
    let mut events = Vec::new();
    let mut resolved = Vec::new();
    let mut still = 0u64;
    for q in wh.unresolved_quarantine().await? {
        if source.is_some_and(|s| q.source.as_deref() != Some(s)) {
            continue;
        }
        let input = vec![Input {
            name: q.input.clone(),
            bytes: q.original.clone(),
        }];
        let src = source.or(q.source.as_deref());
        if let Format::Procedures = format {
            return Err(IngestError::Input(
                "replay dùng cho sự kiện, không cho danh mục thủ tục".into(),
            ));
        }
        let (good, bad) = format.parse_events(&input, src)?;
        if bad.is_empty() && !good.is_empty() {
            events.extend(good);
            resolved.push(q.record_id);
        } else {
            still += 1;
        }
    }
    let counts = commit_batches(
        wh,
        vec![Batch {
            events,
            quarantine: Vec::new(),
            key: None,
        }],
    )
    .await?;
    let c = counts.into_iter().next().unwrap_or_default();
    wh.mark_resolved(&resolved).await?;
    Ok(ReplayCounts {
        replayed: resolved.len() as u64,
        accepted: c.accepted,
        duplicates: c.duplicates,
        still_quarantined: still,
    })
}

/// Ingest files of one format into the warehouse.
pub async fn ingest_paths(
    wh: &Warehouse,
    format: &Format,
    default_source: Option<&str>,
    paths: &[PathBuf],
) -> Result<IngestCounts, IngestError> {
    ingest_paths_with(wh, format, default_source, paths, &|_| {}).await
}

/// [`ingest_paths`], reporting progress: event formats are streamed in chunks
/// ([`stream::ingest_files`]); a procedure catalog is read whole (it is small).
pub async fn ingest_paths_with(
    wh: &Warehouse,
    format: &Format,
    default_source: Option<&str>,
    paths: &[PathBuf],
    progress: &(dyn Fn(Step) + Sync),
) -> Result<IngestCounts, IngestError> {
    match format {
        Format::Procedures => ingest_procedures(wh, paths).await,
        _ => {
            let limits = stream::ChunkLimits::of(wh);
            stream::ingest_files(wh, format, default_source, paths, limits, progress).await
        }
    }
}

/// Merge procedure catalog files into the catalog (they are small: read whole); bad rows
/// are quarantined; the derived facts follow the new catalog.
async fn ingest_procedures(wh: &Warehouse, paths: &[PathBuf]) -> Result<IngestCounts, IngestError> {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for input in &read_inputs(paths)? {
        let (r, b) = procedures::parse(input)?;
        rows.extend(r);
        bad.extend(b);
    }
    wh.append_quarantine(&bad, &[]).await?;
    let n = wh.upsert_procedures(&rows).await?;
    wh.ensure_facts().await?;
    Ok(IngestCounts {
        accepted: n as u64,
        duplicates: 0,
        quarantined: bad.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cut_at_line_ends_and_cover_the_input() {
        let text = b"a\nbb\n\nccc\r\ndddd\ne";
        for n in 1..8 {
            let pieces = split_at_lines(text, n, 1);
            assert_eq!(pieces.concat(), text.to_vec());
            for p in &pieces[..pieces.len() - 1] {
                assert_eq!(p.last(), Some(&b'\n'), "{pieces:?}");
            }
        }
        assert_eq!(split_at_lines(text, 4, 1 << 20).len(), 1);
    }

    #[test]
    fn a_parallel_parse_equals_a_sequential_one() {
        let good = r#"{"source":"hp-motcua","dossier_id":"D1","type":"received","at":"2026-01-05T08:15:00+07:00"}"#;
        let mut bytes = Vec::new();
        for i in 0..40_000 {
            let line = match i % 7 {
                3 => "không phải JSON".to_string(),
                5 => String::new(),
                _ => good.replace("D1", &format!("D{i}")),
            };
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        let input = Input {
            name: "x".into(),
            bytes,
        };
        let (g, b) = parse_canonical(std::slice::from_ref(&input), None);
        let (mut sg, mut sb) = (Vec::new(), Vec::new());
        parse_piece(&input, 0, &input.bytes, None, &|_| {}, &mut sg, &mut sb);
        assert!(split_at_lines(&input.bytes, 2, MIN_PIECE).len() > 1);
        assert_eq!(g.len(), sg.len());
        assert!(g.iter().zip(&sg).all(|(a, b)| a.event_id == b.event_id));
        let lines = |q: &[QuarantineRow]| q.iter().map(|r| r.line).collect::<Vec<_>>();
        assert_eq!(lines(&b), lines(&sb));
        assert_eq!(b[0].line, 4);
    }
}
