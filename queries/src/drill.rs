//! The dossiers behind a number: every count of Biểu 06 (and of the on-time rows built on
//! it) and every dossier count of the Decision 766 index, as the list of the dossiers it
//! counts.
//!
//! A list is computed by the same SQL as its count: the CTE of the period's classified
//! dossiers (`period_dossiers.sql`, or `index766_flags.sql` for the index) filtered to one
//! row of the report and to the rows where the cell's 0/1 column is 1, so the length of a
//! list always equals its cell. Lists are ordered by dossier id and paged by keyset (the
//! cursor is the last id of a page).

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use giamsat_warehouse::Calendar;

use crate::bieu06::{period_params, with_period_dossiers, Params};
use crate::common::{local_rfc3339, rfc3339_short, Cols};
use crate::index766::{self, Index766Config};
use crate::QueryError;

/// A cell of Biểu 06 or of an on-time row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    Total,
    ReceivedOnline,
    ReceivedOffline,
    CarriedOver,
    Ended,
    EndedEarly,
    EndedOnDay,
    EndedLate,
    InProgress,
    InProgressInTime,
    InProgressOverdue,
    /// received in the period: online + in person or postal (columns 2 + 3).
    Received,
    /// ended early + on the day + in progress in time (on-time rows).
    OnTime,
    /// ended late + in progress overdue (on-time rows).
    Late,
}

impl Column {
    pub const ALL: [Column; 14] = [
        Column::Total,
        Column::ReceivedOnline,
        Column::ReceivedOffline,
        Column::CarriedOver,
        Column::Ended,
        Column::EndedEarly,
        Column::EndedOnDay,
        Column::EndedLate,
        Column::InProgress,
        Column::InProgressInTime,
        Column::InProgressOverdue,
        Column::Received,
        Column::OnTime,
        Column::Late,
    ];

    /// The parameter value (the report's column name).
    pub fn as_str(self) -> &'static str {
        match self {
            Column::Total => "total",
            Column::ReceivedOnline => "received_online",
            Column::ReceivedOffline => "received_offline",
            Column::CarriedOver => "carried_over",
            Column::Ended => "ended",
            Column::EndedEarly => "ended_early",
            Column::EndedOnDay => "ended_on_day",
            Column::EndedLate => "ended_late",
            Column::InProgress => "in_progress",
            Column::InProgressInTime => "in_progress_in_time",
            Column::InProgressOverdue => "in_progress_overdue",
            Column::Received => "received",
            Column::OnTime => "on_time",
            Column::Late => "late",
        }
    }

    /// Parse a `column` parameter.
    pub fn parse(s: &str) -> Result<Column, QueryError> {
        Column::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                QueryError::BadInput(format!(
                    "column không hợp lệ: {s:?} ({})",
                    Column::ALL.map(Column::as_str).join("|")
                ))
            })
    }

    /// The Vietnamese heading (Biểu 06's, with its column number).
    pub fn label(self) -> &'static str {
        match self {
            Column::Total => "(1) Tổng số nhận giải quyết",
            Column::ReceivedOnline => "(2) Mới tiếp nhận trực tuyến",
            Column::ReceivedOffline => "(3) Mới tiếp nhận trực tiếp, bưu chính",
            Column::CarriedOver => "(4) Từ kỳ trước chuyển sang",
            Column::Ended => "(5) Đã giải quyết",
            Column::EndedEarly => "(6) Đã giải quyết trước hạn",
            Column::EndedOnDay => "(7) Đã giải quyết đúng hạn",
            Column::EndedLate => "(8) Đã giải quyết quá hạn",
            Column::InProgress => "(9) Đang giải quyết",
            Column::InProgressInTime => "(10) Đang giải quyết trong hạn",
            Column::InProgressOverdue => "(11) Đang giải quyết quá hạn",
            Column::Received => "Mới tiếp nhận (2 + 3)",
            Column::OnTime => "Đúng hạn (6 + 7 + 10)",
            Column::Late => "Quá hạn (8 + 11)",
        }
    }

    /// The condition, over a row of `period_dossiers.sql` (alias `l`), of being counted
    /// in this column (each of its terms is 0 or 1, and those of `OnTime` and `Late`
    /// exclude each other).
    fn predicate(self) -> &'static str {
        match self {
            Column::Total => "TRUE",
            Column::ReceivedOnline => "l.received_online = 1",
            Column::ReceivedOffline => "l.received_offline = 1",
            Column::CarriedOver => "l.carried_over = 1",
            Column::Ended => "l.ended = 1",
            Column::EndedEarly => "l.ended_early = 1",
            Column::EndedOnDay => "l.ended_on_day = 1",
            Column::EndedLate => "l.ended_late = 1",
            Column::InProgress => "l.in_progress = 1",
            Column::InProgressInTime => "l.in_progress_in_time = 1",
            Column::InProgressOverdue => "l.in_progress_overdue = 1",
            Column::Received => "l.received_online + l.received_offline = 1",
            Column::OnTime => "l.ended_early + l.ended_on_day + l.in_progress_in_time = 1",
            Column::Late => "l.ended_late + l.in_progress_overdue = 1",
        }
    }
}

/// Which page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// At most this many items.
    pub limit: usize,
    /// After this dossier id ([`List::next_cursor`] of the previous page).
    pub after: Option<String>,
}

/// The largest page.
pub const MAX_LIMIT: usize = 10_000;

impl Page {
    /// Validate `limit` (1..=[`MAX_LIMIT`], default 100) and decode `cursor`.
    pub fn new(limit: Option<usize>, cursor: Option<&str>) -> Result<Page, QueryError> {
        let limit = limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(QueryError::BadInput(format!(
                "limit phải từ 1 đến {MAX_LIMIT}"
            )));
        }
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(|c| {
                hex::decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| QueryError::BadInput(format!("cursor không hợp lệ: {c:?}")))
            })
            .transpose()?;
        Ok(Page { limit, after })
    }

    /// The whole list, up to `max` dossiers.
    pub fn all(max: usize) -> Page {
        Page {
            limit: max,
            after: None,
        }
    }
}

/// One listed dossier. Instants are RFC 3339 in local time (+07:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Item {
    pub dossier_id: String,
    pub procedure_code: Option<String>,
    pub procedure_name: Option<String>,
    pub field_code: Option<String>,
    pub field_name: Option<String>,
    pub agency_code: Option<String>,
    pub agency_name: Option<String>,
    pub province_code: Option<String>,
    pub commune_code: Option<String>,
    pub commune_name: Option<String>,
    pub channel: Option<String>,
    /// Source systems reporting the dossier, sorted, comma separated.
    pub sources: String,
    pub received_at: Option<String>,
    /// The end within the period (null when in progress at the period end).
    pub ended_at: Option<String>,
    /// The due time at the end, or in force at the period end for a dossier in progress.
    pub due_at: Option<String>,
    /// As judged for the period: `early`, `on_day`, `late`, `in_time` or `overdue`.
    pub class: String,
    /// "Trước hạn", "Đúng hạn", "Quá hạn", "Trong hạn" or "Quá hạn".
    pub class_label: String,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct List {
    /// Dossiers in the list (all pages): the number in the report's cell.
    pub count: i64,
    /// Ordered by dossier id.
    pub items: Vec<Item>,
    /// When more follow: pass it as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// The Vietnamese label of a class.
pub fn class_label(class: &str) -> &'static str {
    match class {
        "early" => "Trước hạn",
        "on_day" => "Đúng hạn",
        "late" | "overdue" => "Quá hạn",
        "in_time" => "Trong hạn",
        _ => "",
    }
}

/// The selected columns of a list item over a row of `period_dossiers.sql` (alias `l`).
const ITEM_COLUMNS: &str = "l.dossier_id, l.procedure_code, l.procedure_name, l.field_code, \
     l.field_name, l.agency_code, l.agency_name, l.province_code, l.commune_code, \
     l.commune_name, l.channel, l.sources, l.received_at, \
     CASE WHEN l.ended = 1 THEN l.ended_at END AS ended_at, \
     CASE WHEN l.ended = 1 THEN l.due_at ELSE l.period_due_at END AS due_at, \
     CASE WHEN l.ended_early = 1 THEN 'early' WHEN l.ended_on_day = 1 THEN 'on_day' \
     WHEN l.ended_late = 1 THEN 'late' WHEN l.in_progress_in_time = 1 THEN 'in_time' \
     ELSE 'overdue' END AS class";

/// The rows of `relation` (defined by the CTEs `with`, bound to `params`) that satisfy
/// `filter`: their number and one page of them.
async fn list(
    ctx: &SessionContext,
    with: &str,
    relation: &str,
    filter: &str,
    mut params: Vec<ScalarValue>,
    page: &Page,
) -> Result<List, QueryError> {
    let count_sql = format!("{with}\nSELECT COUNT(*) AS n FROM {relation} AS l WHERE {filter}");
    let counted = ctx
        .sql(&count_sql)
        .await?
        .with_param_values(params.clone())?
        .collect()
        .await?;
    let mut count = 0;
    for b in &counted {
        let n = cast(b.column(0), &DataType::Int64)?;
        if let Some(n) = n.as_any().downcast_ref::<Int64Array>() {
            count += n.iter().flatten().sum::<i64>();
        }
    }
    let mut page_filter = filter.to_string();
    if let Some(after) = &page.after {
        params.push(ScalarValue::Utf8(Some(after.clone())));
        page_filter = format!("({filter}) AND l.dossier_id > ${}", params.len());
    }
    // one more than asked, to know whether a next page exists
    let sql = format!(
        "{with}\nSELECT {ITEM_COLUMNS} FROM {relation} AS l WHERE {page_filter} \
         ORDER BY l.dossier_id LIMIT {}",
        page.limit + 1
    );
    let batches = ctx
        .sql(&sql)
        .await?
        .with_param_values(params)?
        .collect()
        .await?;
    let mut items = items_of(&batches)?;
    let next_cursor = if items.len() > page.limit {
        items.truncate(page.limit);
        items.last().map(|i| hex::encode(i.dossier_id.as_bytes()))
    } else {
        None
    };
    Ok(List {
        count,
        items,
        next_cursor,
    })
}

fn items_of(batches: &[RecordBatch]) -> Result<Vec<Item>, QueryError> {
    let mut out = Vec::new();
    for b in batches {
        let c = Cols(b);
        let s = |n: &str| c.strings(n);
        let t = |n: &str| c.instants(n);
        let (id, pc, pn, fc, fname, ac, an) = (
            s("dossier_id")?,
            s("procedure_code")?,
            s("procedure_name")?,
            s("field_code")?,
            s("field_name")?,
            s("agency_code")?,
            s("agency_name")?,
        );
        let (prov, com, comn, ch, src, class) = (
            s("province_code")?,
            s("commune_code")?,
            s("commune_name")?,
            s("channel")?,
            s("sources")?,
            s("class")?,
        );
        let (rec, end, due) = (t("received_at")?, t("ended_at")?, t("due_at")?);
        for i in 0..c.rows() {
            let class = class.text(i);
            out.push(Item {
                dossier_id: id.text(i),
                procedure_code: pc.get(i),
                procedure_name: pn.get(i),
                field_code: fc.get(i),
                field_name: fname.get(i),
                agency_code: ac.get(i),
                agency_name: an.get(i),
                province_code: prov.get(i),
                commune_code: com.get(i),
                commune_name: comn.get(i),
                channel: ch.get(i),
                sources: src.text(i),
                received_at: rec.get(i).and_then(local_rfc3339),
                ended_at: end.get(i).and_then(local_rfc3339),
                due_at: due.get(i).and_then(local_rfc3339),
                class_label: class_label(&class).to_string(),
                class,
            });
        }
    }
    Ok(out)
}

/// The dossiers counted in one cell of Biểu 06: the row `group` (`None` = the TOTAL
/// row; `Some("")` = the row of dossiers without a value of the grouping) of the report
/// with parameters `p`, column `column`.
pub async fn bieu06(
    ctx: &SessionContext,
    cal: &Calendar,
    p: &Params,
    group: Option<&str>,
    column: Column,
    page: &Page,
) -> Result<List, QueryError> {
    let mut params = period_params(cal, p.from, p.to, &p.province, &p.commune, &p.filters);
    let mut filter = column.predicate().to_string();
    let with = match group {
        // the TOTAL row counts each dossier once, whatever the grouping
        None => format!("WITH c AS (\n{}\n)", crate::bieu06::PERIOD_DOSSIERS_SQL),
        Some(g) => {
            let (code, _) = p.group_by.columns();
            params.push(ScalarValue::Utf8(Some(g.to_string())));
            filter = format!("({filter}) AND COALESCE(l.grp, '') = ${}", params.len());
            with_period_dossiers(&format!(
                "WITH c AS (\n{{period_dossiers}}\n), g AS (SELECT {code} AS grp, c.* FROM c)"
            ))
        }
    };
    let relation = if group.is_some() { "g" } else { "c" };
    list(ctx, &with, relation, &filter, params, page).await
}

/// The dossiers counted in a dossier count of the Decision 766 index (one of
/// [`index766::DOSSIER_COUNTS`]) for the parameters, in one unit (`None` = every unit of
/// the grouping, i.e. the whole scope).
pub async fn index766(
    ctx: &SessionContext,
    cal: &Calendar,
    cfg: &Index766Config,
    p: &index766::Params,
    unit: Option<&str>,
    count: &str,
    page: &Page,
) -> Result<List, QueryError> {
    if !index766::DOSSIER_COUNTS.contains(&count) {
        let what = index766::count_label(count).map_or_else(String::new, |l| format!(" ({l})"));
        return Err(QueryError::BadInput(format!(
            "count {count:?}{what} không phải số hồ sơ nên không có danh sách hồ sơ; \
             danh sách có cho: {}",
            index766::DOSSIER_COUNTS.join(", ")
        )));
    }
    let (with, mut params) = index766::dossier_flags(cal, cfg, p);
    // `count` is one of a fixed list of column names, never the user's text
    let mut filter = format!("l.{count} = 1");
    if let Some(u) = unit {
        params.push(ScalarValue::Utf8(Some(u.to_string())));
        filter = format!("{filter} AND COALESCE(l.unit, '') = ${}", params.len());
    }
    list(ctx, &with, "d", &filter, params, page).await
}

/// CSV of a list with Vietnamese headings.
pub fn to_csv(items: &[Item]) -> Result<String, QueryError> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let bad = |e: csv::Error| QueryError::Internal(e.to_string());
    w.write_record(HEADINGS_VI).map_err(bad)?;
    for r in items {
        w.write_record(row_of(r)).map_err(bad)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Headings of a list (CSV and XLSX).
pub const HEADINGS_VI: [&str; 17] = [
    "Mã hồ sơ",
    "Mã thủ tục",
    "Tên thủ tục",
    "Mã lĩnh vực",
    "Tên lĩnh vực",
    "Mã cơ quan",
    "Tên cơ quan",
    "Mã tỉnh",
    "Mã xã",
    "Tên xã",
    "Kênh tiếp nhận",
    "Hệ thống nguồn",
    "Thời điểm tiếp nhận",
    "Thời điểm kết thúc",
    "Hạn xử lý",
    "Phân loại",
    "Mã phân loại",
];

/// The cells of an item, in the order of [`HEADINGS_VI`].
pub fn row_of(r: &Item) -> [String; 17] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    // instants as Vietnamese readers write them: dd/mm/yyyy HH:MM (local time)
    let t = |v: &Option<String>| rfc3339_short(v.as_deref()).unwrap_or_default();
    [
        r.dossier_id.clone(),
        o(&r.procedure_code),
        o(&r.procedure_name),
        o(&r.field_code),
        o(&r.field_name),
        o(&r.agency_code),
        o(&r.agency_name),
        o(&r.province_code),
        o(&r.commune_code),
        o(&r.commune_name),
        o(&r.channel),
        r.sources.clone(),
        t(&r.received_at),
        t(&r.ended_at),
        t(&r.due_at),
        r.class_label.clone(),
        r.class.clone(),
    ]
}
