//! Byte fuzzing of the input parsers and of the SQL guard, driven by proptest so that a
//! short run goes with every `cargo test` (docs/fuzzing.md):
//!
//! * canonical NDJSON ([`canonical::parse_event`], [`giamsat_ingest::parse_canonical`]),
//!   dvcqg records ([`dvcqg::parse`], [`dvcqg::parse_values`]), CSV read through a
//!   mapping profile ([`csvprofile::parse_document`], [`Profile::parse`]) and the
//!   procedure catalog ([`giamsat_ingest::procedures::parse`]): random bytes
//!   and mutations of the fixtures (byte flips, truncation, multi-byte and invalid UTF-8,
//!   huge numbers, deep JSON, fields replaced by any JSON value, cells by odd values).
//!   Nothing panics, and every record is accepted (at least one event) or quarantined
//!   once, with a reason and its original bytes;
//! * the SQL guard ([`guard::plan`]) over the golden warehouse, admin and scoped
//!   sessions: token soup, generated queries, deep nesting and DDL/DML/`COPY`/`SET`
//!   statements. Nothing panics (not even on the planning thread), every answer is rows
//!   or a [`QueryError`], a forbidden statement is never planned, and the sessions, the
//!   warehouse and the disk are unchanged afterwards.
//!
//! Cases per target: [`cases`] (`GIAMSAT_FUZZ_CASES` for a longer run). The seed is random
//! and printed with a failure, with the command that replays it (`PROPTEST_RNG_SEED`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{RngSeed, TestCaseResult, TestRunner};
use serde_json::{Map, Value};

use giamsat_ingest::csvprofile::{self, Profile};
use giamsat_ingest::{canonical, dvcqg, IngestError, Input};
use giamsat_queries::guard::{self, Explain, Request, SqlLimits};
use giamsat_queries::{QueryError, SessionContext};
use giamsat_warehouse::config::Config;
use giamsat_warehouse::store::QuarantineRow;
use giamsat_warehouse::{Event, EventType};

use crate::common;

// ---------------------------------------------------------------------------------------
// Runner

/// Cases per target: `GIAMSAT_FUZZ_CASES`, else `default` (sized for CI: the module runs
/// in well under a minute in a debug build).
fn cases(default: u32) -> u32 {
    std::env::var("GIAMSAT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `PROPTEST_RNG_SEED`, else a random seed (printed with a failure).
fn seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(rand::random)
}

/// Run `test` on `cases(default)` inputs of `strategy`. Nothing is written to disk (no
/// regression files); a failure names the seed, the shrunk input and how to replay it.
fn fuzz<S>(name: &str, default: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: fmt::Debug,
{
    let seed = seed();
    let cases = cases(default);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 4096,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    };
    let t0 = Instant::now();
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!(
            "fuzz::{name} (seed {seed}, {cases} cases): {e}\n\
             replay: PROPTEST_RNG_SEED={seed} GIAMSAT_FUZZ_CASES={cases} \
             cargo test --test it fuzz::{name}"
        );
    }
    eprintln!(
        "fuzz::{name}: {cases} cases in {:.1} s (seed {seed})",
        t0.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// Byte mutations

/// Bytes shown as text with escapes (a shrunk input is readable).
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// One edit of a byte string; positions are fractions of its length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Bytes),
    Delete(Index, u8),
    Repeat(Index, u8, u8),
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Index, len: usize| i.index(len + 1);
    match m {
        Mutation::Flip(i, mask) => {
            if !bytes.is_empty() {
                let k = i.index(bytes.len());
                bytes[k] ^= (*mask).max(1);
            }
        }
        Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
        Mutation::Insert(i, b) => {
            let k = at(i, bytes.len());
            bytes.splice(k..k, b.0.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let k = at(i, bytes.len());
            let end = (k + *n as usize).min(bytes.len());
            bytes.drain(k..end);
        }
        Mutation::Repeat(i, n, times) => {
            let k = at(i, bytes.len());
            let end = (k + *n as usize).min(bytes.len());
            let piece = bytes[k..end].to_vec();
            for _ in 0..*times % 8 {
                bytes.splice(end..end, piece.iter().copied());
            }
        }
    }
}

/// What is inserted: multi-byte and invalid UTF-8, huge numbers, deep JSON, separators.
fn nasty() -> BoxedStrategy<Bytes> {
    const FIXED: &[&[u8]] = &[
        "ệ".as_bytes(),
        "Đ".as_bytes(),
        "😀".as_bytes(),
        "\u{feff}".as_bytes(),
        "\u{200b}".as_bytes(),
        "\u{0}".as_bytes(),
        "\u{2028}".as_bytes(),
        b"\\u0000",
        b"\\ud800",
        b"\\uDFFF\\uD800",
        b"\xff",
        b"\xc3",
        b"\xe1\xbb",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
        b"\"",
        b"\\",
        b"\n",
        b"\r\n",
        b"\r",
        b"\t",
        b" ",
        b",",
        b";",
        b":",
        b"{",
        b"}",
        b"[",
        b"]",
        b"null",
        b"true",
        b"1e999999",
        b"-1e400",
        b"123456789012345678901234567890",
        b"18446744073709551616",
        b"-9223372036854775809",
        b"0.0000000000000000000000001",
        b"NaN",
        b"Infinity",
        b"-0",
        b"99991231235959",
        b"+262143-12-31T23:59:59Z",
        b"\"\"",
        b"''",
        b"--",
        b"/*",
        b"*/",
    ];
    prop_oneof![
        6 => select(FIXED).prop_map(|b| Bytes(b.to_vec())),
        1 => (1usize..400).prop_map(|n| Bytes(format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes())),
        1 => (1usize..400).prop_map(|n| Bytes(format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes())),
        1 => (1usize..80).prop_map(|n| Bytes("9".repeat(n).into_bytes())),
        2 => prop::collection::vec(any::<u8>(), 1..16).prop_map(Bytes),
        2 => "\\PC{1,8}".prop_map(|s| Bytes(s.into_bytes())),
    ]
    .boxed()
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, m)| Mutation::Flip(i, m)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), nasty()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1u8..32).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), 1u8..32, any::<u8>()).prop_map(|(i, n, t)| Mutation::Repeat(i, n, t)),
    ]
    .boxed()
}

fn mutations(max: usize) -> BoxedStrategy<Vec<Mutation>> {
    prop::collection::vec(mutation(), 0..=max).boxed()
}

fn mutated(mut bytes: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        apply(&mut bytes, m);
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// JSON values

/// Any JSON value, leaves drawn from `strings` (values the parser gives meaning to) or
/// arbitrary, nested a few levels.
fn json_value(
    strings: &'static [&'static str],
    keys: &'static [&'static str],
) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        6 => select(strings).prop_map(Value::from),
        2 => "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(keys), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

fn key(keys: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(keys).prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
    .boxed()
}

/// A field of a record set to a value, or removed.
#[derive(Debug, Clone)]
enum Edit {
    Set(String, Value),
    Remove(String),
}

fn edits(
    keys: &'static [&'static str],
    values: BoxedStrategy<Value>,
    max: usize,
) -> BoxedStrategy<Vec<Edit>> {
    let edit = prop_oneof![
        3 => (key(keys), values).prop_map(|(k, v)| Edit::Set(k, v)),
        1 => key(keys).prop_map(Edit::Remove),
    ];
    prop::collection::vec(edit, 0..=max).boxed()
}

fn edited(mut obj: Map<String, Value>, edits: &[Edit]) -> Map<String, Value> {
    for e in edits {
        match e {
            Edit::Set(k, v) => {
                obj.insert(k.clone(), v.clone());
            }
            Edit::Remove(k) => {
                obj.remove(k);
            }
        }
    }
    obj
}

/// A parsed JSON value with its object fields kept (a fixture line).
#[derive(Clone)]
struct Record(Map<String, Value>);

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Value::Object(self.0.clone()))
    }
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(common::root().join(path)).expect("fixture")
}

/// Every JSON object of a fixture: a whole-file value or one per line, arrays and
/// envelopes opened.
fn fixture_objects(path: &str) -> Vec<Record> {
    let bytes = fixture(path);
    let values: Vec<Value> = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => vec![v],
        Err(_) => bytes
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect(),
    };
    let mut out = Vec::new();
    let mut stack = values;
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(mut o) if o.contains_key("service") => {
                stack.extend(o.remove("data"));
            }
            Value::Object(o) => out.push(Record(o)),
            _ => {}
        }
    }
    out
}

/// What every accepted event must satisfy (docs/contract.md §1).
fn check_event(e: &Event) -> TestCaseResult {
    prop_assert!(canonical::valid_source(&e.source), "source {:?}", e.source);
    prop_assert!(!e.event_id.is_empty(), "event id");
    let kind = EventType::parse(&e.event_type);
    prop_assert!(kind.is_some(), "type {:?}", e.event_type);
    if kind.is_some_and(EventType::is_feedback) {
        prop_assert!(e
            .feedback_id
            .as_deref()
            .is_some_and(|f| !f.trim().is_empty()));
    } else {
        prop_assert!(e
            .dossier_id
            .as_deref()
            .is_some_and(|d| !d.trim().is_empty()));
    }
    if let Some(c) = &e.channel {
        prop_assert!(
            ["online", "in_person", "postal"].contains(&c.as_str()),
            "channel {c:?}"
        );
    }
    if let Some(l) = &e.procedure_level {
        prop_assert!(
            ["full_online", "partial_online", "offline"].contains(&l.as_str()),
            "procedure_level {l:?}"
        );
    }
    if let Some(a) = &e.attrs {
        prop_assert!(
            matches!(serde_json::from_str::<Value>(a), Ok(Value::Object(_))),
            "attrs {a:?}"
        );
    }
    Ok(())
}

fn check_quarantined(q: &QuarantineRow, input: &str) -> TestCaseResult {
    prop_assert!(
        !q.reason.trim().is_empty(),
        "a quarantined record has a reason"
    );
    prop_assert!(
        !q.original.is_empty(),
        "a quarantined record keeps its bytes: {q:?}"
    );
    prop_assert_eq!(q.input.as_str(), input);
    prop_assert!(q.line >= 1, "line {}", q.line);
    Ok(())
}

/// Non-blank lines with their 1-based numbers (a trailing `\r` removed): the records of
/// a line format, counted here independently of the parser.
fn records_of(bytes: &[u8]) -> Vec<(i64, &[u8])> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            (!l.iter().all(u8::is_ascii_whitespace)).then_some((i as i64 + 1, l))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Canonical NDJSON

#[rustfmt::skip]
const CANONICAL_KEYS: &[&str] = &[
    "source", "event_id", "dossier_id", "feedback_id", "type", "at", "due_at", "channel",
    "procedure_level", "procedure_code", "commune_code", "province_code", "agency_name",
    "paid_online", "digitized", "satisfied", "attrs", "so_bien_nhan",
];

#[rustfmt::skip]
const CANONICAL_STRINGS: &[&str] = &[
    "hp-motcua", "dvcqg", "S!",
    "a-very-long-source-name-that-is-longer-than-sixty-four-characters-x", "", "   ",
    "received", "resolved", "returned", "feedback_received", "feedback_resolved",
    "supplement_requested", "Received", "online", "in_person", "fax", "full_online",
    "2026-01-05T08:15:00+07:00", "2026-01-05T01:15:00Z", "2026-01-05T08:15:00",
    "2026-01-05 08:15:00.123456789", "2026-01-05T08:15", "2026-13-45", "2026-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59", "+262143-12-31T23:59:59",
    "-262144-01-01T00:00:00", "1975-06-13T00:00:00", "H31.26-260105-0001", "F-1", "11311",
    "Chứng thực bản sao từ bản chính",
];

fn canonical_seeds() -> Vec<Record> {
    let mut out = Vec::new();
    for path in [
        "fixtures/golden/events.ndjson",
        "fixtures/recon/events.ndjson",
        "fixtures/index766/events.ndjson",
    ] {
        for (_, line) in records_of(&fixture(path)) {
            if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(line) {
                out.push(Record(o));
            }
        }
    }
    assert!(out.len() > 50, "canonical fixtures");
    out
}

/// One line of a canonical file: a fixture record with fields edited and bytes mutated,
/// random bytes, or a blank line.
/// Lines the parsers skip.
const BLANK: &[&[u8]] = &[b"", b" ", b"\t", b"\r", b" \r"];

fn canonical_line(seeds: Vec<Record>) -> BoxedStrategy<Bytes> {
    let values = json_value(CANONICAL_STRINGS, CANONICAL_KEYS);
    prop_oneof![
        8 => (select(seeds), edits(CANONICAL_KEYS, values, 4), mutations(3)).prop_map(|(r, e, m)| {
            let text = Value::Object(edited(r.0, &e)).to_string();
            Bytes(mutated(text.into_bytes(), &m))
        }),
        2 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Bytes),
        1 => select(BLANK).prop_map(|b| Bytes(b.to_vec())),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct CanonicalBatch {
    lines: Vec<Bytes>,
    crlf: bool,
    default_source: Option<&'static str>,
}

impl CanonicalBatch {
    fn bytes(&self) -> Vec<u8> {
        let sep: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        self.lines
            .iter()
            .map(|l| l.0.clone())
            .collect::<Vec<_>>()
            .join(sep)
    }
}

/// Every non-blank line is an accepted event or a quarantined row (its reason, its
/// bytes, its line number), in order, exactly as the line parsed alone.
fn check_canonical(batch: &CanonicalBatch) -> TestCaseResult {
    const NAME: &str = "fuzz.ndjson";
    let bytes = batch.bytes();
    let input = Input {
        name: NAME.into(),
        bytes: bytes.clone(),
    };
    let src = batch.default_source;
    let (good, bad) = giamsat_ingest::parse_canonical(std::slice::from_ref(&input), src);
    let records = records_of(&bytes);
    prop_assert_eq!(
        good.len() + bad.len(),
        records.len(),
        "every non-blank line is accepted or quarantined"
    );
    let (mut good, mut bad) = (good.iter(), bad.iter());
    for (no, line) in records {
        match canonical::parse_event(line, src) {
            Ok(alone) => {
                let e = good.next();
                prop_assert!(e.is_some(), "line {no} accepted alone, not in the batch");
                let e = e.expect("checked");
                prop_assert_eq!(&e.event_id, &alone.event_id);
                check_event(e)?;
            }
            Err(reason) => {
                let q = bad.next();
                prop_assert!(q.is_some(), "line {no} refused alone, not quarantined");
                let q = q.expect("checked");
                check_quarantined(q, NAME)?;
                prop_assert_eq!(&q.reason, &reason);
                prop_assert_eq!(q.line, no);
                prop_assert_eq!(&q.original[..], line, "the original bytes");
            }
        }
    }
    Ok(())
}

#[test]
fn canonical_records_are_accepted_or_quarantined() {
    let seeds = canonical_seeds();
    let batch = (
        prop::collection::vec(canonical_line(seeds), 1..8),
        any::<bool>(),
        prop::option::of(select(&["hp-motcua", "push-src", "S!", ""][..])),
    )
        .prop_map(|(lines, crlf, default_source)| CanonicalBatch {
            lines,
            crlf,
            default_source,
        });
    fuzz("canonical", 400, batch, |b| check_canonical(&b));
}

#[test]
fn canonical_random_bytes_never_panic() {
    let bytes = prop::collection::vec(any::<u8>(), 0..2048).prop_map(Bytes);
    fuzz("canonical_bytes", 300, bytes, |b| {
        if let Err(reason) = canonical::parse_event(&b.0, None) {
            prop_assert!(!reason.trim().is_empty());
        }
        check_canonical(&CanonicalBatch {
            lines: vec![b],
            crlf: false,
            default_source: None,
        })
    });
}

// ---------------------------------------------------------------------------------------
// dvcqg

#[rustfmt::skip]
const DV_KEYS: &[&str] = &[
    "MaHoSo", "TrangThaiHoSo", "NgayTiepNhan", "NgayNopHoSo", "NgayHenTra", "NgayKetThucXuLy",
    "NgayTra", "NgayTuChoi", "QuaTrinhXuLy", "DanhSachHoSoBoSung", "KenhThucHien",
    "DuocThanhToanTrucTuyen", "HoSoCoThanhPhanSoHoa", "TaiKhoanDuocXacThucVoiVNeID",
    "TaiLieuNop", "DanhSachGiayToKetQua", "ThoiDiemXuLy", "TrangThai", "NgayBoSung",
    "NgayTiepNhanBoSung", "NgayHenTraMoi", "DuocSoHoa", "DuocTaiSuDung", "DuongDanTepTinKetQua",
    "MaTTHC", "service", "data",
];

#[rustfmt::skip]
const DV_STRINGS: &[&str] = &[
    "20260105081500", "20260305110000", "", "   ", "20261305000000", "20260230120000",
    "20260105246000", "99991231235959", "00000101000000", "2026010508150", "202601050815001",
    "+2026010508150", "19750613000000", "06/03/2026 08:00", "0", "1", "2", "3", "4", "5", "7",
    "8", "9", "10", "11", "-1", "4294967296", " 9 ", "DongBoHoSoMC", "CapNhatTienDoHoSoMC",
    "000.00.31.H31-260305-0201", "https://x/kq.pdf",
];

fn dv_value() -> BoxedStrategy<Value> {
    let date = prop_oneof![
        select(DV_STRINGS).prop_map(Value::from),
        (19_000_101_000_000u64..99_991_231_235_959).prop_map(Value::from),
    ];
    let step = (date.clone(), select(DV_STRINGS)).prop_map(|(t, s)| {
        let mut m = Map::new();
        m.insert("ThoiDiemXuLy".into(), t);
        m.insert("TrangThai".into(), Value::from(s));
        Value::Object(m)
    });
    prop_oneof![
        4 => date,
        2 => prop::collection::vec(step, 0..4).prop_map(Value::Array),
        3 => json_value(DV_STRINGS, DV_KEYS),
    ]
    .boxed()
}

/// How records are laid out in a dvcqg input.
#[derive(Debug, Clone)]
enum Shape {
    Lines,
    Array,
    Pretty,
    Envelope(String),
    /// An array holding an envelope holding an array.
    Nested(String),
}

fn shape() -> BoxedStrategy<Shape> {
    let service = prop_oneof![
        4 => select(&["DongBoHoSoMC", "CapNhatTienDoHoSoMC"][..]).prop_map(String::from),
        1 => "\\PC{0,12}",
    ];
    prop_oneof![
        3 => Just(Shape::Lines),
        1 => Just(Shape::Array),
        1 => Just(Shape::Pretty),
        2 => service.clone().prop_map(Shape::Envelope),
        1 => service.prop_map(Shape::Nested),
    ]
    .boxed()
}

fn envelope(service: &str, data: Value) -> Value {
    let mut m = Map::new();
    m.insert("service".into(), Value::from(service));
    m.insert("data".into(), data);
    Value::Object(m)
}

fn layout(records: Vec<Value>, shape: &Shape) -> Vec<u8> {
    match shape {
        Shape::Lines => records
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
        Shape::Array => Value::Array(records).to_string().into_bytes(),
        Shape::Pretty => serde_json::to_vec_pretty(&Value::Array(records)).unwrap_or_default(),
        Shape::Envelope(s) => envelope(s, Value::Array(records)).to_string().into_bytes(),
        Shape::Nested(s) => {
            let inner = envelope(s, Value::Array(records));
            Value::Array(vec![inner.clone(), inner])
                .to_string()
                .into_bytes()
        }
    }
}

/// The records of a dvcqg value, counted here independently of the parser: arrays and
/// envelopes of a supported service are opened, anything else is one record.
fn leaves(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => {
            for item in items {
                leaves(item, out);
            }
        }
        Value::Object(o)
            if o.contains_key("data")
                && matches!(
                    o.get("service").and_then(Value::as_str),
                    Some("DongBoHoSoMC" | "CapNhatTienDoHoSoMC")
                ) =>
        {
            if let Some(d) = o.get("data") {
                leaves(d, out);
            }
        }
        other => out.push(other.clone()),
    }
}

/// Every record gives events or exactly one quarantined row, and the whole input gives
/// exactly what its records give one by one.
fn check_dvcqg(bytes: &[u8]) -> TestCaseResult {
    const NAME: &str = "fuzz.json";
    const SOURCE: &str = "dvcqg";
    let input = Input {
        name: NAME.into(),
        bytes: bytes.to_vec(),
    };
    let (good, bad) = dvcqg::parse(std::slice::from_ref(&input), SOURCE);
    for e in &good {
        check_event(e)?;
        prop_assert_eq!(e.source.as_str(), SOURCE);
    }
    for q in &bad {
        check_quarantined(q, NAME)?;
        prop_assert_eq!(q.source.as_deref(), Some(SOURCE));
    }
    // the records, counted here: (line, record), or (line, bytes) of a line not JSON
    let mut items: Vec<(i64, Result<Value, Vec<u8>>)> = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        let mut records = Vec::new();
        leaves(&v, &mut records);
        items.extend(records.into_iter().map(|r| (1, Ok(r))));
    } else {
        for (no, line) in records_of(bytes) {
            match serde_json::from_slice::<Value>(line) {
                Ok(v) => {
                    let mut records = Vec::new();
                    leaves(&v, &mut records);
                    items.extend(records.into_iter().map(|r| (no, Ok(r))));
                }
                Err(_) => items.push((no, Err(line.to_vec()))),
            }
        }
    }
    // what they give one by one
    let mut want_good: Vec<String> = Vec::new();
    let mut want_bad: Vec<(i64, String, Vec<u8>)> = Vec::new();
    for (line, item) in items {
        let record = match item {
            Ok(r) => r,
            Err(original) => {
                want_bad.push((line, String::new(), original));
                continue;
            }
        };
        let (g, b) = dvcqg::parse_values(SOURCE, NAME, line, None, std::slice::from_ref(&record));
        prop_assert!(
            (!g.is_empty() && b.is_empty()) || (g.is_empty() && b.len() == 1),
            "a record gives events or one quarantined row, got {} events and {} rows for {}",
            g.len(),
            b.len(),
            record
        );
        want_good.extend(g.into_iter().map(|e| e.event_id));
        want_bad.extend(b.into_iter().map(|q| (q.line, q.reason, q.original)));
    }
    let got_good: Vec<String> = good.into_iter().map(|e| e.event_id).collect();
    prop_assert_eq!(got_good, want_good, "events as the records give them");
    prop_assert_eq!(
        bad.len(),
        want_bad.len(),
        "one quarantined row per refused record"
    );
    for (q, (line, reason, original)) in bad.iter().zip(&want_bad) {
        prop_assert_eq!(q.line, *line);
        prop_assert_eq!(&q.original, original);
        if !reason.is_empty() {
            prop_assert_eq!(&q.reason, reason);
        }
    }
    Ok(())
}

#[test]
fn dvcqg_records_are_accepted_or_quarantined() {
    let mut seeds = Vec::new();
    for path in [
        "fixtures/dvcqg/records.ndjson",
        "fixtures/dvcqg/dongbo_envelope.json",
        "fixtures/dvcqg/tiendo_array.json",
    ] {
        seeds.extend(fixture_objects(path));
    }
    assert!(seeds.len() > 5, "dvcqg fixtures");
    let record = (select(seeds), edits(DV_KEYS, dv_value(), 5))
        .prop_map(|(r, e)| Value::Object(edited(r.0, &e)));
    let doc = prop_oneof![
        8 => (prop::collection::vec(record, 0..5), shape(), mutations(2))
            .prop_map(|(records, shape, m)| Bytes(mutated(layout(records, &shape), &m))),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes),
    ];
    fuzz("dvcqg", 400, doc, |b| check_dvcqg(&b.0));
}

#[test]
fn dvcqg_values_of_an_unknown_service_are_quarantined() {
    let values = prop::collection::vec(json_value(DV_STRINGS, DV_KEYS), 0..4);
    let service = prop::option::of(prop_oneof![
        select(&["DongBoHoSoMC", "CapNhatTienDoHoSoMC", "Khac"][..]).prop_map(String::from),
        "\\PC{0,10}",
    ]);
    fuzz(
        "dvcqg_values",
        200,
        (values, service),
        |(values, service)| {
            let (good, bad) = dvcqg::parse_values("dvcqg", "x", 7, service.as_deref(), &values);
            for q in &bad {
                check_quarantined(q, "x")?;
                prop_assert_eq!(q.line, 7);
            }
            for e in &good {
                check_event(e)?;
            }
            match service.as_deref() {
                None | Some("DongBoHoSoMC" | "CapNhatTienDoHoSoMC") => {
                    let mut records = Vec::new();
                    for v in &values {
                        leaves(v, &mut records);
                    }
                    prop_assert!(bad.len() <= records.len());
                    prop_assert!(good.len() + bad.len() >= records.len(), "nothing dropped");
                }
                Some(_) => {
                    prop_assert!(good.is_empty());
                    prop_assert_eq!(bad.len(), values.len(), "every value of the envelope");
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// CSV through a mapping profile

/// A profile with a sample of the export it reads.
struct Sample {
    name: &'static str,
    profile_text: String,
    profile: Profile,
    bytes: Vec<u8>,
}

fn samples() -> Vec<Sample> {
    [
        ("bo-tuphap-hotich", "fixtures/csv/hotich.csv"),
        ("dkkd-hokinhdoanh", "fixtures/csv/hokinhdoanh.csv"),
        (
            "motcua-hotich-danhsach",
            "fixtures/sheets/hotich_motcua_hp.csv",
        ),
    ]
    .into_iter()
    .map(|(name, csv)| {
        let path = format!("ingest/profiles/{name}.toml");
        let profile_text = String::from_utf8(fixture(&path)).expect("profile text");
        let profile = Profile::parse(&profile_text).expect("profile");
        Sample {
            name,
            profile_text,
            profile,
            bytes: fixture(csv),
        }
    })
    .collect()
}

#[rustfmt::skip]
const CSV_CELLS: &[&str] = &[
    "", " ", "05/01/2026 08:15", "31/02/2026 08:15", "05/01/2026", "2026-07-06 08:00:00",
    "2026-07-06", "2026-02-30", "46086", "46086.75", "46086.9999999", "18264", "73050.99999",
    "1e308", "-1e308", "NaN", "inf", "-0", "99999999999999999999", "hôm qua",
    "Tổng cộng: 3 hồ sơ", "TỔNG CỘNG", "Cộng", "Người lập biểu", "I. Lĩnh vực hộ tịch", "1",
    "0", "có", "không", "x", "maybe", "\"", "\"\"", ",", ";", "a\nb", "a\r\nb", "\u{feff}", "😀",
    "Đã trả kết quả", "Lạ", "HT-31-0001",
];

/// An edit of a CSV document's cells.
#[derive(Debug, Clone)]
enum CsvEdit {
    Set(Index, Index, String),
    DeleteRow(Index),
    DuplicateRow(Index),
    InsertRow(Index, Vec<String>),
    Truncate(Index, Index),
    Extend(Index, Vec<String>),
}

fn cell(pool: Arc<Vec<String>>) -> BoxedStrategy<String> {
    prop_oneof![
        6 => any::<Index>().prop_map(move |i| pool[i.index(pool.len())].clone()),
        3 => select(CSV_CELLS).prop_map(String::from),
        1 => "\\PC{0,10}",
    ]
    .boxed()
}

fn csv_edit(pool: Arc<Vec<String>>) -> BoxedStrategy<CsvEdit> {
    let cells = prop::collection::vec(cell(pool.clone()), 0..6);
    prop_oneof![
        8 => (any::<Index>(), any::<Index>(), cell(pool)).prop_map(|(r, c, v)| CsvEdit::Set(r, c, v)),
        1 => any::<Index>().prop_map(CsvEdit::DeleteRow),
        1 => any::<Index>().prop_map(CsvEdit::DuplicateRow),
        1 => (any::<Index>(), cells.clone()).prop_map(|(i, c)| CsvEdit::InsertRow(i, c)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(r, n)| CsvEdit::Truncate(r, n)),
        1 => (any::<Index>(), cells).prop_map(|(r, c)| CsvEdit::Extend(r, c)),
    ]
    .boxed()
}

fn apply_csv(rows: &mut Vec<Vec<String>>, e: &CsvEdit) {
    if rows.is_empty() {
        rows.push(Vec::new());
    }
    let n = rows.len();
    match e {
        CsvEdit::Set(r, c, v) => {
            let row = &mut rows[r.index(n)];
            if row.is_empty() {
                row.push(v.clone());
            } else {
                let k = c.index(row.len());
                row[k] = v.clone();
            }
        }
        CsvEdit::DeleteRow(r) => {
            rows.remove(r.index(n));
        }
        CsvEdit::DuplicateRow(r) => {
            let k = r.index(n);
            rows.insert(k, rows[k].clone());
        }
        CsvEdit::InsertRow(r, cells) => rows.insert(r.index(n + 1), cells.clone()),
        CsvEdit::Truncate(r, len) => {
            let row = &mut rows[r.index(n)];
            let keep = len.index(row.len() + 1);
            row.truncate(keep);
        }
        CsvEdit::Extend(r, cells) => rows[r.index(n)].extend(cells.iter().cloned()),
    }
}

/// Rows as CSV, quoting what needs it.
fn write_csv(rows: &[Vec<String>], delimiter: u8, crlf: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            if c.bytes()
                .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
            {
                out.push(b'"');
                out.extend_from_slice(c.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(c.as_bytes());
            }
        }
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    }
    out
}

/// A document read with a profile: an error about the document as a whole, or every
/// record after the header ignored (blank, totals, notes), accepted or quarantined,
/// exactly once; a quarantined row read again alone is refused again.
fn check_csv(profile: &Profile, bytes: &[u8]) -> TestCaseResult {
    const NAME: &str = "fuzz.csv";
    const SOURCE: &str = "fuzz";
    let input = Input {
        name: NAME.into(),
        bytes: bytes.to_vec(),
    };
    let doc = match csvprofile::parse_document(&input, profile, SOURCE) {
        Ok(doc) => doc,
        Err(IngestError::Input(m)) => {
            prop_assert!(!m.trim().is_empty());
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("not an input error: {e}"))),
    };
    // records counted here (invalid UTF-8 replaced: the CSV structure is ASCII)
    let total = csvprofile::csv_cells(
        String::from_utf8_lossy(bytes).as_bytes(),
        profile.delimiter_byte(),
    )
    .len() as i64;
    let rows = &doc.rows;
    let mut seen: Vec<i64> = rows
        .ignored
        .iter()
        .map(|(l, _)| *l)
        .chain(rows.good.iter().map(|(l, _)| *l))
        .chain(rows.quarantine.iter().map(|q| q.line))
        .collect();
    seen.sort_unstable();
    let want: Vec<i64> = (doc.header_row + 1..=total).collect();
    prop_assert_eq!(
        seen,
        want,
        "every record after the header (row {}) ignored, accepted or quarantined once",
        doc.header_row
    );
    prop_assert!(
        rows.good.iter().all(|(_, n)| *n >= 1),
        "a good row gives events"
    );
    prop_assert_eq!(
        rows.good.iter().map(|(_, n)| n).sum::<usize>(),
        rows.events.len()
    );
    for e in &rows.events {
        check_event(e)?;
        prop_assert_eq!(e.source.as_str(), SOURCE);
    }
    for q in &rows.quarantine {
        check_quarantined(q, NAME)?;
        prop_assert_eq!(q.source.as_deref(), Some(SOURCE));
        // replayable: the quarantined row, with the header, read alone
        let again = Input {
            name: NAME.into(),
            bytes: q.original.clone(),
        };
        let replay = csvprofile::parse_document(&again, profile, SOURCE);
        prop_assert!(
            replay.is_ok(),
            "replay of {:?}: no header",
            Bytes(q.original.clone())
        );
        if let Ok(r) = replay {
            prop_assert!(r.rows.events.is_empty(), "a refused row refused again");
            prop_assert_eq!(
                r.rows.quarantine.len(),
                1,
                "replay of {:?}",
                Bytes(q.original.clone())
            );
            if !q.reason.starts_with("CSV sai") {
                prop_assert_eq!(&r.rows.quarantine[0].reason, &q.reason);
            }
        }
    }
    // the batch function agrees with the document
    let (good, bad) = csvprofile::parse(std::slice::from_ref(&input), profile, Some(SOURCE))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(good.len(), rows.events.len());
    prop_assert_eq!(bad.len(), rows.quarantine.len());
    Ok(())
}

#[derive(Clone)]
struct CsvCase {
    sample: usize,
    name: &'static str,
    bytes: Bytes,
}

impl fmt::Debug for CsvCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} with {:?}", self.name, self.bytes)
    }
}

#[test]
fn csv_rows_are_ignored_accepted_or_quarantined() {
    let samples = Arc::new(samples());
    let per_sample: Vec<BoxedStrategy<CsvCase>> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let delimiter = s.profile.delimiter_byte();
            let rows = csvprofile::csv_cells(&s.bytes, delimiter);
            let mut pool: Vec<String> = rows.iter().flatten().cloned().collect();
            pool.extend(s.profile.status.keys().cloned());
            pool.extend(s.profile.channel.keys().cloned());
            pool.extend(s.profile.headings());
            let pool = Arc::new(pool);
            let name = s.name;
            let bytes = s.bytes.clone();
            prop_oneof![
                8 => (prop::collection::vec(csv_edit(pool), 0..6), any::<bool>(), mutations(2))
                    .prop_map(move |(edits, crlf, m)| {
                        let mut rows = rows.clone();
                        for e in &edits {
                            apply_csv(&mut rows, e);
                        }
                        let text = write_csv(&rows, delimiter, crlf);
                        CsvCase { sample: i, name, bytes: Bytes(mutated(text, &m)) }
                    }),
                2 => mutations(4).prop_map(move |m| CsvCase {
                    sample: i,
                    name,
                    bytes: Bytes(mutated(bytes.clone(), &m)),
                }),
                1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(move |b| CsvCase {
                    sample: i,
                    name,
                    bytes: Bytes(b),
                }),
            ]
            .boxed()
        })
        .collect();
    let case = prop::strategy::Union::new(per_sample);
    fuzz("csv", 300, case, |c| {
        check_csv(&samples[c.sample].profile, &c.bytes.0)
    });
}

const TOML_VALUES: &[&str] = &[
    "\"%d/%m/%Q\"",
    "\"%\"",
    "\"\"",
    "\"x\"",
    "1",
    "-1",
    "[]",
    "{}",
    "[\"%Y\", \"%s\", \"%.f\", \"%j\", \"%+\"]",
    "{ type = \"resolved\", date_formats = [\"%Y%m%d\"] }",
    "{ type = \"nope\" }",
    "\"received\"",
    "\"dossier_id\"",
    "\"at\"",
    "\"type\"",
    "\";;\"",
    "\"\\t\"",
    "\"%d/%m/%Y %H:%M\"",
    "\"%z\"",
    "\"%Z\"",
    "\"25:61\"",
    "\"17:00\"",
    "\"Tổng\"",
    "[\"\"]",
    "\"ệ\"",
];

/// An edit of a profile's text, line by line.
#[derive(Debug, Clone)]
enum TomlEdit {
    DeleteLine(Index),
    DuplicateLine(Index),
    Value(Index, &'static str),
    Insert(Index, String),
}

#[derive(Clone)]
struct ProfileCase {
    sample: usize,
    text: String,
}

impl fmt::Debug for ProfileCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "profile #{}:\n{}", self.sample, self.text)
    }
}

#[test]
fn mapping_profiles_are_checked_or_refused_with_a_line() {
    let samples = Arc::new(samples());
    let texts: Vec<(usize, String)> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.profile_text.clone()))
        .collect();
    let edit = prop_oneof![
        1 => any::<Index>().prop_map(TomlEdit::DeleteLine),
        1 => any::<Index>().prop_map(TomlEdit::DuplicateLine),
        4 => (any::<Index>(), select(TOML_VALUES)).prop_map(|(i, v)| TomlEdit::Value(i, v)),
        1 => (any::<Index>(), "[a-z_\\[\\]\" =]{0,20}").prop_map(|(i, s)| TomlEdit::Insert(i, s)),
    ];
    let case = (
        select(texts),
        prop::collection::vec(edit, 0..4),
        mutations(2),
    )
        .prop_map(|((sample, text), edits, m)| {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            for e in &edits {
                let n = lines.len().max(1);
                match e {
                    TomlEdit::DeleteLine(i) if !lines.is_empty() => {
                        lines.remove(i.index(n));
                    }
                    TomlEdit::DuplicateLine(i) if !lines.is_empty() => {
                        let k = i.index(n);
                        lines.insert(k, lines[k].clone());
                    }
                    TomlEdit::Value(i, v) if !lines.is_empty() => {
                        let k = i.index(n);
                        if let Some((key, _)) = lines[k].split_once('=') {
                            lines[k] = format!("{key}= {v}");
                        }
                    }
                    TomlEdit::Insert(i, s) => lines.insert(i.index(lines.len() + 1), s.clone()),
                    _ => {}
                }
            }
            let text = mutated(lines.join("\n").into_bytes(), &m);
            ProfileCase {
                sample,
                text: String::from_utf8_lossy(&text).into_owned(),
            }
        });
    fuzz("csv_profile", 200, case, |c| {
        match Profile::parse(&c.text) {
            Err(e) => {
                prop_assert!(!e.trim().is_empty());
                Ok(())
            }
            Ok(p) => {
                let _ = p.source_for(None);
                check_csv(&p, &samples[c.sample].bytes)
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Procedure catalog (CSV or NDJSON)

#[rustfmt::skip]
const CATALOG_CELLS: &[&str] = &[
    "province", "commune", "ministry", "full_online", "partial_online", "offline", "online",
    "true", "false", "có", "2,5", "-1", "1e999", "NaN", "inf", "2026-02-30", "2026-04-05",
    "05/04/2026",
];

/// A catalog as CSV, or its rows as NDJSON objects.
fn catalog_text(rows: &[Vec<String>], ndjson: bool, crlf: bool) -> Vec<u8> {
    if !ndjson {
        return write_csv(rows, b',', crlf);
    }
    let Some((header, data)) = rows.split_first() else {
        return Vec::new();
    };
    data.iter()
        .map(|r| {
            let o: Map<String, Value> = header
                .iter()
                .zip(r)
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            Value::Object(o).to_string()
        })
        .collect::<Vec<_>>()
        .join(if crlf { "\r\n" } else { "\n" })
        .into_bytes()
}

/// An error about the catalog as a whole, or every row accepted or quarantined once.
fn check_catalog(bytes: &[u8]) -> TestCaseResult {
    const NAME: &str = "fuzz-procedures";
    let input = Input {
        name: NAME.into(),
        bytes: bytes.to_vec(),
    };
    let (good, bad) = match giamsat_ingest::procedures::parse(&input) {
        Ok(r) => r,
        Err(IngestError::Input(m)) => {
            prop_assert!(!m.trim().is_empty());
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("not an input error: {e}"))),
    };
    let ndjson = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let rows = if ndjson {
        records_of(bytes).len()
    } else {
        let text = String::from_utf8_lossy(bytes);
        csvprofile::csv_cells(text.as_bytes(), b',')
            .len()
            .saturating_sub(1)
    };
    prop_assert_eq!(
        good.len() + bad.len(),
        rows,
        "every row accepted or quarantined"
    );
    for p in &good {
        prop_assert!(!p.procedure_code.trim().is_empty());
    }
    for q in &bad {
        check_quarantined(q, NAME)?;
    }
    let mut lines: Vec<i64> = bad.iter().map(|q| q.line).collect();
    lines.dedup();
    prop_assert_eq!(lines.len(), bad.len(), "one row per line");
    Ok(())
}

#[test]
fn catalog_rows_are_accepted_or_quarantined() {
    let catalogs: Vec<Vec<Vec<String>>> = [
        "fixtures/golden/procedures.csv",
        "fixtures/recon/procedures.csv",
        "fixtures/index766/procedures.csv",
    ]
    .into_iter()
    .map(|p| csvprofile::csv_cells(&fixture(p), b','))
    .collect();
    let mut pool: Vec<String> = catalogs.iter().flatten().flatten().cloned().collect();
    pool.extend(CATALOG_CELLS.iter().map(|s| s.to_string()));
    let pool = Arc::new(pool);
    let case = prop_oneof![
        8 => (
            select(catalogs),
            prop::collection::vec(csv_edit(pool), 0..6),
            any::<bool>(),
            prop::bool::weighted(0.25),
            mutations(2),
        )
            .prop_map(|(mut rows, edits, crlf, ndjson, m)| {
                for e in &edits {
                    apply_csv(&mut rows, e);
                }
                Bytes(mutated(catalog_text(&rows, ndjson, crlf), &m))
            }),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes),
    ];
    fuzz("catalog", 300, case, |b| check_catalog(&b.0));
}

// ---------------------------------------------------------------------------------------
// SQL guard

/// The golden warehouse with an admin and a commune-scoped session, and the columns of
/// every table the admin sees.
struct Sql {
    rt: tokio::runtime::Runtime,
    loaded: common::Loaded,
    scoped: SessionContext,
    /// Where a `COPY … TO` that got through would write.
    out: tempfile::TempDir,
    tables: Vec<(String, Vec<String>)>,
    /// The columns of each table as typed expressions (same order as `tables`).
    typed: Vec<Vec<(Ty, String)>>,
}

async fn strings(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    use giamsat_queries::arrow::util::display::array_value_to_string;
    let batches = giamsat_queries::run_sql(ctx, sql).await.expect("query");
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| array_value_to_string(c, r).expect("value"))
                    .collect(),
            );
        }
    }
    out
}

/// Tables (with their columns) of a session, and the row count of `events`: what a
/// statement that got through the guard could have changed.
async fn footprint(ctx: &SessionContext) -> Vec<Vec<String>> {
    let mut t = strings(
        ctx,
        "SELECT table_catalog, table_schema, table_name, column_name FROM information_schema.columns \
         ORDER BY 1, 2, 3, 4",
    )
    .await;
    t.extend(strings(ctx, "SELECT count(*) FROM events").await);
    t
}

impl Sql {
    fn new() -> Sql {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("rt");
        let loaded = rt.block_on(common::load_golden(Config::default()));
        let scoped = rt
            .block_on(giamsat_queries::scoped_session(
                &loaded.ctx,
                Arc::new(loaded.wh.calendar.clone()),
                Some((&[], &["11311".to_string()])),
            ))
            .expect("scoped");
        let columns = rt.block_on(strings(
            &loaded.ctx,
            "SELECT table_name, column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
        ));
        let mut tables: Vec<(String, Vec<String>)> = Vec::new();
        let mut typed: Vec<Vec<(Ty, String)>> = Vec::new();
        for row in columns {
            let (t, c, ty) = (row[0].clone(), row[1].clone(), row[2].as_str());
            let column = typed_column(&c, ty);
            match (tables.last_mut(), typed.last_mut()) {
                (Some((last, cols)), Some(types)) if *last == t => {
                    cols.push(c);
                    types.push(column);
                }
                _ => {
                    tables.push((t, vec![c]));
                    typed.push(vec![column]);
                }
            }
        }
        assert!(tables.len() >= 8, "golden tables: {tables:?}");
        Sql {
            rt,
            loaded,
            scoped,
            out: tempfile::tempdir().expect("dir"),
            tables,
            typed,
        }
    }
}

#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "OFFSET", "JOIN",
    "LEFT JOIN", "CROSS JOIN", "ON", "USING", "UNION ALL", "UNION", "INTERSECT", "EXCEPT",
    "WITH", "RECURSIVE", "AS", "CASE", "WHEN", "THEN", "ELSE", "END", "AND", "OR", "NOT", "IN",
    "EXISTS", "BETWEEN", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL", "DISTINCT", "OVER",
    "PARTITION BY", "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW", "CAST", "::", "EXPLAIN",
    "EXPLAIN ANALYZE", "EXPLAIN VERBOSE", "VALUES", "LATERAL", "UNNEST", "FILTER", "ASC",
    "DESC", "NULLS FIRST", "*", "INTERVAL", "TIMESTAMP", "DATE", "ARRAY", "STRUCT", "QUALIFY",
    "ANY", "ALL", "SOME", "SHOW", "DESCRIBE", "TABLE", "CREATE", "INSERT", "INTO", "COPY", "TO",
    "DROP", "SET", "DELETE", "UPDATE", "TRUNCATE", "ALTER", "BEGIN", "COMMIT", "PREPARE",
    "EXECUTE", "EXTERNAL", "STORED AS", "LOCATION", "VIEW", "OR REPLACE",
];

const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "=", "<>", "!=", "<", "<=", ">", ">=", "||", "(", ")", ",", ".", ";",
    "[", "]", "{", "}", "->", "->>", "@>", "<@", "~", "~*", "!~", "&", "|", "^", "<<", ">>", "?",
    "$1", ":", "=>", "\\",
];

#[rustfmt::skip]
const LITERALS: &[&str] = &[
    "1", "0", "-1", "NULL", "TRUE", "FALSE", "'x'", "'11311'", "'it''s'", "''", "'ệ'", "'😀'",
    "'2026-01-05T08:15:00+07:00'", "TIMESTAMP '2026-01-05 08:15:00'", "DATE '2026-02-30'",
    "INTERVAL '1 day'", "INTERVAL '999999999 years'", "9223372036854775807",
    "-9223372036854775808", "99999999999999999999999999999999999999", "1e308", "-1e400", "0.1",
    "'NaN'", "'infinity'", "now()", "current_date", "x'ff'", "$$x$$", "\"dossier_id\"",
    "\"Mã\"",
];

/// Functions with their arity (the calendar UDFs among them).
#[rustfmt::skip]
const FUNCTIONS: &[(&str, usize)] = &[
    ("working_seconds", 2), ("add_working_days", 2), ("count", 1), ("sum", 1), ("avg", 1),
    ("min", 1), ("max", 1), ("coalesce", 2), ("nullif", 2), ("length", 1), ("upper", 1),
    ("substr", 3), ("concat", 2), ("date_trunc", 2), ("date_part", 2), ("to_timestamp", 1),
    ("abs", 1), ("round", 2), ("arrow_cast", 2), ("regexp_like", 2), ("split_part", 3),
    ("starts_with", 2), ("strpos", 2), ("md5", 1), ("sqrt", 1), ("ln", 1), ("power", 2),
    ("make_array", 2), ("array_length", 1), ("row_number", 0), ("approx_distinct", 1),
    ("string_agg", 2), ("first_value", 1),
];

#[rustfmt::skip]
const TYPES: &[&str] = &[
    "INT", "BIGINT", "DOUBLE", "VARCHAR", "TIMESTAMP", "DATE", "BOOLEAN", "DECIMAL(38, 10)",
    "INTERVAL", "BYTEA",
];

/// An expression over the columns of the query's table.
#[derive(Debug, Clone)]
enum Expr {
    Col(Index),
    Lit(&'static str),
    Bin(Box<Expr>, &'static str, Box<Expr>),
    Func(&'static str, Vec<Expr>),
    Case(Box<Expr>, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Vec<Expr>),
    Cast(Box<Expr>, &'static str),
    Not(Box<Expr>),
    IsNull(Box<Expr>),
    Exists(Index, Box<Expr>),
}

fn expr() -> BoxedStrategy<Expr> {
    let leaf = prop_oneof![
        3 => any::<Index>().prop_map(Expr::Col),
        2 => select(LITERALS).prop_map(Expr::Lit),
    ];
    leaf.prop_recursive(4, 32, 3, |inner| {
        let ops = select(&[
            "+", "-", "*", "/", "%", "=", "<>", "<", ">=", "AND", "OR", "||", "LIKE", "IS DISTINCT FROM",
        ][..]);
        prop_oneof![
            3 => (inner.clone(), ops, inner.clone()).prop_map(|(a, o, b)| Expr::Bin(Box::new(a), o, Box::new(b))),
            3 => (select(FUNCTIONS), prop::collection::vec(inner.clone(), 3))
                .prop_map(|((f, n), mut args)| { args.truncate(n); Expr::Func(f, args) }),
            1 => (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| Expr::Case(Box::new(a), Box::new(b), Box::new(c))),
            1 => (inner.clone(), prop::collection::vec(inner.clone(), 1..4))
                .prop_map(|(a, l)| Expr::In(Box::new(a), l)),
            1 => (inner.clone(), select(TYPES)).prop_map(|(a, t)| Expr::Cast(Box::new(a), t)),
            1 => inner.clone().prop_map(|a| Expr::Not(Box::new(a))),
            1 => inner.clone().prop_map(|a| Expr::IsNull(Box::new(a))),
            1 => (any::<Index>(), inner).prop_map(|(t, a)| Expr::Exists(t, Box::new(a))),
        ]
    })
    .boxed()
}

fn render(e: &Expr, tables: &[(String, Vec<String>)], table: usize) -> String {
    let r = |e: &Expr| render(e, tables, table);
    match e {
        Expr::Col(i) => {
            let cols = &tables[table].1;
            format!("\"{}\"", cols[i.index(cols.len())])
        }
        Expr::Lit(l) => l.to_string(),
        Expr::Bin(a, o, b) => format!("({} {o} {})", r(a), r(b)),
        Expr::Func(f, args) => {
            format!("{f}({})", args.iter().map(r).collect::<Vec<_>>().join(", "))
        }
        Expr::Case(a, b, c) => format!("CASE WHEN {} THEN {} ELSE {} END", r(a), r(b), r(c)),
        Expr::In(a, l) => format!(
            "{} IN ({})",
            r(a),
            l.iter().map(r).collect::<Vec<_>>().join(", ")
        ),
        Expr::Cast(a, t) => format!("CAST({} AS {t})", r(a)),
        Expr::Not(a) => format!("NOT ({})", r(a)),
        Expr::IsNull(a) => format!("{} IS NULL", r(a)),
        Expr::Exists(t, a) => {
            let k = t.index(tables.len());
            format!(
                "EXISTS (SELECT 1 FROM \"{}\" WHERE {})",
                tables[k].0,
                render(a, tables, k)
            )
        }
    }
}

/// A read-only query.
#[derive(Debug, Clone)]
struct Query {
    table: Index,
    items: Vec<Expr>,
    filter: Option<Expr>,
    group: Option<Expr>,
    order: Option<u8>,
    limit: Option<&'static str>,
    join: Option<(Index, Expr)>,
    set_op: Option<&'static str>,
}

fn query() -> BoxedStrategy<Query> {
    (
        any::<Index>(),
        prop::collection::vec(expr(), 1..4),
        prop::option::of(expr()),
        prop::option::weighted(0.2, expr()),
        prop::option::weighted(0.3, 0u8..5),
        prop::option::weighted(
            0.3,
            select(&["0", "1", "10", "-1", "18446744073709551615", "'x'"][..]),
        ),
        prop::option::weighted(0.2, (any::<Index>(), expr())),
        prop::option::weighted(0.1, select(&["UNION ALL", "INTERSECT", "EXCEPT"][..])),
    )
        .prop_map(
            |(table, items, filter, group, order, limit, join, set_op)| Query {
                table,
                items,
                filter,
                group,
                order,
                limit,
                join,
                set_op,
            },
        )
        .boxed()
}

fn render_query(q: &Query, tables: &[(String, Vec<String>)]) -> String {
    let t = q.table.index(tables.len());
    let r = |e: &Expr| render(e, tables, t);
    let mut s = format!(
        "SELECT {} FROM \"{}\"",
        q.items.iter().map(r).collect::<Vec<_>>().join(", "),
        tables[t].0
    );
    if let Some((j, on)) = &q.join {
        let k = j.index(tables.len());
        s.push_str(&format!(
            " JOIN \"{}\" j ON {}",
            tables[k].0,
            render(on, tables, k)
        ));
    }
    if let Some(f) = &q.filter {
        s.push_str(&format!(" WHERE {}", r(f)));
    }
    if let Some(g) = &q.group {
        s.push_str(&format!(" GROUP BY {}", r(g)));
    }
    if let Some(op) = q.set_op {
        s = format!("{s} {op} {s}");
    }
    if let Some(o) = q.order {
        s.push_str(&format!(" ORDER BY {o}"));
    }
    if let Some(l) = q.limit {
        s.push_str(&format!(" LIMIT {l}"));
    }
    s
}

/// Types of the type-directed generator (its statements mostly plan and run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Bool,
    Ts,
    Num,
}

const TYS: [Ty; 5] = [Ty::Str, Ty::Int, Ty::Bool, Ty::Ts, Ty::Num];

/// A column as an expression of a generator type.
fn typed_column(name: &str, data_type: &str) -> (Ty, String) {
    let c = format!("\"{name}\"");
    let starts = |p: &[&str]| p.iter().any(|p| data_type.starts_with(p));
    if starts(&["Timestamp"]) {
        (Ty::Ts, c)
    } else if starts(&["Int", "UInt"]) {
        (Ty::Int, c)
    } else if starts(&["Float", "Decimal"]) {
        (Ty::Num, c)
    } else if starts(&["Boolean"]) {
        (Ty::Bool, c)
    } else if starts(&["Utf8", "LargeUtf8"]) {
        (Ty::Str, c)
    } else {
        (Ty::Str, format!("CAST({c} AS VARCHAR)"))
    }
}

fn typed_literals(ty: Ty) -> &'static [&'static str] {
    match ty {
        Ty::Str => &[
            "'x'", "''", "'11311'", "'ệ'", "'😀'", "'it''s'", "'%'", "'_%\\'", "NULL",
        ],
        Ty::Int => &[
            "0",
            "1",
            "-1",
            "7",
            "9223372036854775807",
            "-9223372036854775808",
            "NULL",
        ],
        Ty::Bool => &["TRUE", "FALSE", "NULL"],
        Ty::Ts => &[
            "now()",
            "TIMESTAMP '2026-01-05 08:15:00'",
            "TIMESTAMP '1970-01-01 00:00:00'",
            "TIMESTAMP '2262-04-11 23:47:16'",
            "TIMESTAMP '1677-09-21 00:12:44'",
            "CAST(NULL AS TIMESTAMP)",
        ],
        Ty::Num => &[
            "0.5",
            "0.0",
            "-2.5",
            "1e308",
            "-1e308",
            "1e-300",
            "CAST('NaN' AS DOUBLE)",
            "CAST('inf' AS DOUBLE)",
            "CAST('-inf' AS DOUBLE)",
            "NULL",
        ],
    }
}

/// `(type, template, argument types)`: `{k}` is the k-th argument.
const RULES: &[(Ty, &str, &[Ty])] = &[
    (Ty::Str, "upper({0})", &[Ty::Str]),
    (Ty::Str, "concat({0}, {1})", &[Ty::Str, Ty::Str]),
    (
        Ty::Str,
        "substr({0}, {1}, {2})",
        &[Ty::Str, Ty::Int, Ty::Int],
    ),
    (Ty::Str, "coalesce({0}, {1})", &[Ty::Str, Ty::Str]),
    (
        Ty::Str,
        "split_part({0}, {1}, {2})",
        &[Ty::Str, Ty::Str, Ty::Int],
    ),
    (
        Ty::Str,
        "CASE WHEN {0} THEN {1} ELSE {2} END",
        &[Ty::Bool, Ty::Str, Ty::Str],
    ),
    (Ty::Str, "md5({0})", &[Ty::Str]),
    (Ty::Str, "CAST({0} AS VARCHAR)", &[Ty::Int]),
    (Ty::Str, "CAST({0} AS VARCHAR)", &[Ty::Ts]),
    (Ty::Str, "CAST({0} AS VARCHAR)", &[Ty::Num]),
    (
        Ty::Str,
        "regexp_replace({0}, {1}, {2})",
        &[Ty::Str, Ty::Str, Ty::Str],
    ),
    (Ty::Int, "length({0})", &[Ty::Str]),
    (Ty::Int, "({0} + {1})", &[Ty::Int, Ty::Int]),
    (Ty::Int, "({0} - {1})", &[Ty::Int, Ty::Int]),
    (Ty::Int, "({0} * {1})", &[Ty::Int, Ty::Int]),
    (Ty::Int, "({0} / {1})", &[Ty::Int, Ty::Int]),
    (Ty::Int, "({0} % {1})", &[Ty::Int, Ty::Int]),
    (Ty::Int, "strpos({0}, {1})", &[Ty::Str, Ty::Str]),
    (Ty::Int, "CAST({0} AS BIGINT)", &[Ty::Str]),
    (Ty::Int, "CAST({0} AS BIGINT)", &[Ty::Num]),
    (Ty::Int, "CAST(date_part('year', {0}) AS BIGINT)", &[Ty::Ts]),
    (Ty::Bool, "({0} = {1})", &[Ty::Str, Ty::Str]),
    (Ty::Bool, "({0} < {1})", &[Ty::Int, Ty::Int]),
    (Ty::Bool, "({0} LIKE {1})", &[Ty::Str, Ty::Str]),
    (Ty::Bool, "({0} AND {1})", &[Ty::Bool, Ty::Bool]),
    (Ty::Bool, "({0} OR {1})", &[Ty::Bool, Ty::Bool]),
    (Ty::Bool, "(NOT {0})", &[Ty::Bool]),
    (Ty::Bool, "({0} IS NULL)", &[Ty::Str]),
    (
        Ty::Bool,
        "({0} IN ({1}, {2}))",
        &[Ty::Int, Ty::Int, Ty::Int],
    ),
    (Ty::Bool, "starts_with({0}, {1})", &[Ty::Str, Ty::Str]),
    (Ty::Bool, "({0} < {1})", &[Ty::Ts, Ty::Ts]),
    (Ty::Bool, "({0} > {1})", &[Ty::Num, Ty::Num]),
    (Ty::Ts, "add_working_days({0}, {1})", &[Ty::Ts, Ty::Num]),
    (Ty::Ts, "add_working_days({0}, {1})", &[Ty::Ts, Ty::Int]),
    (Ty::Ts, "date_trunc('day', {0})", &[Ty::Ts]),
    (Ty::Ts, "({0} + INTERVAL '1 day')", &[Ty::Ts]),
    (Ty::Ts, "to_timestamp({0})", &[Ty::Int]),
    (Ty::Ts, "to_timestamp({0})", &[Ty::Str]),
    (Ty::Ts, "coalesce({0}, {1})", &[Ty::Ts, Ty::Ts]),
    (Ty::Num, "working_seconds({0}, {1})", &[Ty::Ts, Ty::Ts]),
    (Ty::Num, "CAST({0} AS DOUBLE)", &[Ty::Int]),
    (Ty::Num, "({0} / {1})", &[Ty::Num, Ty::Num]),
    (Ty::Num, "sqrt({0})", &[Ty::Num]),
    (Ty::Num, "ln({0})", &[Ty::Num]),
    (Ty::Num, "power({0}, {1})", &[Ty::Num, Ty::Num]),
    (Ty::Num, "round({0}, {1})", &[Ty::Num, Ty::Int]),
];

/// The shape of a typed expression; its types come from the rules when it is rendered.
#[derive(Debug, Clone)]
enum Tree {
    /// A column of the type (when the table has one and `true`), else a literal.
    Leaf(Index, bool),
    Node(Index, Vec<Tree>),
}

fn tree() -> BoxedStrategy<Tree> {
    (any::<Index>(), any::<bool>())
        .prop_map(|(i, c)| Tree::Leaf(i, c))
        .prop_recursive(4, 40, 3, |inner| {
            (any::<Index>(), prop::collection::vec(inner, 1..=3))
                .prop_map(|(i, kids)| Tree::Node(i, kids))
        })
        .boxed()
}

fn render_typed(ty: Ty, t: &Tree, cols: &[(Ty, String)]) -> String {
    match t {
        Tree::Leaf(i, column) => {
            let of: Vec<&String> = cols
                .iter()
                .filter(|(c, _)| *c == ty)
                .map(|(_, s)| s)
                .collect();
            if *column && !of.is_empty() {
                of[i.index(of.len())].clone()
            } else {
                let lits = typed_literals(ty);
                lits[i.index(lits.len())].to_string()
            }
        }
        Tree::Node(i, kids) => {
            let rules: Vec<_> = RULES.iter().filter(|r| r.0 == ty).collect();
            let (_, template, args) = rules[i.index(rules.len())];
            let mut out = String::new();
            let mut rest = *template;
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let k = rest
                    .as_bytes()
                    .get(open + 1)
                    .map_or(0, |b| (b - b'0') as usize);
                let kid = &kids[k % kids.len()];
                out.push_str(&render_typed(args[k], kid, cols));
                rest = &rest[open + 3..];
            }
            out.push_str(rest);
            out
        }
    }
}

/// A query of well-typed expressions over one table.
#[derive(Debug, Clone)]
struct Typed {
    table: Index,
    items: Vec<(Index, Tree)>,
    filter: Option<Tree>,
    grouped: bool,
}

fn typed() -> BoxedStrategy<Typed> {
    (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), tree()), 1..4),
        prop::option::of(tree()),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(table, items, filter, grouped)| Typed {
            table,
            items,
            filter,
            grouped,
        })
        .boxed()
}

fn render_typed_query(
    q: &Typed,
    tables: &[(String, Vec<String>)],
    typed: &[Vec<(Ty, String)>],
) -> String {
    let t = q.table.index(tables.len());
    let cols = &typed[t];
    let item = |(ty, tree): &(Index, Tree)| render_typed(TYS[ty.index(TYS.len())], tree, cols);
    let filter = q
        .filter
        .as_ref()
        .map(|f| format!(" WHERE {}", render_typed(Ty::Bool, f, cols)))
        .unwrap_or_default();
    let table = &tables[t].0;
    if q.grouped {
        let key = render_typed(Ty::Str, &q.items[0].1, cols);
        let measure = render_typed(Ty::Num, &q.items[q.items.len() - 1].1, cols);
        format!(
            "SELECT {key} AS k, count(*) AS n, max({measure}) AS m FROM \"{table}\"{filter} \
             GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    } else {
        let items: Vec<String> = q
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| format!("{} AS c{i}", item(it)))
            .collect();
        format!(
            "SELECT {} FROM \"{table}\"{filter} ORDER BY 1",
            items.join(", ")
        )
    }
}

/// Statements the guard must refuse whatever their body (`{q}`: a read-only query,
/// `{dir}`: a directory nothing may be written to).
const FORBIDDEN: &[&str] = &[
    "CREATE TABLE fz AS {q}",
    "CREATE TABLE fz (a INT)",
    "CREATE OR REPLACE VIEW dossiers AS {q}",
    "CREATE VIEW fz AS {q}",
    "CREATE TEMPORARY VIEW fz AS {q}",
    "CREATE EXTERNAL TABLE fz STORED AS CSV LOCATION '{dir}/x.csv'",
    "CREATE SCHEMA fz",
    "CREATE DATABASE fz",
    "CREATE FUNCTION fz(INT) RETURNS INT RETURN 1",
    "INSERT INTO events {q}",
    "INSERT INTO fz VALUES (1)",
    "INSERT OVERWRITE events {q}",
    "WITH w AS ({q}) INSERT INTO events SELECT * FROM w",
    "COPY ({q}) TO '{dir}/out.csv'",
    "COPY events TO '{dir}/out.parquet' STORED AS PARQUET",
    "COPY (SELECT 1) TO '{dir}/one.json'",
    "DROP TABLE events",
    "DROP TABLE IF EXISTS fz",
    "DROP VIEW dossiers",
    "DROP SCHEMA public CASCADE",
    "SET datafusion.execution.batch_size = 1",
    "SET TIME ZONE 'UTC'",
    "SET datafusion.catalog.information_schema = false",
    "DELETE FROM events",
    "UPDATE events SET source = 'x'",
    "TRUNCATE TABLE events",
    "ALTER TABLE events ADD COLUMN x INT",
    "PREPARE p AS {q}",
    "EXECUTE p",
    "DEALLOCATE p",
    "BEGIN",
    "START TRANSACTION",
    "COMMIT",
    "ROLLBACK",
    "EXPLAIN ANALYZE INSERT INTO events {q}",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{dir}/e.csv'",
    "EXPLAIN ANALYZE CREATE TABLE fz AS {q}",
];

/// Ways of writing a forbidden statement that keep its meaning.
#[derive(Debug, Clone)]
enum Disguise {
    Plain,
    Case(u64),
    Comment(&'static str),
    Trailing(&'static str),
}

fn disguise(sql: &str, d: &Disguise) -> String {
    match d {
        Disguise::Plain => sql.to_string(),
        Disguise::Case(bits) => sql
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if bits >> (i % 64) & 1 == 1 {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect(),
        Disguise::Comment(c) => format!("{c}{sql}"),
        Disguise::Trailing(t) => format!("{sql}{t}"),
    }
}

/// One statement for the guard.
#[derive(Debug, Clone)]
enum Statement {
    /// Tokens in any order.
    Soup(Vec<&'static str>, Vec<Mutation>),
    /// A generated query, perhaps mutated.
    Query(Query, Vec<Mutation>),
    /// A query of well-typed expressions, perhaps mutated.
    Typed(Typed, Vec<Mutation>),
    /// Deep nesting: `(…)`, subqueries, `1+1+…`, `NOT NOT …`.
    Deep(u8, u16),
    Forbidden(&'static str, Query, Disguise),
}

fn statement() -> BoxedStrategy<Statement> {
    let token = prop_oneof![
        1 => select(&["E'\\x00'", "'\\'", "'", "\"", "$$", "U&'\\0041'"][..]),
        4 => select(KEYWORDS),
        3 => select(OPERATORS),
        3 => select(LITERALS),
        2 => select(&["events", "dossiers", "dossier_facts", "quarantine", "calendar", "territories", "information_schema.tables", "dossier_id", "at", "source"][..]),
        1 => select(FUNCTIONS).prop_map(|(f, _)| f),
    ];
    let d = prop_oneof![
        2 => Just(Disguise::Plain),
        2 => any::<u64>().prop_map(Disguise::Case),
        1 => select(&["/* x */ ", "-- x\n", "\n\t ", "(", "/* ; */"][..]).prop_map(Disguise::Comment),
        1 => select(&[";", " ; ", "\n", " -- end"][..]).prop_map(Disguise::Trailing),
    ];
    prop_oneof![
        3 => (prop::collection::vec(token, 0..40), mutations(2)).prop_map(|(t, m)| Statement::Soup(t, m)),
        3 => (query(), prop::collection::vec(mutation(), 0..2)).prop_map(|(q, m)| Statement::Query(q, m)),
        5 => (typed(), prop::option::weighted(0.15, mutation()))
            .prop_map(|(q, m)| Statement::Typed(q, m.into_iter().collect())),
        1 => (0u8..6, 1u16..400).prop_map(|(k, n)| Statement::Deep(k, n)),
        2 => (select(FORBIDDEN), query(), d).prop_map(|(f, q, d)| Statement::Forbidden(f, q, d)),
    ]
    .boxed()
}

fn render_statement(s: &Statement, sql: &Sql, dir: &str) -> String {
    let tables = &sql.tables;
    match s {
        Statement::Typed(q, m) => String::from_utf8_lossy(&mutated(
            render_typed_query(q, tables, &sql.typed).into_bytes(),
            m,
        ))
        .into_owned(),
        Statement::Soup(t, m) => {
            String::from_utf8_lossy(&mutated(t.join(" ").into_bytes(), m)).into_owned()
        }
        Statement::Query(q, m) => {
            String::from_utf8_lossy(&mutated(render_query(q, tables).into_bytes(), m)).into_owned()
        }
        Statement::Deep(kind, n) => {
            let n = *n as usize;
            match kind {
                0 => format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n)),
                1 => format!("SELECT {}", vec!["1"; n * 8].join("+")),
                2 => format!("SELECT {}TRUE", "NOT ".repeat(n)),
                3 => {
                    let mut q = "SELECT 1 AS x".to_string();
                    for i in 0..n.min(200) {
                        q = format!("SELECT x FROM ({q}) t{i}");
                    }
                    q
                }
                4 => format!(
                    "SELECT {}1{}",
                    "CASE WHEN TRUE THEN ".repeat(n),
                    " ELSE 0 END".repeat(n)
                ),
                _ => format!(
                    "SELECT * FROM events WHERE dossier_id IN ({})",
                    (0..n * 16)
                        .map(|i| format!("'{i}'"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            }
        }
        Statement::Forbidden(f, q, d) => {
            let sql = f
                .replace("{q}", &render_query(q, tables))
                .replace("{dir}", dir);
            disguise(&sql, d)
        }
    }
}

#[derive(Debug, Clone)]
struct SqlCase {
    statement: Statement,
    scoped: bool,
    plan_only: bool,
    tight: bool,
}

/// Limits small enough to be reached by generated statements.
fn tight_limits() -> SqlLimits {
    SqlLimits {
        max_sql_bytes: 2_000,
        max_depth: 12,
        max_expressions: 60,
        max_in_list: 8,
        max_set_operations: 1,
        max_tables: 3,
        max_select_items: 3,
    }
}

/// The answer of the guard, or a panic (in the task, or on the planning thread).
async fn ask(ctx: SessionContext, request: Request) -> Result<Result<usize, QueryError>, String> {
    let task = tokio::spawn(async move {
        let planned = guard::plan(&ctx, request).await?;
        let batches = planned.collect().await?;
        Ok::<usize, QueryError>(batches.iter().map(|b| b.num_rows()).sum())
    });
    match tokio::time::timeout(Duration::from_secs(60), task).await {
        Err(_) => Err("no answer within 60 s despite the time limit".into()),
        Ok(Err(e)) if e.is_panic() => Err(format!("panic: {e}")),
        Ok(Err(e)) => Err(format!("task: {e}")),
        Ok(Ok(r)) => Ok(r),
    }
}

/// Cases of the SQL target by default (each plans and perhaps runs a statement).
const SQL_CASES: u32 = 250;

#[test]
fn sql_guard_answers_rows_or_errors_and_refuses_writes() {
    let sql = Sql::new();
    let dir = sql.out.path().display().to_string();
    let before = (
        sql.rt.block_on(footprint(&sql.loaded.ctx)),
        sql.rt.block_on(footprint(&sql.scoped)),
    );
    let case = (
        statement(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(statement, scoped, plan_only, tight)| SqlCase {
            statement,
            scoped,
            plan_only,
            tight,
        });
    let outcomes = std::cell::RefCell::new(std::collections::BTreeMap::<&str, u32>::new());
    fuzz("sql_guard", SQL_CASES, case, |c| {
        let text = render_statement(&c.statement, &sql, &dir);
        let ctx = if c.scoped {
            sql.scoped.clone()
        } else {
            sql.loaded.ctx.clone()
        };
        let request = Request {
            sql: text.clone(),
            limits: if c.tight {
                tight_limits()
            } else {
                SqlLimits::default()
            },
            explain: if c.plan_only {
                Explain::PlanOnly
            } else {
                Explain::Any
            },
            max_rows: Some(50),
            deadline: Some(Instant::now() + Duration::from_millis(500)),
            params: None,
        };
        let answer = sql.rt.block_on(ask(ctx, request));
        let answer = answer.map_err(|e| TestCaseError::fail(format!("{e} on {text:?}")))?;
        let class = match &answer {
            Ok(_) => "rows",
            Err(QueryError::BadInput(_)) => "refused",
            Err(QueryError::Limit(_)) => "over a limit",
            Err(QueryError::DataFusion(_) | QueryError::Arrow(_)) => "failed while running",
            Err(_) => "other error",
        };
        *outcomes.borrow_mut().entry(class).or_insert(0) += 1;
        match &answer {
            Ok(_) => prop_assert!(
                !matches!(c.statement, Statement::Forbidden(..)),
                "a forbidden statement got through: {text:?}"
            ),
            Err(e) => {
                let m = e.to_string();
                prop_assert!(!m.trim().is_empty(), "an error says why");
                // a panic on the planning thread drops its answer
                prop_assert!(
                    !matches!(e, QueryError::Internal(m) if m.contains("bị dừng")),
                    "the planning thread died on {text:?}: {m}"
                );
                prop_assert!(!m.contains("panicked"), "{m} on {text:?}");
            }
        }
        Ok(())
    });
    let outcomes = outcomes.into_inner();
    eprintln!("fuzz::sql_guard: {outcomes:?}");
    // the generator reaches the planner and the executor, not only the parser
    if cases(SQL_CASES) >= 100 {
        assert!(outcomes.get("rows").is_some_and(|n| *n > 0), "{outcomes:?}");
    }
    let after = (
        sql.rt.block_on(footprint(&sql.loaded.ctx)),
        sql.rt.block_on(footprint(&sql.scoped)),
    );
    assert!(
        before == after,
        "a statement changed a session's tables or rows"
    );
    let written: Vec<_> = std::fs::read_dir(sql.out.path())
        .expect("dir")
        .map(|e| e.map(|e| e.path()))
        .collect();
    assert!(written.is_empty(), "a statement wrote files: {written:?}");
}
