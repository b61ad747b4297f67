//! Working-time calendar (docs/domain.md, "Working time").
//!
//! A working day is Mon–Fri, minus the `holiday` rows of `holidays_vn.csv`, plus the
//! `makeup_workday` rows, then the configuration overrides. Office hours are a list of
//! local intervals (default 07:30–11:30 and 13:30–17:00). All instants are i64
//! microseconds since the Unix epoch (UTC); days are local dates in Asia/Ho_Chi_Minh.
//!
//! The calendar keeps a prefix sum of working microseconds per day, so
//! `working_micros(a, b)` and its inverse `add_working_micros(a, x)` are O(1) and
//! O(log days). This module is the only place that knows what working time is.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveTime, Offset, TimeZone, Weekday};
use chrono_tz::Asia::Ho_Chi_Minh;
use serde::{Deserialize, Serialize};

use crate::refdata;
use crate::WarehouseError;

/// Microseconds in one second.
pub const MICROS: i64 = 1_000_000;
/// Microseconds in one calendar day.
pub const DAY_MICROS: i64 = 86_400 * MICROS;

/// What kind of day a listed date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A day off (statutory holiday, compensation day, swapped day, local closure).
    Holiday,
    /// A Saturday or Sunday that is officially worked.
    MakeupWorkday,
    /// An ordinary working day: cancels a listed holiday.
    Workday,
}

/// One configured change to the calendar.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayOverride {
    pub date: NaiveDate,
    pub kind: DayKind,
    #[serde(default)]
    pub name: String,
}

/// Calendar configuration (`[calendar]` in config.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarConfig {
    /// Office hours as `"HH:MM-HH:MM"` local intervals, in order, not overlapping.
    pub office_hours: Vec<String>,
    /// Extra or changed days, applied after the shipped holiday list.
    #[serde(rename = "override")]
    pub overrides: Vec<DayOverride>,
    /// First and last year the calendar covers (instants outside it have no working time).
    pub first_year: i32,
    pub last_year: i32,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            office_hours: vec!["07:30-11:30".into(), "13:30-17:00".into()],
            overrides: Vec::new(),
            first_year: 2020,
            last_year: 2027,
        }
    }
}

/// A listed (non-ordinary) day, for the `calendar` table.
#[derive(Debug, Clone)]
pub struct ListedDay {
    pub kind: DayKind,
    pub name: String,
}

/// The working-time calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    first_day: NaiveDate,
    /// Local day number (days since 1970-01-01) of `first_day`.
    first_day_num: i64,
    /// Whether each covered day is a working day.
    working: Vec<bool>,
    /// `cum[i]` = working microseconds in covered days before day `i`; length days + 1.
    cum: Vec<i64>,
    /// Office intervals in microseconds since local midnight.
    intervals: Vec<(i64, i64)>,
    /// Working microseconds in one working day.
    day_len: i64,
    /// UTC offset of Asia/Ho_Chi_Minh in microseconds (fixed, +07:00).
    offset: i64,
    listed: BTreeMap<NaiveDate, ListedDay>,
}

fn parse_hhmm(s: &str) -> Result<i64, WarehouseError> {
    let t = NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| WarehouseError::Config(format!("giờ làm việc không hợp lệ: {s:?}")))?;
    Ok(i64::from(chrono::Timelike::num_seconds_from_midnight(&t)) * MICROS)
}

impl Calendar {
    /// The calendar from the shipped holiday list and the given configuration.
    pub fn new(cfg: &CalendarConfig) -> Result<Calendar, WarehouseError> {
        let mut intervals = Vec::new();
        for spec in &cfg.office_hours {
            let (a, b) = spec.split_once('-').ok_or_else(|| {
                WarehouseError::Config(format!("giờ làm việc phải có dạng HH:MM-HH:MM: {spec:?}"))
            })?;
            let (a, b) = (parse_hhmm(a)?, parse_hhmm(b)?);
            if b <= a || intervals.last().is_some_and(|&(_, e)| a < e) {
                return Err(WarehouseError::Config(format!(
                    "giờ làm việc phải tăng dần và không chồng nhau: {spec:?}"
                )));
            }
            intervals.push((a, b));
        }
        if intervals.is_empty() {
            return Err(WarehouseError::Config(
                "cần ít nhất một khoảng giờ làm việc".into(),
            ));
        }
        let day_len = intervals.iter().map(|(a, b)| b - a).sum();

        let mut listed = BTreeMap::new();
        for h in refdata::holidays()? {
            listed.insert(
                h.date,
                ListedDay {
                    kind: h.kind,
                    name: h.name,
                },
            );
        }
        for o in &cfg.overrides {
            listed.insert(
                o.date,
                ListedDay {
                    kind: o.kind,
                    name: o.name.clone(),
                },
            );
        }

        let first_day = NaiveDate::from_ymd_opt(cfg.first_year, 1, 1)
            .ok_or_else(|| WarehouseError::Config("first_year không hợp lệ".into()))?;
        let last_day = NaiveDate::from_ymd_opt(cfg.last_year, 12, 31)
            .ok_or_else(|| WarehouseError::Config("last_year không hợp lệ".into()))?;
        if last_day < first_day {
            return Err(WarehouseError::Config("last_year < first_year".into()));
        }
        let mut working = Vec::new();
        let mut cum = vec![0i64];
        for d in first_day.iter_days().take_while(|d| *d <= last_day) {
            let weekday = !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
            let w = match listed.get(&d).map(|l| l.kind) {
                Some(DayKind::Holiday) => false,
                Some(DayKind::MakeupWorkday) | Some(DayKind::Workday) => true,
                None => weekday,
            };
            working.push(w);
            let prev = *cum.last().unwrap_or(&0);
            cum.push(prev + if w { day_len } else { 0 });
        }
        let offset = i64::from(
            Ho_Chi_Minh
                .offset_from_utc_date(&first_day)
                .fix()
                .local_minus_utc(),
        ) * MICROS;
        Ok(Calendar {
            first_day,
            first_day_num: first_day.num_days_from_ce() as i64 - 719_163,
            working,
            cum,
            intervals,
            day_len,
            offset,
            listed,
        })
    }

    /// Working microseconds in one working day (7.5 h by default).
    pub fn day_len_micros(&self) -> i64 {
        self.day_len
    }

    /// UTC offset of local time, in microseconds.
    pub fn offset_micros(&self) -> i64 {
        self.offset
    }

    /// Local date of an instant.
    pub fn local_date(&self, t: i64) -> NaiveDate {
        let day = t.saturating_add(self.offset).div_euclid(DAY_MICROS);
        NaiveDate::from_num_days_from_ce_opt((day + 719_163) as i32).unwrap_or(NaiveDate::MIN)
    }

    /// Local day number (days since 1970-01-01) of an instant.
    pub fn local_day_num(&self, t: i64) -> i64 {
        t.saturating_add(self.offset).div_euclid(DAY_MICROS)
    }

    /// The instant of local midnight starting the given local date.
    pub fn local_midnight(&self, d: NaiveDate) -> i64 {
        (d.num_days_from_ce() as i64 - 719_163) * DAY_MICROS - self.offset
    }

    /// Covered days, first and last.
    pub fn range(&self) -> (NaiveDate, NaiveDate) {
        let last = self.first_day + chrono::Days::new(self.working.len().saturating_sub(1) as u64);
        (self.first_day, last)
    }

    /// Whether a covered local date is a working day (None outside the calendar).
    pub fn is_working_day(&self, d: NaiveDate) -> Option<bool> {
        let idx = d.num_days_from_ce() as i64 - 719_163 - self.first_day_num;
        usize::try_from(idx)
            .ok()
            .and_then(|i| self.working.get(i).copied())
    }

    /// The listed (holiday / make-up) days.
    pub fn listed_days(&self) -> &BTreeMap<NaiveDate, ListedDay> {
        &self.listed
    }

    /// Cumulative working microseconds from the calendar start up to instant `t`.
    fn cumulative(&self, t: i64) -> Option<i64> {
        let local = t.checked_add(self.offset)?;
        let day = local.div_euclid(DAY_MICROS);
        let idx = usize::try_from(day - self.first_day_num).ok()?;
        if idx >= self.working.len() {
            return None;
        }
        let base = self.cum[idx];
        if !self.working[idx] {
            return Some(base);
        }
        let tod = local.rem_euclid(DAY_MICROS);
        let within: i64 = self
            .intervals
            .iter()
            .map(|&(s, e)| (tod.min(e) - s).max(0))
            .sum();
        Some(base + within)
    }

    /// Working microseconds in `[a, b)`; 0 when `b <= a`; None outside the calendar.
    pub fn working_micros(&self, a: i64, b: i64) -> Option<i64> {
        if b <= a {
            return Some(0);
        }
        Some((self.cumulative(b)? - self.cumulative(a)?).max(0))
    }

    /// The first instant `t >= a` at which `working_micros(a, t)` reaches `x`
    /// (`a` itself when `x <= 0`); None when that lies outside the calendar.
    pub fn add_working_micros(&self, a: i64, x: i64) -> Option<i64> {
        if x <= 0 {
            return Some(a);
        }
        let target = self.cumulative(a)?.checked_add(x)?;
        // first day j with cum[j + 1] >= target; then cum[j] < target.
        let j = self.cum[1..].partition_point(|&c| c < target);
        if j >= self.working.len() {
            return None;
        }
        let mut rem = target - self.cum[j];
        let day_start = (self.first_day_num + j as i64) * DAY_MICROS - self.offset;
        for &(s, e) in &self.intervals {
            let len = e - s;
            if rem <= len {
                return Some(day_start + s + rem);
            }
            rem -= len;
        }
        None
    }

    /// `add_working_micros(a, n working days)`.
    pub fn add_working_days(&self, a: i64, days: f64) -> Option<i64> {
        let x = (days * self.day_len as f64).round();
        // past the calendar's end long before i64 ends; `as` would saturate silently
        if !x.is_finite() || !(0.0..=i64::MAX as f64 / 2.0).contains(&x) {
            return None;
        }
        self.add_working_micros(a, x as i64)
    }

    /// Whether the local minute/instant `t` lies inside office hours of a working day
    /// (used by tests' naive walks and by data-quality checks).
    pub fn is_working_instant(&self, t: i64) -> Option<bool> {
        let d = self.local_date(t);
        let w = self.is_working_day(d)?;
        let tod = t.saturating_add(self.offset).rem_euclid(DAY_MICROS);
        Some(w && self.intervals.iter().any(|&(s, e)| tod >= s && tod < e))
    }

    /// A short fingerprint of everything that changes working time, so derived facts
    /// know when they were computed with another calendar.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(format!(
            "{:?}{:?}{}",
            self.intervals,
            self.first_day,
            self.working.len()
        ));
        for (i, w) in self.working.iter().enumerate() {
            if *w {
                h.update((i as u32).to_le_bytes());
            }
        }
        hex::encode(&h.finalize()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::new(&CalendarConfig::default()).expect("calendar")
    }

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .timestamp_micros()
    }

    #[test]
    fn out_of_range_is_none_not_wrapped() {
        let c = cal();
        let t = at("2026-03-02T08:00:00+07:00");
        for days in [1e15, 1e300, f64::MAX, f64::INFINITY, f64::NAN, -1.0] {
            assert_eq!(c.add_working_days(t, days), None, "{days}");
        }
        assert_eq!(c.add_working_micros(t, i64::MAX), None);
        assert_eq!(c.add_working_days(i64::MAX, 1.0), None);
        assert_eq!(c.add_working_days(i64::MIN, 1.0), None);
        assert_eq!(c.working_micros(i64::MIN, i64::MAX), None);
        // a year of working days still lands inside the calendar
        assert!(c.add_working_days(t, 200.0).is_some_and(|x| x > t));
    }

    #[test]
    fn a_plain_day_has_seven_and_a_half_hours() {
        let c = cal();
        assert_eq!(c.day_len_micros(), 27_000 * MICROS);
        // Mon 2026-03-02
        let w = c
            .working_micros(
                at("2026-03-02T00:00:00+07:00"),
                at("2026-03-03T00:00:00+07:00"),
            )
            .expect("in range");
        assert_eq!(w, 27_000 * MICROS);
        // lunch break and evening do not count
        let w = c
            .working_micros(
                at("2026-03-02T11:00:00+07:00"),
                at("2026-03-02T14:00:00+07:00"),
            )
            .expect("in range");
        assert_eq!(w, 3_600 * MICROS); // 11:00-11:30 + 13:30-14:00
    }

    #[test]
    fn tet_2026_and_makeup_saturday() {
        let c = cal();
        // Tết 2026: Mon 16/2 - Fri 20/2 are holidays, so Fri 13/2 17:00 -> Mon 23/2 07:30 is 0
        let w = c
            .working_micros(
                at("2026-02-13T17:00:00+07:00"),
                at("2026-02-23T07:30:00+07:00"),
            )
            .expect("in range");
        assert_eq!(w, 0);
        // Sat 10/1/2026 is a make-up working day
        assert_eq!(
            c.is_working_day(NaiveDate::from_ymd_opt(2026, 1, 10).expect("d")),
            Some(true)
        );
        assert_eq!(
            c.is_working_day(NaiveDate::from_ymd_opt(2026, 1, 2).expect("d")),
            Some(false)
        );
        assert_eq!(
            c.is_working_day(NaiveDate::from_ymd_opt(2026, 11, 24).expect("d")),
            Some(false)
        );
    }

    #[test]
    fn add_lands_on_interval_end_not_next_start() {
        let c = cal();
        // received Saturday 7/3/2026: one working day ends Monday 17:00, not Tuesday 07:30
        let t = c
            .add_working_days(at("2026-03-07T10:00:00+07:00"), 1.0)
            .expect("in range");
        assert_eq!(t, at("2026-03-09T17:00:00+07:00"));
        // received Mon 08:00 + 1 day = Tue 08:00
        let t = c
            .add_working_days(at("2026-03-02T08:00:00+07:00"), 1.0)
            .expect("in range");
        assert_eq!(t, at("2026-03-03T08:00:00+07:00"));
    }

    #[test]
    fn outside_the_calendar_is_none() {
        let c = cal();
        assert_eq!(
            c.working_micros(
                at("2019-12-31T08:00:00+07:00"),
                at("2020-01-02T08:00:00+07:00")
            ),
            None
        );
        assert_eq!(
            c.add_working_days(at("2027-12-31T08:00:00+07:00"), 5.0),
            None
        );
    }

    #[test]
    fn overrides_apply() {
        let mut cfg = CalendarConfig::default();
        cfg.overrides.push(DayOverride {
            date: NaiveDate::from_ymd_opt(2026, 11, 23).expect("d"),
            kind: DayKind::Holiday,
            name: "Nghỉ bù (thử)".into(),
        });
        cfg.overrides.push(DayOverride {
            date: NaiveDate::from_ymd_opt(2026, 11, 24).expect("d"),
            kind: DayKind::Workday,
            name: String::new(),
        });
        let c = Calendar::new(&cfg).expect("calendar");
        assert_eq!(
            c.is_working_day(NaiveDate::from_ymd_opt(2026, 11, 23).expect("d")),
            Some(false)
        );
        assert_eq!(
            c.is_working_day(NaiveDate::from_ymd_opt(2026, 11, 24).expect("d")),
            Some(true)
        );
    }
}
