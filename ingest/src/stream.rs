//! Streaming file ingest: a file is read, parsed and committed in bounded chunks, so
//! memory follows the chunk, not the file.
//!
//! - Line formats (canonical NDJSON, dvcqg one record per line, CSV) are cut at line
//!   ends (for CSV at record ends: a quoted field may hold line breaks, and the header
//!   is put in front of every chunk). A dvcqg JSON array or `{"service", "data": [...]}`
//!   envelope, pretty-printed or on one line, is read element by element.
//! - Each chunk is its own durable commit whose idempotency key chains the keys of the
//!   chunks before it with the chunk's bytes: the file's checksum up to the chunk's end
//!   and its position. A run killed at any moment and started again skips the chunks
//!   already committed (they count as duplicates) and never doubles a record.
//! - A reader thread reads and parses chunk k+1 while chunk k is committed (a channel of
//!   one chunk), so at most three chunks are in memory.
//! - The derived facts are brought up to date once, after the last chunk: one catch-up
//!   over the events the file added ([`Warehouse::ensure_facts`]).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha256};

use giamsat_warehouse::store::{QuarantineRow, Warehouse};
use giamsat_warehouse::Event;

use crate::{
    canonical, commit_batches_with, csvprofile, dvcqg, parse_canonical_with, Batch, Derive, Format,
    IngestCounts, IngestError, Input, Step,
};

/// Chunk limits (from `[ingest]` of the configuration).
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    pub lines: usize,
    pub bytes: usize,
}

impl ChunkLimits {
    pub fn of(wh: &Warehouse) -> ChunkLimits {
        ChunkLimits {
            lines: wh.config.ingest.chunk_lines.max(1),
            bytes: wh.config.ingest.chunk_bytes.max(1),
        }
    }
}

/// One parsed chunk, ready to commit.
struct Parsed {
    events: Vec<Event>,
    quarantine: Vec<QuarantineRow>,
    key: String,
    /// Input bytes this chunk covers (progress).
    bytes: u64,
}

type Sender = tokio::sync::mpsc::Sender<Result<Parsed, IngestError>>;

/// Ingest files of one format, each in chunks (see the module documentation).
pub async fn ingest_files(
    wh: &Warehouse,
    format: &Format,
    default_source: Option<&str>,
    paths: &[PathBuf],
    limits: ChunkLimits,
    progress: &(dyn Fn(Step) + Sync),
) -> Result<IngestCounts, IngestError> {
    if paths.is_empty() {
        return Err(IngestError::Input("cần ít nhất một tệp đầu vào".into()));
    }
    // an unreadable file fails the whole ingest before anything is written
    for p in paths {
        std::fs::File::open(p).map_err(|source| IngestError::Read {
            path: p.clone(),
            source,
        })?;
    }
    if let Format::Dvcqg = format {
        let source = default_source.unwrap_or("dvcqg");
        if !canonical::valid_source(source) {
            return Err(IngestError::Input(format!(
                "--source không hợp lệ: {source:?}"
            )));
        }
    }
    let mut total = IngestCounts::default();
    for path in paths {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Parsed, IngestError>>(1);
        let reader = {
            let (path, format) = (path.clone(), format.clone());
            let source = default_source.map(str::to_string);
            std::thread::spawn(move || read_file(&path, &format, source.as_deref(), limits, &tx))
        };
        let mut first = true;
        while let Some(parsed) = rx.recv().await {
            let parsed = match parsed {
                Ok(p) => p,
                // a bad profile or header is found before the first chunk is committed
                Err(e) => return Err(e),
            };
            first = false;
            let counts = commit_batches_with(
                wh,
                vec![Batch {
                    events: parsed.events,
                    quarantine: parsed.quarantine,
                    key: Some(parsed.key),
                }],
                Derive::Later,
            )
            .await?;
            for c in counts {
                total.accepted += c.accepted;
                total.duplicates += c.duplicates;
                total.quarantined += c.quarantined;
            }
            progress(Step::Parsed(parsed.bytes));
        }
        let _ = reader.join();
        tracing::debug!(path = %path.display(), empty = first, "file ingested");
    }
    progress(Step::Committing);
    wh.ensure_facts().await?;
    Ok(total)
}

/// The reader thread: cut, parse and send the chunks of one file.
fn read_file(path: &Path, format: &Format, source: Option<&str>, limits: ChunkLimits, tx: &Sender) {
    let name = path.display().to_string();
    let result = (|| {
        let file = std::fs::File::open(path).map_err(|e| IngestError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        let r = BufReader::with_capacity(1 << 20, file);
        let tag = format!("{format:?}|{source:?}");
        let mut chain = Chain::new(&tag);
        match format {
            Format::Dvcqg if is_document(path)? => {
                read_document(r, &name, source.unwrap_or("dvcqg"), limits, &mut chain, tx)
            }
            Format::Csv(profile) if crate::sheet::is_workbook(path) => {
                read_workbook(path, profile, source, limits, &mut chain, tx)
            }
            Format::Csv(_) => read_lines(r, &name, format, source, limits, true, &mut chain, tx),
            _ => read_lines(r, &name, format, source, limits, false, &mut chain, tx),
        }
    })();
    if let Err(e) = result {
        let _ = tx.blocking_send(Err(e));
    }
}

/// The chained idempotency key: the checksum of everything up to the chunk's end, and
/// the chunk's position.
struct Chain {
    key: String,
    position: u64,
}

impl Chain {
    fn new(tag: &str) -> Chain {
        Chain {
            key: tag.to_string(),
            position: 0,
        }
    }

    fn next(&mut self, bytes: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(self.key.as_bytes());
        h.update(self.position.to_le_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
        self.position += 1;
        self.key = hex::encode(&h.finalize()[..16]);
        format!("chunk-{}", self.key)
    }
}

fn io(path: &str) -> impl Fn(std::io::Error) -> IngestError + '_ {
    move |e| IngestError::Read {
        path: PathBuf::from(path),
        source: e,
    }
}

/// Whether a dvcqg file is one JSON document (an array, or an envelope with `service`
/// and `data`, pretty-printed or on one line) rather than one record per line. The first
/// JSON value's top-level keys are read with their values skipped, so deciding costs
/// no memory.
fn is_document(path: &Path) -> Result<bool, IngestError> {
    let file = std::fs::File::open(path).map_err(|e| IngestError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut r = BufReader::new(file);
    let buf = r
        .fill_buf()
        .map_err(|e| IngestError::Input(e.to_string()))?;
    let start = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    match buf.get(start) {
        Some(b'[') => return Ok(true),
        Some(b'{') => {}
        _ => return Ok(false),
    }
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let (mut data, mut service) = (false, false);
            while let Some(k) = map.next_key::<String>()? {
                data |= k == "data";
                service |= k == "service";
                map.next_value::<IgnoredAny>()?;
            }
            Ok(data && service)
        }
    }
    let mut de = serde_json::Deserializer::from_reader(r);
    Ok(serde::Deserializer::deserialize_map(&mut de, Keys).unwrap_or(false))
}

/// Line formats: chunks of whole lines (CSV: whole records, header in front).
#[allow(clippy::too_many_arguments)]
fn read_lines(
    mut r: BufReader<std::fs::File>,
    name: &str,
    format: &Format,
    source: Option<&str>,
    limits: ChunkLimits,
    csv: bool,
    chain: &mut Chain,
    tx: &Sender,
) -> Result<(), IngestError> {
    let mut header: Vec<u8> = Vec::new();
    // physical lines (canonical, dvcqg) or CSV records before the chunk
    let mut before: i64 = 0;
    if let (true, Format::Csv(profile)) = (csv, format) {
        // title lines above the header are skipped: the header holds the profile's headings
        let mut first: Option<Vec<u8>> = None;
        loop {
            header.clear();
            // one record: a quoted heading may hold line breaks
            let mut n = r.read_until(b'\n', &mut header).map_err(io(name))?;
            while n > 0 && header.iter().filter(|b| **b == b'"').count() % 2 == 1 {
                n = r.read_until(b'\n', &mut header).map_err(io(name))?;
            }
            if header.is_empty() || before as usize >= csvprofile::HEADER_SEARCH_ROWS {
                let cells = first
                    .map(|f| csvprofile::csv_cells(&f, profile.delimiter_byte()))
                    .and_then(|c| c.into_iter().next())
                    .unwrap_or_default();
                return Err(IngestError::Input(format!(
                    "{name}: không tìm thấy dòng tiêu đề; thiếu cột {:?} của hồ sơ ánh xạ",
                    profile.missing(&cells)
                )));
            }
            if profile.is_header_line(&header) {
                break;
            }
            if first.is_none() && !header.iter().all(|b| b.is_ascii_whitespace()) {
                first = Some(header.clone());
            }
            before += 1;
        }
    }
    let mut chunk: Vec<u8> = Vec::new();
    let mut line = Vec::new();
    let mut in_chunk: i64 = 0;
    let mut open_quote = false;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(io(name))?;
        if n == 0 {
            break;
        }
        chunk.extend_from_slice(&line);
        if csv {
            // a quoted field may hold line breaks: a record ends where quotes balance
            let quotes = line.iter().filter(|b| **b == b'"').count();
            if quotes % 2 == 1 {
                open_quote = !open_quote;
            }
            if !open_quote && !line.iter().all(|b| b.is_ascii_whitespace()) {
                in_chunk += 1;
            }
        } else {
            in_chunk += 1;
        }
        let full = in_chunk as usize >= limits.lines || chunk.len() >= limits.bytes;
        if full && !open_quote {
            send_lines(&chunk, &header, name, format, source, before, chain, tx)?;
            before += in_chunk;
            in_chunk = 0;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        send_lines(&chunk, &header, name, format, source, before, chain, tx)?;
    }
    Ok(())
}

/// A workbook: its sheet read whole, the rows mapped and sent in chunks of rows (the key
/// chains the rows' text, so the same sheet sent again is recognised chunk by chunk).
fn read_workbook(
    path: &Path,
    profile: &csvprofile::Profile,
    source: Option<&str>,
    limits: ChunkLimits,
    chain: &mut Chain,
    tx: &Sender,
) -> Result<(), IngestError> {
    let source = profile.source_for(source)?;
    let sheet = crate::sheet::read(path, profile)?;
    let name = path.display().to_string();
    // progress in file bytes, shared out by rows
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let per_row = size / (sheet.rows.len() as u64).max(1);
    let mut footer = false;
    for rows in sheet.rows.chunks(limits.lines.max(1)) {
        let mut text = Vec::new();
        for (line, cells) in rows {
            text.extend_from_slice(line.to_string().as_bytes());
            text.extend_from_slice(&csvprofile::mini_csv(&sheet.header.cells, cells, b','));
        }
        let key = chain.next(&text);
        let mapped = profile.map_rows(
            &name,
            &sheet.header,
            rows.iter().map(|(l, c)| (*l, Ok(c.clone()))),
            &source,
            &mut footer,
        );
        tx.blocking_send(Ok(Parsed {
            events: mapped.events,
            quarantine: mapped.quarantine,
            key,
            bytes: per_row * rows.len() as u64,
        }))
        .map_err(|_| IngestError::Input("ingest dừng".into()))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn send_lines(
    chunk: &[u8],
    header: &[u8],
    name: &str,
    format: &Format,
    source: Option<&str>,
    before: i64,
    chain: &mut Chain,
    tx: &Sender,
) -> Result<(), IngestError> {
    let key = chain.next(chunk);
    let (events, mut quarantine) = match format {
        Format::Csv(profile) => {
            let mut bytes = header.to_vec();
            if !bytes.ends_with(b"\n") && !bytes.is_empty() {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(chunk);
            let input = Input {
                name: name.to_string(),
                bytes,
            };
            csvprofile::parse(std::slice::from_ref(&input), profile, source)?
        }
        Format::Dvcqg => {
            let input = Input {
                name: name.to_string(),
                bytes: chunk.to_vec(),
            };
            dvcqg::parse(std::slice::from_ref(&input), source.unwrap_or("dvcqg"))
        }
        _ => {
            let input = Input {
                name: name.to_string(),
                bytes: chunk.to_vec(),
            };
            parse_canonical_with(std::slice::from_ref(&input), source, &|_| {})
        }
    };
    // line numbers of the file, not of the chunk
    for q in &mut quarantine {
        q.line += before;
    }
    tx.blocking_send(Ok(Parsed {
        events,
        quarantine,
        key,
        bytes: chunk.len() as u64,
    }))
    .map_err(|_| IngestError::Input("ingest dừng".into()))
}

/// A reader that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Where the records of a JSON document go: chunked, parsed and sent.
struct Sink<'a> {
    name: &'a str,
    source: &'a str,
    limits: ChunkLimits,
    chain: &'a mut Chain,
    tx: &'a Sender,
    service: Option<String>,
    records: Vec<Value>,
    record_bytes: usize,
    read: Arc<AtomicU64>,
    reported: u64,
}

impl Sink<'_> {
    fn push(&mut self, v: Value) -> Result<(), IngestError> {
        self.record_bytes += v.to_string().len();
        self.records.push(v);
        if self.records.len() >= self.limits.lines || self.record_bytes >= self.limits.bytes {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        if self.records.is_empty() {
            return Ok(());
        }
        let bytes =
            serde_json::to_vec(&self.records).map_err(|e| IngestError::Input(e.to_string()))?;
        let key = self.chain.next(&bytes);
        let (events, quarantine) = dvcqg::parse_values(
            self.source,
            self.name,
            1,
            self.service.as_deref(),
            &self.records,
        );
        self.records.clear();
        self.record_bytes = 0;
        let read = self.read.load(Ordering::Relaxed);
        let bytes = read.saturating_sub(self.reported);
        self.reported = read;
        self.tx
            .blocking_send(Ok(Parsed {
                events,
                quarantine,
                key,
                bytes,
            }))
            .map_err(|_| IngestError::Input("ingest dừng".into()))
    }
}

/// A JSON array or envelope, element by element.
fn read_document(
    r: BufReader<std::fs::File>,
    name: &str,
    source: &str,
    limits: ChunkLimits,
    chain: &mut Chain,
    tx: &Sender,
) -> Result<(), IngestError> {
    let read = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: r,
        read: read.clone(),
    };
    let mut sink = Sink {
        name,
        source,
        limits,
        chain,
        tx,
        service: None,
        records: Vec::new(),
        record_bytes: 0,
        read: read.clone(),
        reported: 0,
    };
    let mut de = serde_json::Deserializer::from_reader(counting);
    let outcome = Document { sink: &mut sink }.deserialize(&mut de);
    let outcome = outcome.and_then(|()| de.end());
    if let Err(e) = outcome {
        if let Some(stop) = sink_error(&e) {
            return Err(stop);
        }
        // what was read before the error is committed; the error is quarantined with
        // the position, and the rest of the document cannot be read as records
        sink.flush()?;
        let reason = format!("JSON sai: {e}");
        let key = sink.chain.next(reason.as_bytes());
        let original = tail(name, e.line(), limits.bytes);
        tx.blocking_send(Ok(Parsed {
            events: Vec::new(),
            quarantine: vec![QuarantineRow {
                source: Some(source.to_string()),
                input: name.to_string(),
                line: e.line() as i64,
                reason,
                original,
            }],
            key,
            bytes: 0,
        }))
        .map_err(|_| IngestError::Input("ingest dừng".into()))?;
        return Ok(());
    }
    sink.flush()
}

/// The file from line `line` on, at most `max` bytes (the part a broken JSON document
/// could not be read as records from).
fn tail(name: &str, line: usize, max: usize) -> Vec<u8> {
    let Ok(f) = std::fs::File::open(name) else {
        return Vec::new();
    };
    let mut r = BufReader::new(f);
    let mut buf = Vec::new();
    for _ in 1..line.max(1) {
        buf.clear();
        if r.read_until(b'\n', &mut buf).unwrap_or(0) == 0 {
            return Vec::new();
        }
    }
    let mut out = Vec::new();
    let _ = r.take(max as u64).read_to_end(&mut out);
    out
}

/// Errors of our own sink travel through serde as messages with this prefix.
const SINK: &str = "\u{1}sink:";

fn sink_error(e: &serde_json::Error) -> Option<IngestError> {
    let s = e.to_string();
    let at = s.find(SINK)?;
    let rest = &s[at + SINK.len()..];
    let msg = rest.split(" at line ").next().unwrap_or(rest);
    Some(IngestError::Input(msg.to_string()))
}

struct Document<'s, 'a> {
    sink: &'s mut Sink<'a>,
}

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of records or a {service, data} envelope")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Elements { sink: self.sink }.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                "data" => map.next_value_seed(Elements {
                    sink: &mut *self.sink,
                })?,
                "service" => self.sink.service = map.next_value::<Option<String>>()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Elements<'s, 'a> {
    sink: &'s mut Sink<'a>,
}

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        use serde::de::Error;
        while let Some(v) = seq.next_element::<Value>()? {
            self.sink
                .push(v)
                .map_err(|e| A::Error::custom(format!("{SINK}{e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chained_key_depends_on_position_and_everything_before() {
        let mut a = Chain::new("t");
        let mut b = Chain::new("t");
        let (a1, a2) = (a.next(b"x"), a.next(b"y"));
        assert_eq!(a1, b.next(b"x"));
        assert_eq!(a2, b.next(b"y"));
        let mut c = Chain::new("t");
        c.next(b"z");
        assert_ne!(c.next(b"y"), a2, "same chunk after different bytes");
        let mut d = Chain::new("t");
        assert_ne!(d.next(b"y"), a2, "same chunk at another position");
    }
}
