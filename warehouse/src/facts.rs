//! Dossier facts: the one derivation of docs/domain.md "Time rules" from a dossier's events.
//!
//! A dossier's facts are a pure function of the *set* of its events (order of arrival and
//! duplicates never matter): events are sorted by (at, type, source, event_id) first.
//!
//! Two things are derived per dossier:
//! * [`DossierFacts`]: received / end / due time, end type, supplement rounds and, for an
//!   ended dossier, its class (early, on the day, late) judged at its end time;
//! * [`StateRow`]s: piecewise-constant segments `[valid_from, valid_to)` of what the
//!   dossier looks like *while in progress*. For a period ending at instant `P` (events
//!   with `at <= P` count), the segment containing `P` says whether the dossier was
//!   overdue: `overdue_after IS NOT NULL AND P > overdue_after`. This is what lets the
//!   Biểu 06 SQL judge in-progress dossiers as of any period end.

use std::collections::{BTreeSet, HashMap};

use crate::calendar::{Calendar, DAY_MICROS, MICROS};
use crate::config::{ChannelRule, CompareMode, RulesConfig};
use crate::event::{Event, EventType};

/// What the derivation needs from the procedure catalog.
#[derive(Debug, Clone, Default)]
pub struct CatalogEntry {
    pub max_working_days: Option<f64>,
    pub procedure_name: Option<String>,
    pub field_code: Option<String>,
    pub field_name: Option<String>,
    pub procedure_level: Option<String>,
}

/// Where the due time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueKind {
    Reported,
    Computed,
    None,
}

impl DueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DueKind::Reported => "reported",
            DueKind::Computed => "computed",
            DueKind::None => "none",
        }
    }
}

/// The class of a dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeClass {
    Early,
    OnDay,
    Late,
    InTime,
    Overdue,
}

impl OnTimeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            OnTimeClass::Early => "early",
            OnTimeClass::OnDay => "on_day",
            OnTimeClass::Late => "late",
            OnTimeClass::InTime => "in_time",
            OnTimeClass::Overdue => "overdue",
        }
    }
}

/// The instant from which an in-progress dossier counts as overdue.
/// `Always` is stored as [`ALWAYS_OVERDUE`].
pub const ALWAYS_OVERDUE: i64 = i64::MIN / 2;

/// Derived facts of one dossier (one row of `dossier_facts`).
#[derive(Debug, Clone, Default)]
pub struct DossierFacts {
    pub dossier_id: String,
    pub sources: String,
    /// Latest non-null value of each dimension (see `event::DIM_COLUMNS`).
    pub dims: Vec<Option<String>>,
    /// Any-true of each flag (see `event::FLAG_COLUMNS`), null when never reported.
    pub flags: Vec<Option<bool>>,
    pub channel: String,
    pub non_territorial: Option<bool>,
    pub event_count: i64,
    pub first_event_at: i64,
    pub last_event_at: i64,
    pub received_at: Option<i64>,
    pub rejected: bool,
    /// Counted in reports: received and never rejected.
    pub counted: bool,
    pub ended_at: Option<i64>,
    pub end_type: Option<String>,
    /// Due time as of the evaluation instant (end time, or after the last event).
    pub due_at: Option<i64>,
    pub due_kind: Option<DueKind>,
    pub max_working_days: Option<f64>,
    pub supplement_requests: i64,
    pub open_supplement: bool,
    pub paused_working_seconds: f64,
    pub paused_wall_seconds: f64,
    /// For ended dossiers: the judged instant and early / on_day / late.
    pub judged_at: Option<i64>,
    pub end_class: Option<OnTimeClass>,
    /// For dossiers not ended: overdue when evaluated at any instant after this
    /// (state after the last event); None = never overdue.
    pub overdue_after: Option<i64>,
    /// Data-quality issues, comma separated.
    pub dq_issues: String,
}

/// One in-progress state segment of a counted dossier.
#[derive(Debug, Clone, PartialEq)]
pub struct StateRow {
    pub dossier_id: String,
    pub valid_from: i64,
    pub valid_to: Option<i64>,
    pub overdue_after: Option<i64>,
    pub due_at: Option<i64>,
    pub supplement_requests: i64,
}

/// The supplement / due situation of a dossier using only events with `at <= cutoff`.
#[derive(Debug, Clone, PartialEq)]
struct Situation {
    due: Option<i64>,
    due_kind: DueKind,
    requests: i64,
    /// Time of the oldest still-open request.
    open_since: Option<i64>,
    closed_wall: i64,
    closed_work: i64,
}

struct Ev<'a> {
    at: i64,
    kind: EventType,
    due_at: Option<i64>,
    src: &'a Event,
}

/// Derivation context.
pub struct Deriver<'a> {
    pub calendar: &'a Calendar,
    pub rules: &'a RulesConfig,
    pub catalog: &'a HashMap<String, CatalogEntry>,
}

impl Deriver<'_> {
    fn situation(
        &self,
        evs: &[Ev],
        received: Option<i64>,
        max_days: Option<f64>,
        cutoff: i64,
    ) -> Situation {
        let mut reported: Option<i64> = None;
        let mut requests = 0;
        let mut open: Vec<i64> = Vec::new();
        let mut closed_wall = 0;
        let mut closed_work = 0;
        let mut prev: Option<(i64, EventType)> = None;
        for e in evs.iter().take_while(|e| e.at <= cutoff) {
            if let Some(d) = e.due_at {
                // events are sorted, so the last one seen is the latest by `at`
                reported = Some(d);
            }
            // the same step reported by several systems (same type, same instant) is one
            // step: a request synced by the one-stop system and the portal is one request
            let repeat = prev == Some((e.at, e.kind));
            prev = Some((e.at, e.kind));
            if repeat {
                continue;
            }
            match e.kind {
                EventType::SupplementRequested => {
                    requests += 1;
                    open.push(e.at);
                }
                EventType::SupplementReceived if !open.is_empty() => {
                    let req = open.remove(0);
                    closed_wall += e.at - req;
                    closed_work += self.calendar.working_micros(req, e.at).unwrap_or(0);
                }
                _ => {}
            }
        }
        let (due, due_kind) = if let Some(d) = reported {
            (Some(d), DueKind::Reported)
        } else if let (Some(r), Some(days)) = (received, max_days) {
            let x = (days * self.calendar.day_len_micros() as f64).round() as i64 + closed_work;
            match self.calendar.add_working_micros(r, x) {
                Some(d) => (Some(d), DueKind::Computed),
                None => (None, DueKind::None),
            }
        } else {
            (None, DueKind::None)
        };
        Situation {
            due,
            due_kind,
            requests,
            open_since: open.first().copied(),
            closed_wall,
            closed_work,
        }
    }

    /// The judged instant at evaluation instant `eval` (QĐ 766 §2.1).
    fn judged(&self, s: &Situation, eval: i64) -> i64 {
        if let (1, Some(req)) = (s.requests, s.open_since) {
            return req;
        }
        if s.due_kind == DueKind::Reported && self.rules.subtract_pauses {
            eval - s.closed_wall
        } else {
            eval
        }
    }

    fn is_late(&self, s: &Situation, judged: i64) -> bool {
        if s.requests > 1 {
            return true;
        }
        match s.due {
            None => false,
            Some(due) => match self.rules.compare {
                CompareMode::Timestamp => judged > due,
                CompareMode::Date => {
                    self.calendar.local_day_num(judged) > self.calendar.local_day_num(due)
                }
            },
        }
    }

    /// Class of an ended dossier.
    fn end_class(&self, s: &Situation, judged: i64) -> OnTimeClass {
        if self.is_late(s, judged) {
            return OnTimeClass::Late;
        }
        match s.due {
            Some(due) if self.calendar.local_day_num(judged) < self.calendar.local_day_num(due) => {
                OnTimeClass::Early
            }
            _ => OnTimeClass::OnDay,
        }
    }

    /// For an in-progress dossier in situation `s`: the instant after which evaluating it
    /// makes it overdue (evaluation instant `c` overdue ⇔ `c > overdue_after`).
    fn overdue_after(&self, s: &Situation) -> Option<i64> {
        if s.requests > 1 {
            return Some(ALWAYS_OVERDUE);
        }
        let due = s.due?;
        if let (1, Some(req)) = (s.requests, s.open_since) {
            // judged instant is the request time, whatever the evaluation instant
            return self.is_late(s, req).then_some(ALWAYS_OVERDUE);
        }
        let shift = if s.due_kind == DueKind::Reported && self.rules.subtract_pauses {
            s.closed_wall
        } else {
            0
        };
        Some(match self.rules.compare {
            // c - shift > due
            CompareMode::Timestamp => due + shift,
            // local_date(c - shift) > local_date(due) ⇔ c - shift >= next local midnight
            CompareMode::Date => {
                let next_midnight = (self.calendar.local_day_num(due) + 1) * DAY_MICROS
                    - self.calendar.offset_micros();
                next_midnight + shift - 1
            }
        })
    }

    /// Derive the facts and in-progress segments of one dossier from its events
    /// (any order, duplicates already removed).
    pub fn derive(&self, dossier_id: &str, events: &[&Event]) -> (DossierFacts, Vec<StateRow>) {
        let mut evs: Vec<Ev> = events
            .iter()
            .filter_map(|e| {
                e.kind().map(|kind| Ev {
                    at: e.at,
                    kind,
                    due_at: e.due_at,
                    src: e,
                })
            })
            .filter(|e| !e.kind.is_feedback())
            .collect();
        evs.sort_by(|a, b| {
            (a.at, a.kind, &a.src.source, &a.src.event_id).cmp(&(
                b.at,
                b.kind,
                &b.src.source,
                &b.src.event_id,
            ))
        });
        let mut f = DossierFacts {
            dossier_id: dossier_id.to_string(),
            ..Default::default()
        };
        f.event_count = evs.len() as i64;
        f.first_event_at = evs.first().map(|e| e.at).unwrap_or(0);
        f.last_event_at = evs.last().map(|e| e.at).unwrap_or(0);
        let sources: BTreeSet<&str> = evs.iter().map(|e| e.src.source.as_str()).collect();
        f.sources = sources.into_iter().collect::<Vec<_>>().join(",");

        // dimensions: latest non-null; flags: any true
        let n_dims = crate::event::DIM_COLUMNS.len();
        f.dims = vec![None; n_dims];
        f.flags = vec![None; crate::event::FLAG_COLUMNS.len()];
        for e in &evs {
            for (slot, v) in f.dims.iter_mut().zip(e.src.dims_ref()) {
                if v.is_some() {
                    slot.clone_from(v);
                }
            }
            for (slot, v) in f.flags.iter_mut().zip(e.src.flags_ref()) {
                if let Some(b) = v {
                    *slot = Some(slot.unwrap_or(false) || b);
                }
            }
        }
        let procedure = f.dims[0].clone();
        let entry = procedure.as_ref().and_then(|p| self.catalog.get(p));
        // fall back to the catalog for names the events did not carry
        if let Some(c) = entry {
            for (idx, v) in [
                (1, &c.procedure_name),
                (2, &c.procedure_level),
                (3, &c.field_code),
                (4, &c.field_name),
            ] {
                if f.dims[idx].is_none() {
                    f.dims[idx].clone_from(v);
                }
            }
        }
        let channel = match self.rules.channel {
            ChannelRule::Latest => f.dims[9].clone(),
            ChannelRule::Received => evs
                .iter()
                .find(|e| e.kind == EventType::Received)
                .and_then(|e| e.src.channel.clone()),
        };
        f.channel = channel.unwrap_or_else(|| "in_person".to_string());
        f.non_territorial = match (&f.dims[8], &f.dims[11], &f.dims[7], &f.dims[10]) {
            (Some(c), Some(ac), _, _) => Some(c != ac),
            (_, _, Some(p), Some(ap)) => Some(p != ap),
            _ => None,
        };
        f.max_working_days = entry.and_then(|c| c.max_working_days);

        f.received_at = evs
            .iter()
            .find(|e| e.kind == EventType::Received)
            .map(|e| e.at);
        f.rejected = evs.iter().any(|e| e.kind == EventType::Rejected);
        f.counted = f.received_at.is_some() && !f.rejected;
        let end = evs.iter().find(|e| e.kind.is_end());
        f.ended_at = end.map(|e| e.at);
        f.end_type = end.map(|e| e.kind.as_str().to_string());

        let mut dq = Vec::new();
        if f.received_at.is_none() {
            dq.push("no_received");
        }
        if f.rejected {
            dq.push("rejected");
        }
        if procedure.is_none() {
            dq.push("no_procedure");
        } else if entry.is_none() {
            dq.push("unknown_procedure");
        }
        if let (Some(r), Some(e)) = (f.received_at, f.ended_at) {
            if e < r {
                dq.push("ended_before_received");
            }
        }

        let received = f.received_at;
        let max_days = f.max_working_days;
        // the situation at the evaluation instant (end, or after the last event)
        let eval = f.ended_at.unwrap_or(f.last_event_at);
        let s = self.situation(&evs, received, max_days, eval);
        f.due_at = s.due;
        f.due_kind = Some(s.due_kind);
        f.supplement_requests = s.requests;
        f.open_supplement = s.open_since.is_some();
        f.paused_wall_seconds = s.closed_wall as f64 / MICROS as f64;
        f.paused_working_seconds = s.closed_work as f64 / MICROS as f64;
        if s.due_kind == DueKind::None && f.counted {
            dq.push("no_deadline");
        }
        if let Some(end) = f.ended_at {
            let j = self.judged(&s, end);
            f.judged_at = Some(j);
            f.end_class = Some(self.end_class(&s, j));
        } else {
            f.overdue_after = self.overdue_after(&s);
        }
        f.dq_issues = dq.join(",");

        // in-progress segments, one per distinct event instant, merged when unchanged
        let mut states: Vec<StateRow> = Vec::new();
        if f.counted {
            let mut instants: Vec<i64> = evs.iter().map(|e| e.at).collect();
            instants.dedup();
            for (i, &t) in instants.iter().enumerate() {
                let s = self.situation(&evs, received, max_days, t);
                let row = StateRow {
                    dossier_id: f.dossier_id.clone(),
                    valid_from: t,
                    valid_to: instants.get(i + 1).copied(),
                    overdue_after: self.overdue_after(&s),
                    due_at: s.due,
                    supplement_requests: s.requests,
                };
                match states.last_mut() {
                    Some(prev)
                        if prev.overdue_after == row.overdue_after
                            && prev.due_at == row.due_at
                            && prev.supplement_requests == row.supplement_requests =>
                    {
                        prev.valid_to = row.valid_to;
                    }
                    _ => states.push(row),
                }
            }
        }
        (f, states)
    }

    /// Derive all dossiers from a set of events (feedback events and events without
    /// `dossier_id` are skipped).
    pub fn derive_all(&self, events: &[Event]) -> (Vec<DossierFacts>, Vec<StateRow>) {
        let mut by: HashMap<&str, Vec<&Event>> = HashMap::new();
        for e in events {
            if let Some(d) = e.dossier_id.as_deref() {
                if e.kind().is_some_and(|k| !k.is_feedback()) {
                    by.entry(d).or_default().push(e);
                }
            }
        }
        let mut ids: Vec<&str> = by.keys().copied().collect();
        ids.sort_unstable();
        let mut facts = Vec::with_capacity(ids.len());
        let mut states = Vec::new();
        for id in ids {
            let (f, s) = self.derive(id, &by[id]);
            facts.push(f);
            states.extend(s);
        }
        (facts, states)
    }

    /// The class of a dossier evaluated for a period ending at instant `p` (events with
    /// `at <= p` count). Reference implementation used by tests to check the SQL path.
    pub fn class_at(
        &self,
        facts: &DossierFacts,
        states: &[StateRow],
        p: i64,
    ) -> Option<OnTimeClass> {
        if !facts.counted || facts.received_at? >= p {
            return None;
        }
        match facts.ended_at {
            Some(e) if e < p => facts.end_class,
            _ => {
                let seg = states
                    .iter()
                    .find(|s| s.valid_from <= p && s.valid_to.is_none_or(|t| p < t))?;
                Some(match seg.overdue_after {
                    Some(o) if p > o => OnTimeClass::Overdue,
                    _ => OnTimeClass::InTime,
                })
            }
        }
    }
}
