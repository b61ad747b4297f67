//! One dossier explained: every event of every source, the facts derived from them and
//! how each was reached (received instant, due time reported or computed with the days
//! off skipped, supplement rounds), the class at the end or at a period end and why, in
//! words, and what the sources disagree on.
//!
//! The facts are read from `dossier_facts` and `dossier_states` (what the reports count);
//! the explanation re-walks the events with the rules of `warehouse::facts` to show the
//! steps, so it can never say something the reports do not count.

use chrono::{Datelike, NaiveDate, Weekday};
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use giamsat_warehouse::calendar::{DayKind, DAY_MICROS, MICROS};
use giamsat_warehouse::config::RulesConfig;
use giamsat_warehouse::event::EventType;
use giamsat_warehouse::Calendar;

use crate::common::{local_rfc3339, local_short, rfc3339_short, Cols};
use crate::drill::class_label;
use crate::quality::Issue;
use crate::recon;
use crate::QueryError;

/// What an explanation needs besides a session.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub calendar: &'a Calendar,
    pub rules: &'a RulesConfig,
    /// `[sync]` of the warehouse: the portal's source and the end-time tolerance.
    pub portal_source: &'a str,
    pub tolerance_seconds: i64,
    /// The present instant (UTC microseconds): the class of a dossier in progress is
    /// judged now when no period end is asked.
    pub now: i64,
}

/// The dossier at a glance. Instants are RFC 3339 in local time (+07:00).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Summary {
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
    pub sources: String,
    pub received_at: Option<String>,
    pub ended_at: Option<String>,
    pub due_at: Option<String>,
    /// The class at the evaluation instant (see [`Class`]); null when not counted.
    pub class: Option<String>,
    pub class_label: String,
    /// `resolved`, `returned`, `withdrawn`, `stopped` or null.
    pub end_type: Option<String>,
    pub end_type_label: Option<String>,
    /// Counted in the reports: received and never rejected.
    pub counted: bool,
    /// `reported`, `computed` or `none`.
    pub due_kind: Option<String>,
}

/// One event as stored, from any source.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventLine {
    pub source: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub type_label: String,
    pub at: Option<String>,
    pub due_at: Option<String>,
    /// When giamsat stored it.
    pub ingested_at: Option<String>,
    /// The source's other fields of the record, as sent.
    #[schema(value_type = Object)]
    pub attrs: serde_json::Value,
}

/// An event referred to by an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventRef {
    pub at: Option<String>,
    pub source: String,
    pub event_id: String,
}

/// A dated day of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub name: String,
}

/// How the due time was reached.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Due {
    /// `reported`, `computed` or `none`.
    pub kind: String,
    pub kind_label: String,
    pub at: Option<String>,
    /// The procedure's time limit in working days (catalog).
    pub max_working_days: Option<f64>,
    /// The event whose due time is used (reported due).
    pub reported_by: Option<EventRef>,
    pub working_hours_per_day: f64,
    /// Days off after the day of receipt up to the due day (computed due).
    pub days_off: Vec<Day>,
    /// Saturdays and Sundays worked in that range (computed due).
    pub working_weekend_days: Vec<Day>,
    /// Working time of the closed supplement rounds, added to a computed due.
    pub supplement_working_seconds: f64,
    pub text: String,
}

impl Due {
    /// The length of a working day in microseconds.
    fn working_hours_per_day_micros(&self) -> i64 {
        (self.working_hours_per_day * 3_600.0 * MICROS as f64).round() as i64
    }
}

/// One supplement round: a request and the supplement that closed it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Round {
    pub round: usize,
    pub requested_at: Option<String>,
    pub received_at: Option<String>,
    pub working_seconds: Option<f64>,
    pub wall_seconds: Option<f64>,
}

/// The class of the dossier at the evaluation instant, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Class {
    /// `early`, `on_day`, `late`, `in_time`, `overdue`, or null when not counted then.
    pub code: Option<String>,
    pub label: String,
    /// Why, in words: "quá hạn 6 giờ 30 phút làm việc", "yêu cầu bổ sung 2 lần", …
    pub reason: String,
    /// The instant the class is judged for: the end of the asked day (`as_of`), else
    /// the dossier's end, else now.
    pub evaluated_at: Option<String>,
}

/// A disagreement between sources about this dossier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Discrepancy {
    pub kind: String,
    pub kind_label: String,
    pub source_a: String,
    pub source_b: Option<String>,
    pub detail: String,
}

/// A data-quality flag of the dossier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Flag {
    pub code: String,
    pub label: String,
}

/// One dossier explained (`GET /api/v1/dossiers/{id}`, `giamsat explain`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    pub dossier_id: String,
    /// The asked day (`YYYY-MM-DD`): the class is judged at its end.
    pub as_of: Option<String>,
    pub summary: Summary,
    /// Every event of every source, in (at, type, source, event_id) order.
    pub events: Vec<EventLine>,
    pub received: Option<EventRef>,
    pub due: Due,
    pub supplements: Vec<Round>,
    /// The instant compared with the due time (ended dossiers, or at the evaluation).
    pub judged_at: Option<String>,
    pub class: Class,
    pub discrepancies: Vec<Discrepancy>,
    pub quality: Vec<Flag>,
}

/// The message of a dossier that does not exist or is outside the caller's territory
/// (the same either way).
pub fn not_found(id: &str) -> QueryError {
    QueryError::NotFound(format!("không tìm thấy hồ sơ {id:?}"))
}

/// A working duration in Vietnamese: whole working days (of the calendar's length),
/// hours and minutes (floored), zero parts left out: "1 ngày 2 giờ", "6 giờ 30 phút".
pub fn working_vi(micros: i64, day_len: i64) -> String {
    let minutes = micros.max(0) / (60 * MICROS);
    let day_minutes = (day_len / (60 * MICROS)).max(1);
    let (d, rest) = (minutes / day_minutes, minutes % day_minutes);
    let (h, m) = (rest / 60, rest % 60);
    let parts: Vec<String> = [(d, "ngày"), (h, "giờ"), (m, "phút")]
        .into_iter()
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v} {u}"))
        .collect();
    if parts.is_empty() {
        "0 phút".to_string()
    } else {
        parts.join(" ")
    }
}

/// The stored facts of the dossier used here.
struct Facts {
    summary: Summary,
    counted: bool,
    rejected: bool,
    received_at: Option<i64>,
    ended_at: Option<i64>,
    last_event_at: i64,
    due_at: Option<i64>,
    due_kind: String,
    max_working_days: Option<f64>,
    supplement_requests: i64,
    paused_working_seconds: f64,
    judged_at: Option<i64>,
    end_class: Option<String>,
    dq_issues: String,
    first_event_at: i64,
}

/// One state segment of `dossier_states`.
struct Segment {
    valid_from: i64,
    valid_to: Option<i64>,
    overdue_after: Option<i64>,
    due_at: Option<i64>,
    supplement_requests: i64,
}

impl Segment {
    /// Whether the segment is the state at instant `p` (`[valid_from, valid_to)`).
    fn holds(&self, p: i64) -> bool {
        self.valid_from <= p && self.valid_to.is_none_or(|t| p < t)
    }
}

/// A stored event, parsed.
struct Ev {
    kind: Option<EventType>,
    at: i64,
    due_at: Option<i64>,
    line: EventLine,
}

fn id_param(id: &str) -> Vec<ScalarValue> {
    vec![ScalarValue::Utf8(Some(id.to_string()))]
}

async fn facts(ctx: &SessionContext, id: &str) -> Result<Option<Facts>, QueryError> {
    let batches = ctx
        .sql(
            "SELECT f.*, t.commune_name FROM dossier_facts f \
             LEFT JOIN territories t ON t.commune_code = f.commune_code \
             WHERE f.dossier_id = $1",
        )
        .await?
        .with_param_values(id_param(id))?
        .collect()
        .await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let c = Cols(b);
    let s = |n: &str| c.strings(n).map(|x| x.get(0));
    let t = |n: &str| c.instants(n).map(|x| x.get(0));
    let (received_at, ended_at, due_at) = (t("received_at")?, t("ended_at")?, t("due_at")?);
    let end_type = s("end_type")?;
    let due_kind = s("due_kind")?.unwrap_or_else(|| "none".into());
    let summary = Summary {
        dossier_id: id.to_string(),
        procedure_code: s("procedure_code")?,
        procedure_name: s("procedure_name")?,
        field_code: s("field_code")?,
        field_name: s("field_name")?,
        agency_code: s("agency_code")?,
        agency_name: s("agency_name")?,
        province_code: s("province_code")?,
        commune_code: s("commune_code")?,
        commune_name: s("commune_name")?,
        channel: s("channel")?,
        sources: s("sources")?.unwrap_or_default(),
        received_at: received_at.and_then(local_rfc3339),
        ended_at: ended_at.and_then(local_rfc3339),
        due_at: due_at.and_then(local_rfc3339),
        class: None,
        class_label: String::new(),
        end_type_label: end_type
            .as_deref()
            .map(|e| recon::end_type_label(e).to_string()),
        end_type,
        counted: c.bools("counted")?.get(0),
        due_kind: Some(due_kind.clone()),
    };
    Ok(Some(Facts {
        counted: summary.counted,
        rejected: c.bools("rejected")?.get(0),
        summary,
        received_at,
        ended_at,
        last_event_at: t("last_event_at")?.unwrap_or(0),
        due_at,
        due_kind,
        max_working_days: c.floats("max_working_days")?.get(0),
        supplement_requests: c.ints("supplement_requests")?.or_zero(0),
        paused_working_seconds: c.floats("paused_working_seconds")?.get(0).unwrap_or(0.0),
        judged_at: t("judged_at")?,
        end_class: s("end_class")?,
        dq_issues: s("dq_issues")?.unwrap_or_default(),
        first_event_at: t("first_event_at")?.unwrap_or(0),
    }))
}

async fn segments(ctx: &SessionContext, id: &str) -> Result<Vec<Segment>, QueryError> {
    let batches = ctx
        .sql(
            "SELECT valid_from, valid_to, overdue_after, due_at, supplement_requests \
             FROM dossier_states WHERE dossier_id = $1 ORDER BY valid_from",
        )
        .await?
        .with_param_values(id_param(id))?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let c = Cols(b);
        let (from, to, after, due, req) = (
            c.instants("valid_from")?,
            c.instants("valid_to")?,
            c.instants("overdue_after")?,
            c.instants("due_at")?,
            c.ints("supplement_requests")?,
        );
        for i in 0..c.rows() {
            out.push(Segment {
                valid_from: from.or_zero(i),
                valid_to: to.get(i),
                overdue_after: after.get(i),
                due_at: due.get(i),
                supplement_requests: req.or_zero(i),
            });
        }
    }
    Ok(out)
}

/// The local months (`YYYY-MM`, the `month` partitions of `events`) from `a`'s to `b`'s.
fn months(cal: &Calendar, a: i64, b: i64) -> Vec<String> {
    let (first, last) = (cal.local_date(a), cal.local_date(b.max(a)));
    let mut out = Vec::new();
    let mut d = first.with_day(1);
    while let Some(m) = d.filter(|m| *m <= last && out.len() < 1_200) {
        out.push(m.format("%Y-%m").to_string());
        d = m.checked_add_months(chrono::Months::new(1));
    }
    out
}

/// The dossier's events, read from the months its facts span (the partitions of
/// `events` that can hold them), in the derivation's order.
async fn events(
    ctx: &SessionContext,
    cal: &Calendar,
    id: &str,
    span: (i64, i64),
) -> Result<Vec<Ev>, QueryError> {
    let months = months(cal, span.0, span.1);
    let list = (2..months.len() + 2)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut params = id_param(id);
    params.extend(months.into_iter().map(|m| ScalarValue::Utf8(Some(m))));
    let batches = ctx
        .sql(&format!(
            "SELECT source, event_id, type, at, due_at, ingested_at, attrs \
             FROM events WHERE dossier_id = $1 AND month IN ({list})"
        ))
        .await?
        .with_param_values(params)?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let c = Cols(b);
        let (src, eid, ty, at, due, ing, attrs) = (
            c.strings("source")?,
            c.strings("event_id")?,
            c.strings("type")?,
            c.instants("at")?,
            c.instants("due_at")?,
            c.instants("ingested_at")?,
            c.strings("attrs")?,
        );
        for i in 0..c.rows() {
            let t = ty.text(i);
            let kind = EventType::parse(&t);
            let attrs = attrs
                .get(i)
                .map(|a| serde_json::from_str(&a).unwrap_or(serde_json::Value::String(a)))
                .unwrap_or(serde_json::Value::Null);
            out.push(Ev {
                kind,
                at: at.or_zero(i),
                due_at: due.get(i),
                line: EventLine {
                    source: src.text(i),
                    event_id: eid.text(i),
                    type_label: kind.map_or_else(|| t.clone(), |k| k.label().to_string()),
                    event_type: t,
                    at: at.get(i).and_then(local_rfc3339),
                    due_at: due.get(i).and_then(local_rfc3339),
                    ingested_at: ing.get(i).and_then(local_rfc3339),
                    attrs,
                },
            });
        }
    }
    // the derivation's order (warehouse::facts): at, type, source, event id
    out.sort_by(|a, b| {
        (a.at, a.kind, &a.line.source, &a.line.event_id).cmp(&(
            b.at,
            b.kind,
            &b.line.source,
            &b.line.event_id,
        ))
    });
    Ok(out)
}

/// A supplement round with raw instants.
struct RawRound {
    requested: i64,
    received: Option<i64>,
}

/// The supplement rounds from the dossier events with `at <= cutoff`, paired as the
/// derivation pairs them: one step per (instant, type) whatever the number of systems
/// reporting it; a supplement closes the oldest open request.
fn rounds(evs: &[Ev], cutoff: i64) -> Vec<RawRound> {
    let mut out: Vec<RawRound> = Vec::new();
    let mut prev = None;
    for e in evs.iter().filter(|e| e.at <= cutoff) {
        let Some(kind) = e.kind.filter(|k| !k.is_feedback()) else {
            continue;
        };
        if prev == Some((e.at, kind)) {
            continue;
        }
        prev = Some((e.at, kind));
        match kind {
            EventType::SupplementRequested => out.push(RawRound {
                requested: e.at,
                received: None,
            }),
            EventType::SupplementReceived => {
                if let Some(r) = out.iter_mut().find(|r| r.received.is_none()) {
                    r.received = Some(e.at);
                }
            }
            _ => {}
        }
    }
    out
}

fn weekday_name(d: NaiveDate) -> &'static str {
    match d.weekday() {
        Weekday::Sat => "Thứ bảy",
        Weekday::Sun => "Chủ nhật",
        _ => "Ngày nghỉ",
    }
}

/// The days off and the worked weekend days after `from`'s day up to `to`'s day.
fn days_between(cal: &Calendar, from: i64, to: i64) -> (Vec<Day>, Vec<Day>) {
    let (mut off, mut worked) = (Vec::new(), Vec::new());
    let (first, last) = (cal.local_date(from), cal.local_date(to));
    let mut d = first.succ_opt();
    let mut guard = 0;
    while let Some(day) = d.filter(|d| *d <= last && guard < 3_660) {
        let listed = cal.listed_days().get(&day);
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        match cal.is_working_day(day) {
            Some(false) => off.push(Day {
                date: day.to_string(),
                name: listed
                    .filter(|l| l.kind == DayKind::Holiday && !l.name.is_empty())
                    .map_or_else(|| weekday_name(day).to_string(), |l| l.name.clone()),
            }),
            Some(true) if weekend => worked.push(Day {
                date: day.to_string(),
                name: listed.filter(|l| !l.name.is_empty()).map_or_else(
                    || format!("{} làm bù", weekday_name(day)),
                    |l| l.name.clone(),
                ),
            }),
            _ => {}
        }
        d = day.succ_opt();
        guard += 1;
    }
    (off, worked)
}

fn due_kind_label(kind: &str) -> &'static str {
    match kind {
        "reported" => "Do hệ thống nguồn báo",
        "computed" => "Tính theo thời hạn của thủ tục",
        _ => "Không có thời hạn",
    }
}

fn vi_number(v: f64) -> String {
    let s = format!("{v}");
    s.replace('.', ",")
}

/// Explain one dossier on the caller's (scoped) session: `None`-like [`not_found`] when
/// the session does not hold it.
pub async fn run(
    ctx: &SessionContext,
    cx: &Context<'_>,
    id: &str,
    as_of: Option<NaiveDate>,
) -> Result<Explanation, QueryError> {
    if id.is_empty() || id.len() > 256 {
        return Err(not_found(id));
    }
    let Some(f) = facts(ctx, id).await? else {
        return Err(not_found(id));
    };
    let cal = cx.calendar;
    let day_len = cal.day_len_micros();
    let evs = events(ctx, cal, id, (f.first_event_at, f.last_event_at)).await?;
    let segs = segments(ctx, id).await?;

    let received = evs
        .iter()
        .find(|e| e.kind == Some(EventType::Received))
        .map(|e| EventRef {
            at: e.line.at.clone(),
            source: e.line.source.clone(),
            event_id: e.line.event_id.clone(),
        });

    // the due time at the evaluation instant: as the facts hold it (at the end, or after
    // the last event), or, for a dossier still in progress at the end of the asked day,
    // as its state segment then holds it, from the events up to that instant
    let period_end = as_of.map(|d| cal.local_midnight(d) + DAY_MICROS);
    let in_progress_at = period_end.filter(|p| f.ended_at.is_none_or(|e| e >= *p));
    let eval = in_progress_at.unwrap_or(f.ended_at.unwrap_or(f.last_event_at));
    let reported_event = evs
        .iter()
        .rfind(|e| e.at <= eval && e.due_at.is_some() && e.kind.is_some_and(|k| !k.is_feedback()));
    let reported_by = reported_event.map(|e| EventRef {
        at: e.line.at.clone(),
        source: e.line.source.clone(),
        event_id: e.line.event_id.clone(),
    });
    let (due_kind, due_at, paused_working_seconds) = match in_progress_at {
        None => (f.due_kind.clone(), f.due_at, f.paused_working_seconds),
        Some(p) => {
            let seg_due = segs.iter().find(|s| s.holds(p)).and_then(|s| s.due_at);
            let closed: i64 = rounds(&evs, p)
                .iter()
                .filter_map(|r| {
                    r.received
                        .map(|x| cal.working_micros(r.requested, x).unwrap_or(0))
                })
                .sum();
            let kind = match (reported_event, seg_due) {
                (_, None) => "none",
                (Some(_), Some(_)) => "reported",
                (None, Some(_)) => "computed",
            };
            (kind.to_string(), seg_due, closed as f64 / MICROS as f64)
        }
    };
    let f = Facts {
        due_kind,
        due_at,
        paused_working_seconds,
        ..f
    };
    let (days_off, working_weekend_days) = match (f.due_kind.as_str(), f.received_at, f.due_at) {
        ("computed", Some(r), Some(d)) => days_between(cal, r, d),
        _ => (Vec::new(), Vec::new()),
    };
    let due_text = match (f.due_kind.as_str(), f.due_at) {
        ("reported", Some(d)) => format!(
            "Hạn xử lý do hệ thống {} báo: {}.",
            reported_by.as_ref().map_or("nguồn", |r| r.source.as_str()),
            local_short(d)
        ),
        ("computed", Some(d)) => {
            let mut t = format!(
                "Hạn xử lý = thời điểm tiếp nhận {} cộng {} ngày làm việc ({} giờ/ngày) của thủ tục",
                f.received_at.map(local_short).unwrap_or_default(),
                f.max_working_days.map(vi_number).unwrap_or_default(),
                vi_number(day_len as f64 / 3_600.0 / MICROS as f64),
            );
            if !days_off.is_empty() {
                t.push_str(&format!(", bỏ qua {} ngày nghỉ", days_off.len()));
            }
            if !working_weekend_days.is_empty() {
                t.push_str(&format!(
                    ", tính {} ngày cuối tuần làm bù",
                    working_weekend_days.len()
                ));
            }
            if f.paused_working_seconds > 0.0 {
                t.push_str(&format!(
                    ", cộng {} làm việc của các lần bổ sung đã xong",
                    working_vi((f.paused_working_seconds * MICROS as f64) as i64, day_len)
                ));
            }
            t.push_str(&format!(": {}.", local_short(d)));
            t
        }
        _ => "Không có thời hạn giải quyết: thủ tục không có thời hạn trong danh mục và hệ \
              thống nguồn không báo hạn xử lý."
            .to_string(),
    };
    let due = Due {
        kind: f.due_kind.clone(),
        kind_label: due_kind_label(&f.due_kind).to_string(),
        at: f.due_at.and_then(local_rfc3339),
        max_working_days: f.max_working_days,
        reported_by: (f.due_kind == "reported").then_some(reported_by).flatten(),
        working_hours_per_day: day_len as f64 / 3_600.0 / MICROS as f64,
        days_off,
        working_weekend_days,
        supplement_working_seconds: f.paused_working_seconds,
        text: due_text,
    };

    let all_rounds = rounds(&evs, f.ended_at.unwrap_or(i64::MAX));
    let supplements = all_rounds
        .iter()
        .enumerate()
        .map(|(i, r)| Round {
            round: i + 1,
            requested_at: local_rfc3339(r.requested),
            received_at: r.received.and_then(local_rfc3339),
            working_seconds: r
                .received
                .map(|x| cal.working_micros(r.requested, x).unwrap_or(0) as f64 / MICROS as f64),
            wall_seconds: r.received.map(|x| (x - r.requested) as f64 / MICROS as f64),
        })
        .collect();

    let (class, judged) = classify(cx, &f, &segs, &evs, period_end);
    let mut summary = f.summary.clone();
    summary.due_at = f.due_at.and_then(local_rfc3339);
    summary.due_kind = Some(f.due_kind.clone());
    summary.class.clone_from(&class.code);
    summary.class_label.clone_from(&class.label);

    let mut discrepancies = Vec::new();
    let found = recon::run(
        ctx,
        &recon::Params {
            portal_source: cx.portal_source.to_string(),
            tolerance_seconds: cx.tolerance_seconds,
            dossier: Some(id.to_string()),
            limit: 1_000,
            kept: Some((cx.portal_source.to_string(), cx.tolerance_seconds)),
            ..recon::Params::default()
        },
    )
    .await?;
    for it in found.items {
        discrepancies.push(Discrepancy {
            kind: it.kind.as_str().to_string(),
            kind_label: it.kind.label().to_string(),
            source_a: it.source_a,
            source_b: it.source_b,
            detail: it.detail,
        });
    }
    let quality = f
        .dq_issues
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| Flag {
            code: c.to_string(),
            label: Issue::parse(c).map_or_else(|| c.to_string(), |i| i.label().to_string()),
        })
        .collect();

    Ok(Explanation {
        dossier_id: id.to_string(),
        as_of: as_of.map(|d| d.to_string()),
        summary,
        events: evs.into_iter().map(|e| e.line).collect(),
        received,
        due,
        supplements,
        judged_at: judged.and_then(local_rfc3339),
        class,
        discrepancies,
        quality,
    })
}

/// The class at the end of the period ending at `period_end` (or, without one, at the
/// dossier's end, else now), with the judged instant.
fn classify(
    cx: &Context<'_>,
    f: &Facts,
    segs: &[Segment],
    evs: &[Ev],
    period_end: Option<i64>,
) -> (Class, Option<i64>) {
    let cal = cx.calendar;
    let day_len = cal.day_len_micros();
    let late_by = |due: i64, judged: i64| {
        format!(
            "quá hạn {} làm việc",
            working_vi(cal.working_micros(due, judged).unwrap_or(0), day_len)
        )
    };
    let class = |code: Option<&str>, reason: String, at: Option<i64>| Class {
        code: code.map(str::to_string),
        label: code.map_or("Không tính", class_label).to_string(),
        reason,
        evaluated_at: at.and_then(local_rfc3339),
    };
    let eval_at = period_end.or(f.ended_at).unwrap_or(cx.now);
    if !f.counted {
        let why = if f.rejected {
            "không tính: hồ sơ không được tiếp nhận (bị từ chối)"
        } else {
            "không tính: chưa có sự kiện tiếp nhận"
        };
        return (class(None, why.into(), Some(eval_at)), None);
    }
    let received = f.received_at.unwrap_or(i64::MAX);
    if received >= eval_at {
        return (
            class(
                None,
                "không tính: chưa tiếp nhận tại thời điểm này".into(),
                Some(eval_at),
            ),
            None,
        );
    }
    // ended before the evaluation instant (or no period asked): the class at the end
    if let Some(end) = f.ended_at.filter(|e| period_end.is_none_or(|p| *e < p)) {
        let code = f.end_class.clone().unwrap_or_else(|| "on_day".into());
        let judged = f.judged_at.unwrap_or(end);
        let reason = match (code.as_str(), f.due_at) {
            ("late", _) if f.supplement_requests > 1 => {
                format!("yêu cầu bổ sung {} lần", f.supplement_requests)
            }
            ("late", Some(due)) => late_by(due, judged),
            ("early", Some(due)) => format!(
                "trước hạn {} làm việc",
                working_vi(cal.working_micros(judged, due).unwrap_or(0), day_len)
            ),
            (_, None) => "không có thời hạn giải quyết".into(),
            _ => "hoàn thành trong ngày đến hạn".into(),
        };
        return (class(Some(&code), reason, Some(end)), Some(judged));
    }
    // in progress at the evaluation instant: the state segment containing it
    let p = eval_at;
    let seg = segs.iter().find(|s| s.holds(p));
    let Some(seg) = seg else {
        return (
            class(
                None,
                "không có trạng thái tại thời điểm này".into(),
                Some(p),
            ),
            None,
        );
    };
    let overdue = seg.overdue_after.is_some_and(|o| p > o);
    // the judged instant as the derivation takes it: the request time while the only
    // request is open, else the evaluation instant less the closed rounds' wall time
    // when the due time is reported and pauses are subtracted
    let rs = rounds(evs, p);
    let judged = match rs.as_slice() {
        [only] if only.received.is_none() => only.requested,
        _ if f.due_kind == "reported" && cx.rules.subtract_pauses => {
            p - rs
                .iter()
                .filter_map(|r| r.received.map(|x| x - r.requested))
                .sum::<i64>()
        }
        _ => p,
    };
    let reason = if overdue {
        if seg.supplement_requests > 1 {
            format!("yêu cầu bổ sung {} lần", seg.supplement_requests)
        } else {
            match seg.due_at {
                Some(due) => late_by(due, judged),
                None => "quá hạn".into(),
            }
        }
    } else {
        match seg.due_at {
            Some(due) => format!(
                "còn {} làm việc đến hạn",
                working_vi(cal.working_micros(judged, due).unwrap_or(0), day_len)
            ),
            None => "không có thời hạn giải quyết".into(),
        }
    };
    let code = if overdue { "overdue" } else { "in_time" };
    (class(Some(code), reason, Some(p)), Some(judged))
}

/// An instant of an explanation (RFC 3339) as dd/mm/yyyy HH:MM.
fn short(t: &Option<String>) -> String {
    rfc3339_short(t.as_deref()).unwrap_or_else(|| "—".to_string())
}

/// The explanation as text for a terminal (`giamsat explain`), in Vietnamese.
pub fn to_text(e: &Explanation) -> String {
    use std::fmt::Write as _;
    let s = &e.summary;
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let mut t = String::new();
    let _ = writeln!(t, "Hồ sơ {}", e.dossier_id);
    let _ = writeln!(
        t,
        "  Thủ tục: {} {}",
        o(&s.procedure_code),
        o(&s.procedure_name)
    );
    let _ = writeln!(t, "  Cơ quan: {} {}", o(&s.agency_code), o(&s.agency_name));
    let _ = writeln!(
        t,
        "  Địa bàn: tỉnh {}, xã {} {}",
        o(&s.province_code),
        o(&s.commune_code),
        o(&s.commune_name)
    );
    let _ = writeln!(t, "  Hệ thống nguồn: {}", s.sources);
    let _ = writeln!(t, "  Tiếp nhận: {}", short(&s.received_at));
    let _ = writeln!(
        t,
        "  Kết thúc: {} {}",
        short(&s.ended_at),
        s.end_type_label.clone().unwrap_or_default()
    );
    let _ = writeln!(t, "Hạn xử lý ({}): {}", e.due.kind_label, short(&e.due.at));
    let _ = writeln!(t, "  {}", e.due.text);
    let date = |d: &str| {
        NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_or_else(|_| d.to_string(), |d| d.format("%d/%m/%Y").to_string())
    };
    for d in &e.due.days_off {
        let _ = writeln!(t, "  nghỉ {} {}", date(&d.date), d.name);
    }
    for d in &e.due.working_weekend_days {
        let _ = writeln!(t, "  làm việc {} {}", date(&d.date), d.name);
    }
    for r in &e.supplements {
        let _ = writeln!(
            t,
            "Bổ sung lần {}: yêu cầu {}, nhận {}{}",
            r.round,
            short(&r.requested_at),
            short(&r.received_at),
            r.working_seconds.map_or_else(String::new, |w| format!(
                " ({} làm việc)",
                working_vi(
                    (w * MICROS as f64) as i64,
                    e.due.working_hours_per_day_micros()
                )
            ))
        );
    }
    let _ = writeln!(
        t,
        "Phân loại: {} — {} (tính tại {}; thời điểm xét {})",
        e.class.label,
        e.class.reason,
        short(&e.class.evaluated_at),
        short(&e.judged_at)
    );
    let _ = writeln!(t, "Sự kiện:");
    for ev in &e.events {
        let _ = writeln!(
            t,
            "  {}  {:<10} {:<28} {}{}",
            short(&ev.at),
            ev.source,
            ev.type_label,
            ev.event_id,
            ev.due_at.as_ref().map_or_else(String::new, |d| format!(
                "  hạn {}",
                short(&Some(d.clone()))
            ))
        );
    }
    for d in &e.discrepancies {
        let _ = writeln!(t, "Sai lệch: {} — {}", d.kind_label, d.detail);
    }
    for q in &e.quality {
        let _ = writeln!(t, "Chất lượng dữ liệu: {}", q.label);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::working_vi;

    #[test]
    fn working_durations_in_words() {
        let h = 3_600 * 1_000_000_i64;
        let day = 8 * h;
        assert_eq!(
            working_vi(6 * h + 30 * 60 * 1_000_000, day),
            "6 giờ 30 phút"
        );
        assert_eq!(working_vi(day + 2 * h, day), "1 ngày 2 giờ");
        assert_eq!(working_vi(59 * 1_000_000, day), "0 phút");
        assert_eq!(working_vi(3 * day, day), "3 ngày");
    }
}
