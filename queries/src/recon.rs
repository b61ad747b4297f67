//! Reconciliation between source systems (issue #5): binds the parameters of
//! `sql/recon.sql` (one row per discrepancy) and returns counts per source pair and kind,
//! totals per kind, and the list of discrepancies to drill into.
//!
//! Built from the `events` table only (dossier events), per (dossier, source): first
//! `received` instant, number of distinct `received` instants, and end (earliest of
//! resolved / returned / withdrawn / stopped). The kind filter applies to `items` only:
//! `pairs` and `totals` always cover every kind, so a drill-down keeps its overview.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::{col, lit, SessionContext};
use futures::StreamExt;
use serde::Serialize;

use giamsat_warehouse::calendar::MICROS;
use giamsat_warehouse::discrepancy::DISCREPANCIES;
use giamsat_warehouse::event::string_col;

use crate::common::{self, Cols};
use crate::QueryError;

/// The SQL file, verbatim.
pub const SQL: &str = giamsat_warehouse::discrepancy::RECON_SQL;
/// Step 1: one row per (dossier, source).
pub const PER_SOURCE_SQL: &str = include_str!("../sql/recon_per_source.sql");

/// Step 1 from `dossier_sources` (kept at ingest: one row per dossier and source with
/// what recon_per_source.sql computes from the events), when the session has it.
const PER_SOURCE_KEPT_SQL: &str = "SELECT dossier_id, source, source = $1 AS is_portal, \
    received_at, received_count, end_type, ended_at \
    FROM dossier_sources \
    WHERE reported AND dossier_first_at IS NOT NULL \
      AND ($2 IS NULL OR dossier_first_at >= $2) \
      AND ($3 IS NULL OR dossier_first_at < $3)";

/// Default tolerance between the end instants two systems report.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 3_600;
/// Default number of listed discrepancies.
pub const DEFAULT_LIMIT: usize = 1_000;

/// Kind of discrepancy, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Reported by an origin system, never by the portal.
    MissingOnPortal,
    /// Reported by the portal only.
    MissingInOrigin,
    /// Ended in one system, not in the other.
    LostState,
    /// Both ended, with different end types.
    StatusMismatch,
    /// Both ended, more than the tolerance apart.
    EndTimeMismatch,
    /// Several distinct `received` instants in one system, or received by several
    /// origin systems.
    Duplicate,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::MissingOnPortal,
        Kind::MissingInOrigin,
        Kind::LostState,
        Kind::StatusMismatch,
        Kind::EndTimeMismatch,
        Kind::Duplicate,
    ];

    /// The code used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MissingOnPortal => "missing_on_portal",
            Kind::MissingInOrigin => "missing_in_origin",
            Kind::LostState => "lost_state",
            Kind::StatusMismatch => "status_mismatch",
            Kind::EndTimeMismatch => "end_time_mismatch",
            Kind::Duplicate => "duplicate",
        }
    }

    /// Parse a `kind` parameter.
    pub fn parse(s: &str) -> Result<Kind, QueryError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                QueryError::BadInput(format!(
                    "kind không hợp lệ: {s:?} ({})",
                    Kind::ALL.map(Kind::as_str).join("|")
                ))
            })
    }

    /// Vietnamese label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::MissingOnPortal => "Chưa có trên Cổng Dịch vụ công quốc gia",
            Kind::MissingInOrigin => "Chỉ có trên Cổng, không có ở hệ thống nguồn",
            Kind::LostState => "Mất trạng thái kết thúc",
            Kind::StatusMismatch => "Lệch trạng thái kết thúc",
            Kind::EndTimeMismatch => "Lệch thời điểm kết thúc",
            Kind::Duplicate => "Trùng lặp tiếp nhận",
        }
    }

    fn rank(self) -> i64 {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(0) as i64
    }
}

/// Vietnamese name of an end type (DVCQG status names).
pub fn end_type_label(t: &str) -> &str {
    match t {
        "resolved" => "Đã xử lý xong",
        "returned" => "Đã trả kết quả",
        "withdrawn" => "Công dân rút hồ sơ",
        "stopped" => "Dừng xử lý",
        o => o,
    }
}

/// Parameters. Build with [`Params::default`] and adjust the fields; [`run`] validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// The national portal's source code (default `dvcqg`).
    pub portal_source: String,
    /// Ends further apart than this are an `end_time_mismatch` (default 3600).
    pub tolerance_seconds: i64,
    /// Only dossiers whose earliest event (any source) is in `[from, to)`, UTC micros.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only this kind in `items`.
    pub kind: Option<Kind>,
    /// Only this dossier (its explanation, `explain`).
    pub dossier: Option<String>,
    /// At most this many `items`.
    pub limit: usize,
    /// Items after this one (the `next_cursor` of the previous page).
    pub cursor: Option<String>,
    /// The `[sync]` settings of the warehouse, with which its `discrepancies` were
    /// computed: when they are this report's, the report reads that table.
    /// `(portal_source, end_time_tolerance_seconds)`.
    pub kept: Option<(String, i64)>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            portal_source: crate::alerts::DEFAULT_PORTAL.to_string(),
            tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
            from: None,
            to: None,
            kind: None,
            dossier: None,
            limit: DEFAULT_LIMIT,
            cursor: None,
            kept: None,
        }
    }
}

impl Params {
    /// Check the parameters.
    pub fn validate(&self) -> Result<(), QueryError> {
        common::check_source("portal_source", &self.portal_source)?;
        if !(0..=366 * 86_400).contains(&self.tolerance_seconds) {
            return Err(QueryError::BadInput(format!(
                "tolerance_seconds phải từ 0 đến 31622400: {}",
                self.tolerance_seconds
            )));
        }
        if let (Some(a), Some(b)) = (self.from, self.to) {
            if a >= b {
                return Err(QueryError::BadInput("from phải trước to".into()));
            }
        }
        if let Some(c) = &self.cursor {
            Cursor::parse(c)?;
        }
        common::check_limit(self.limit)
    }
}

/// Number of discrepancies of one kind for one pair of sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PairCount {
    pub source_a: String,
    /// Null for `missing_in_origin` and for a duplicate within one source.
    pub source_b: Option<String>,
    pub kind: Kind,
    pub count: i64,
}

/// Totals of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KindTotal {
    pub kind: Kind,
    pub label: String,
    /// Discrepancy rows (one per dossier and source pair).
    pub count: i64,
    /// Distinct dossiers.
    pub dossiers: i64,
}

/// One discrepancy. Instants are RFC 3339 in local time (+07:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Item {
    pub dossier_id: String,
    pub kind: Kind,
    pub source_a: String,
    pub source_b: Option<String>,
    pub a_received_at: Option<String>,
    pub b_received_at: Option<String>,
    /// Distinct `received` instants in `source_a` (rows about one source only).
    pub a_received_count: Option<i64>,
    pub a_end_type: Option<String>,
    pub b_end_type: Option<String>,
    pub a_ended_at: Option<String>,
    pub b_ended_at: Option<String>,
    /// `b_ended_at − a_ended_at` when both ended.
    pub end_diff_seconds: Option<i64>,
    /// What is wrong, in Vietnamese.
    pub detail: String,
}

/// The reconciliation report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub portal_source: String,
    pub tolerance_seconds: i64,
    /// Dossiers with at least one discrepancy.
    pub dossiers_with_discrepancies: i64,
    /// Every kind, in order, zero included.
    pub totals: Vec<KindTotal>,
    /// Per (source_a, source_b, kind), sorted by those.
    pub pairs: Vec<PairCount>,
    /// Sorted by kind (report order), dossier, sources; at most `limit`.
    pub items: Vec<Item>,
    /// When `items` is a full page: pass it as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

fn detail(it: &Item, portal: &str, tolerance: i64, times: &RawTimes) -> String {
    let a = &it.source_a;
    let b = it.source_b.as_deref().unwrap_or("");
    let end = |t: &Option<String>, at: Option<i64>| {
        format!(
            "«{}» lúc {}",
            end_type_label(t.as_deref().unwrap_or("")),
            at.map(common::local_short).unwrap_or_default()
        )
    };
    match it.kind {
        Kind::MissingOnPortal => {
            format!("Hồ sơ có trên {a} nhưng chưa được đồng bộ lên {portal}")
        }
        Kind::MissingInOrigin => {
            format!("Hồ sơ chỉ có trên {a}, không hệ thống nguồn nào gửi hồ sơ này")
        }
        Kind::LostState => {
            let (ended, open, t, at) = if times.a_end.is_some() {
                (a.as_str(), b, &it.a_end_type, times.a_end)
            } else {
                (b, a.as_str(), &it.b_end_type, times.b_end)
            };
            format!(
                "{ended} ghi nhận kết thúc {}; {open} chưa có trạng thái kết thúc",
                end(t, at)
            )
        }
        Kind::StatusMismatch => format!(
            "Trạng thái kết thúc khác nhau: {a} {}, {b} {}",
            end(&it.a_end_type, times.a_end),
            end(&it.b_end_type, times.b_end)
        ),
        Kind::EndTimeMismatch => format!(
            "Thời điểm kết thúc lệch nhau {} (ngưỡng {}): {a} {}, {b} {}",
            common::duration_vi(it.end_diff_seconds.unwrap_or(0)),
            common::duration_vi(tolerance),
            end(&it.a_end_type, times.a_end),
            end(&it.b_end_type, times.b_end)
        ),
        Kind::Duplicate if it.source_b.is_none() => format!(
            "{a} ghi nhận {} thời điểm tiếp nhận khác nhau (sớm nhất {})",
            it.a_received_count.unwrap_or(0),
            times
                .a_received
                .map(common::local_short)
                .unwrap_or_default()
        ),
        Kind::Duplicate => format!(
            "Cả {a} và {b} đều ghi nhận tiếp nhận hồ sơ (lúc {} và {})",
            times
                .a_received
                .map(common::local_short)
                .unwrap_or_default(),
            times
                .b_received
                .map(common::local_short)
                .unwrap_or_default()
        ),
    }
}

struct RawTimes {
    a_received: Option<i64>,
    b_received: Option<i64>,
    a_end: Option<i64>,
    b_end: Option<i64>,
}

/// Compute the reconciliation.
pub async fn run(ctx: &SessionContext, p: &Params) -> Result<Report, QueryError> {
    let same_settings = p.kept.as_ref().is_some_and(|(portal, tolerance)| {
        *portal == p.portal_source && *tolerance == p.tolerance_seconds
    });
    if same_settings && ctx.table_exist(DISCREPANCIES)? {
        p.validate()?;
        // the findings kept at ingest
        let found = ctx
            .sql(&format!(
                "SELECT dossier_id, kind, source_a, source_b, a_received_at, b_received_at, \
                 a_received_count, a_end_type, b_end_type, a_ended_at, b_ended_at \
                 FROM {DISCREPANCIES} WHERE dossier_first_at IS NOT NULL \
                 AND ($1 IS NULL OR dossier_first_at >= $1) AND ($2 IS NULL OR dossier_first_at < $2)"
            ))
            .await?
            .with_param_values(vec![common::ts_param(p.from), common::ts_param(p.to)])?;
        return summarize(found, p, false).await;
    }
    // step 1 from what ingest keeps when the session has it, else from the events
    let kept = ctx.table_exist(giamsat_warehouse::health::DOSSIER_SOURCES)?;
    run_step1(
        ctx,
        p,
        if kept {
            PER_SOURCE_KEPT_SQL
        } else {
            PER_SOURCE_SQL
        },
    )
    .await
}

/// [`run`] with step 1 from the events (`recon_per_source.sql`, the definition).
pub async fn run_from_events(ctx: &SessionContext, p: &Params) -> Result<Report, QueryError> {
    run_step1(ctx, p, PER_SOURCE_SQL).await
}

async fn run_step1(ctx: &SessionContext, p: &Params, step1: &str) -> Result<Report, QueryError> {
    p.validate()?;
    let per_source = ctx.sql(step1).await?.with_param_values(vec![
        ScalarValue::Utf8(Some(p.portal_source.clone())),
        common::ts_param(p.from),
        common::ts_param(p.to),
    ])?;
    let schema: SchemaRef = Arc::new(per_source.schema().as_arrow().clone());
    let rows = per_source.collect().await?;
    let schema = rows.first().map_or(schema, |b| b.schema());
    // step 2 over the collected rows, in a private session; its result is collected once
    // too, then summed up four ways
    let local = SessionContext::new();
    local.register_table(
        "per_source",
        Arc::new(MemTable::try_new(schema, vec![rows])?),
    )?;
    let found = local.sql(SQL).await?.with_param_values(vec![
        ScalarValue::Utf8(Some(p.portal_source.clone())),
        ScalarValue::Int64(Some(p.tolerance_seconds * MICROS)),
    ])?;
    summarize(found, p, true).await
}

/// The sort key of an item: kind in report order, dossier, sources (`source_b`: none
/// first). Cursors and pages follow it.
type Key = (i64, String, String, Option<String>);

/// A [`Key`] as borrowed text.
type KeyRef<'a> = (i64, &'a str, &'a str, Option<&'a str>);

/// `k` as borrowed text, to compare with a row's key without copying it.
fn borrowed(k: &Key) -> KeyRef<'_> {
    (k.0, k.1.as_str(), k.2.as_str(), k.3.as_deref())
}

/// The key columns of a batch of discrepancies.
struct KeyCols {
    ids: StringArray,
    kinds: StringArray,
    source_a: StringArray,
    source_b: StringArray,
}

impl KeyCols {
    fn of(batch: &RecordBatch) -> Result<KeyCols, QueryError> {
        Ok(KeyCols {
            ids: string_col(batch, "dossier_id")?,
            kinds: string_col(batch, "kind")?,
            source_a: string_col(batch, "source_a")?,
            source_b: string_col(batch, "source_b")?,
        })
    }

    /// Row `i`'s kind and key, borrowed from the batch.
    fn key(&self, i: usize) -> Result<(Kind, KeyRef<'_>), QueryError> {
        let kind = Kind::parse(self.kinds.value(i))?;
        let b = (!self.source_b.is_null(i)).then(|| self.source_b.value(i));
        Ok((
            kind,
            (kind.rank(), self.ids.value(i), self.source_a.value(i), b),
        ))
    }
}

/// Counts per pair and kind, totals and the page of items of the discrepancies `found`.
///
/// One pass over the key columns counts the pairs and the dossiers per kind and keeps the
/// page's keys (the `limit` smallest after the cursor); a second query reads the page's
/// rows whole. Memory holds one bit set per dossier with a discrepancy and the page, not
/// the discrepancies.
async fn summarize(
    found: datafusion::prelude::DataFrame,
    p: &Params,
    materialize: bool,
) -> Result<Report, QueryError> {
    let cursor = p.cursor.as_deref().map(Cursor::parse).transpose()?;
    let after: Option<Key> = cursor.map(|c| (c.rank, c.dossier_id, c.source_a, c.source_b));
    let found = match &p.dossier {
        Some(d) => found.filter(col("dossier_id").eq(lit(d.clone())))?,
        None => found,
    };
    // a computed result is collected once and read twice; a kept table is read directly
    let df = if materialize {
        let local = SessionContext::new();
        let schema: SchemaRef = Arc::new(found.schema().as_arrow().clone());
        let found = found.collect().await?;
        let schema = found.first().map_or(schema, |b| b.schema());
        local.read_table(Arc::new(MemTable::try_new(schema, vec![found])?))?
    } else {
        found
    };

    let mut pair_counts: BTreeMap<(String, Option<String>, Kind), i64> = BTreeMap::new();
    // per dossier: the kinds it has, one bit each (rank order)
    let mut kinds_of: HashMap<String, u8> = HashMap::new();
    let mut kind_rows = [0i64; Kind::ALL.len()];
    // the page: a max-heap of the `limit` smallest keys seen
    let mut page: BinaryHeap<Key> = BinaryHeap::new();
    let mut stream = df
        .clone()
        .select_columns(&["dossier_id", "kind", "source_a", "source_b"])?
        .execute_stream()
        .await?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let cols = KeyCols::of(&batch)?;
        // this batch's pair counts, keyed by borrowed text, merged below
        let mut batch_pairs: HashMap<(&str, Option<&str>, Kind), i64> = HashMap::new();
        for i in 0..batch.num_rows() {
            let (kind, key) = cols.key(i)?;
            let (rank, id, a, b) = key;
            *batch_pairs.entry((a, b, kind)).or_insert(0) += 1;
            kind_rows[rank as usize] += 1;
            let bit = 1u8 << rank;
            match kinds_of.get_mut(id) {
                Some(m) => *m |= bit,
                None => {
                    kinds_of.insert(id.to_string(), bit);
                }
            }
            if p.kind.is_some_and(|k| k != kind) {
                continue;
            }
            if after.as_ref().is_some_and(|c| key <= borrowed(c)) {
                continue;
            }
            if page.len() == p.limit && page.peek().is_some_and(|top| key >= borrowed(top)) {
                continue;
            }
            page.push((rank, id.to_string(), a.to_string(), b.map(str::to_string)));
            if page.len() > p.limit {
                page.pop();
            }
        }
        for ((a, b, kind), n) in batch_pairs {
            *pair_counts
                .entry((a.to_string(), b.map(str::to_string), kind))
                .or_insert(0) += n;
        }
    }
    let pairs: Vec<PairCount> = pair_counts
        .into_iter()
        .map(|((source_a, source_b, kind), count)| PairCount {
            source_a,
            source_b,
            kind,
            count,
        })
        .collect();
    let mut dossiers_per_kind = [0i64; Kind::ALL.len()];
    for m in kinds_of.values() {
        for (r, d) in dossiers_per_kind.iter_mut().enumerate() {
            if m & (1u8 << r) != 0 {
                *d += 1;
            }
        }
    }
    let dossiers_with_discrepancies = kinds_of.len() as i64;
    drop(kinds_of);
    let totals: Vec<KindTotal> = Kind::ALL
        .iter()
        .map(|k| KindTotal {
            kind: *k,
            label: k.label().to_string(),
            count: kind_rows[k.rank() as usize],
            dossiers: dossiers_per_kind[k.rank() as usize],
        })
        .collect();

    // the page's rows, whole, in key order
    let page: BTreeSet<Key> = page.into_iter().collect();
    let page_ids: BTreeSet<&str> = page.iter().map(|k| k.1.as_str()).collect();
    let items_b = if page_ids.is_empty() {
        Vec::new()
    } else {
        df.filter(
            col("dossier_id").in_list(page_ids.iter().map(|d| lit(d.to_string())).collect(), false),
        )?
        .collect()
        .await?
    };
    let mut rows: Vec<(Key, usize, usize)> = Vec::new();
    for (bi, b) in items_b.iter().enumerate() {
        let cols = KeyCols::of(b)?;
        for i in 0..b.num_rows() {
            let (_, (rank, id, a, sb)) = cols.key(i)?;
            let key: Key = (rank, id.to_string(), a.to_string(), sb.map(str::to_string));
            if page.contains(&key) {
                rows.push((key, bi, i));
            }
        }
    }
    rows.sort_by(|x, y| x.0.cmp(&y.0));

    // items
    struct ItemCols {
        ar: common::IntCol,
        br: common::IntCol,
        an: common::IntCol,
        at: common::StrCol,
        bt: common::StrCol,
        ae: common::IntCol,
        be: common::IntCol,
    }
    let cols = items_b
        .iter()
        .map(|b| {
            let c = Cols(b);
            Ok::<_, QueryError>(ItemCols {
                ar: c.instants("a_received_at")?,
                br: c.instants("b_received_at")?,
                an: c.ints("a_received_count")?,
                at: c.strings("a_end_type")?,
                bt: c.strings("b_end_type")?,
                ae: c.instants("a_ended_at")?,
                be: c.instants("b_ended_at")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut items = Vec::new();
    for ((rank, dossier_id, source_a, source_b), bi, i) in rows {
        let c = &cols[bi];
        let times = RawTimes {
            a_received: c.ar.get(i),
            b_received: c.br.get(i),
            a_end: c.ae.get(i),
            b_end: c.be.get(i),
        };
        let mut it = Item {
            dossier_id,
            kind: Kind::ALL[rank as usize],
            source_a,
            source_b,
            a_received_at: times.a_received.and_then(common::local_rfc3339),
            b_received_at: times.b_received.and_then(common::local_rfc3339),
            a_received_count: c.an.get(i),
            a_end_type: c.at.get(i),
            b_end_type: c.bt.get(i),
            a_ended_at: times.a_end.and_then(common::local_rfc3339),
            b_ended_at: times.b_end.and_then(common::local_rfc3339),
            end_diff_seconds: match (times.a_end, times.b_end) {
                (Some(x), Some(y)) => Some((y - x) / MICROS),
                _ => None,
            },
            detail: String::new(),
        };
        it.detail = detail(&it, &p.portal_source, p.tolerance_seconds, &times);
        items.push(it);
    }
    let next_cursor = if items.len() == p.limit {
        items.last().map(|it| {
            Cursor {
                rank: it.kind.rank(),
                dossier_id: it.dossier_id.clone(),
                source_a: it.source_a.clone(),
                source_b: it.source_b.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Report {
        portal_source: p.portal_source.clone(),
        tolerance_seconds: p.tolerance_seconds,
        dossiers_with_discrepancies,
        totals,
        pairs,
        items,
        next_cursor,
    })
}

/// Where a page of items ended: the last item's sort key, as text
/// `rank\u{1f}dossier\u{1f}source_a\u{1f}source_b` in hex (opaque to clients).
struct Cursor {
    rank: i64,
    dossier_id: String,
    source_a: String,
    source_b: Option<String>,
}

impl Cursor {
    fn encode(&self) -> String {
        let text = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.rank,
            self.dossier_id,
            self.source_a,
            self.source_b
                .as_deref()
                .map_or("\u{0}".to_string(), str::to_string)
        );
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn parse(s: &str) -> Result<Cursor, QueryError> {
        let bad = || QueryError::BadInput(format!("cursor không hợp lệ: {s:?}"));
        if !s.len().is_multiple_of(2) || s.len() > 2_000 {
            return Err(bad());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let f: Vec<&str> = text.split('\u{1f}').collect();
        let [rank, d, a, b] = f.as_slice() else {
            return Err(bad());
        };
        Ok(Cursor {
            rank: rank.parse().map_err(|_| bad())?,
            dossier_id: d.to_string(),
            source_a: a.to_string(),
            source_b: (*b != "\u{0}").then(|| b.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_order() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()).ok(), Some(k));
        }
        assert!(Kind::parse("nope").is_err());
        assert!(Kind::MissingOnPortal < Kind::Duplicate);
    }

    #[test]
    fn params_are_checked() {
        let ok = Params::default();
        assert!(ok.validate().is_ok());
        for bad in [
            Params {
                portal_source: "DVCQG'".into(),
                ..Params::default()
            },
            Params {
                tolerance_seconds: -1,
                ..Params::default()
            },
            Params {
                from: Some(10),
                to: Some(10),
                ..Params::default()
            },
            Params {
                limit: 0,
                ..Params::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(QueryError::BadInput(_))));
        }
    }
}
