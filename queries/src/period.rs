//! Reporting periods: the official presets of docs/domain.md ("Official reporting periods":
//! quarter = 15th of the month before the quarter to the 14th of its last month, half year
//! 15/12–14/6, year 15/12–14/12), calendar months and quarters, and any date range.
//!
//! Period syntax (CLI `--period`, HTTP `period=`):
//! * `2026-03` — calendar month;
//! * `2026-Q1` — quarter, official (15th-to-14th) or calendar depending on
//!   [`QuarterRule`] (`[periods] quarters` in `config.toml`, default official);
//! * `2026-H1`, `2026-H2` — half year (official or calendar, same rule);
//! * `2026` — year (official or calendar, same rule);
//! * `2026-OQ1`, `2026-OH1`, `2026-OY` — always official; `2026-CQ1`, `2026-CH1`,
//!   `2026-CY` — always calendar;
//! * `2026-01-01..2026-03-31` — any inclusive date range.

use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;

pub use giamsat_warehouse::config::QuarterRule;

use crate::QueryError;

/// An inclusive range of local dates, with the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Period {
    /// The period as asked (`2026-Q1`, `2026-03`, …).
    pub label: String,
    /// First local date (inclusive), `YYYY-MM-DD`.
    #[schema(value_type = String)]
    pub from: NaiveDate,
    /// Last local date (inclusive).
    #[schema(value_type = String)]
    pub to: NaiveDate,
}

fn bad(s: &str) -> QueryError {
    QueryError::BadInput(format!(
        "kỳ báo cáo không hợp lệ: {s:?} (ví dụ 2026-Q1, 2026-03, 2026-H1, 2026, \
         2026-01-01..2026-03-31)"
    ))
}

fn ymd(y: i32, m: u32, d: u32, s: &str) -> Result<NaiveDate, QueryError> {
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| bad(s))
}

/// Last day of month `m` of year `y`.
fn month_end(y: i32, m: u32, s: &str) -> Result<NaiveDate, QueryError> {
    let first = ymd(y, m, 1, s)?;
    first
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .ok_or_else(|| bad(s))
}

/// Months `first..=last` of year `y` as an official (15th-to-14th) or calendar range.
fn span(
    y: i32,
    first: u32,
    last: u32,
    official: bool,
    s: &str,
) -> Result<(NaiveDate, NaiveDate), QueryError> {
    if official {
        let start = ymd(y, first, 15, s)?
            .checked_sub_months(Months::new(1))
            .ok_or_else(|| bad(s))?;
        Ok((start, ymd(y, last, 14, s)?))
    } else {
        Ok((ymd(y, first, 1, s)?, month_end(y, last, s)?))
    }
}

impl Period {
    /// Parse a period (see the module documentation).
    pub fn parse(s: &str, rule: QuarterRule) -> Result<Period, QueryError> {
        let t = s.trim();
        let label = t.to_string();
        if let Some((a, b)) = t.split_once("..") {
            return Period::between(
                crate::bieu06::parse_date("from", a)?,
                crate::bieu06::parse_date("to", b)?,
            );
        }
        let (year, rest) = match t.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (t, None),
        };
        if year.len() != 4 || !year.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad(s));
        }
        let y: i32 = year.parse().map_err(|_| bad(s))?;
        if !(1990..=2200).contains(&y) {
            return Err(bad(s));
        }
        let default_official = rule == QuarterRule::Official;
        let (from, to) = match rest {
            None => span(y, 1, 12, default_official, s)?,
            Some(r) => {
                let (official, r) = if let Some(x) = r.strip_prefix('O') {
                    (true, x)
                } else if let Some(x) = r.strip_prefix('C') {
                    (false, x)
                } else {
                    (default_official, r)
                };
                match r.as_bytes() {
                    [b'Y'] if r.len() == 1 && rest != Some("Y") => span(y, 1, 12, official, s)?,
                    [b'Q', q @ b'1'..=b'4'] => {
                        let q = u32::from(q - b'0');
                        span(y, 3 * q - 2, 3 * q, official, s)?
                    }
                    [b'H', h @ b'1'..=b'2'] => {
                        let h = u32::from(h - b'0');
                        span(y, 6 * h - 5, 6 * h, official, s)?
                    }
                    [m1 @ b'0'..=b'1', m2 @ b'0'..=b'9'] if r.len() == rest.map_or(0, str::len) => {
                        let m = u32::from(m1 - b'0') * 10 + u32::from(m2 - b'0');
                        if !(1..=12).contains(&m) {
                            return Err(bad(s));
                        }
                        (ymd(y, m, 1, s)?, month_end(y, m, s)?)
                    }
                    _ => return Err(bad(s)),
                }
            }
        };
        Ok(Period { label, from, to })
    }

    /// A date range `[from, to]`, refused when `from` is after `to`.
    pub fn between(from: NaiveDate, to: NaiveDate) -> Result<Period, QueryError> {
        if from > to {
            return Err(QueryError::BadInput(format!(
                "from ({from}) phải không sau to ({to})"
            )));
        }
        Ok(Period::range(from, to))
    }

    /// A plain date range.
    pub fn range(from: NaiveDate, to: NaiveDate) -> Period {
        Period {
            label: format!("{from}..{to}"),
            from,
            to,
        }
    }

    /// The period of the same length just before this one (for "versus the previous
    /// period"): a calendar month → the previous month, otherwise the same number of days.
    pub fn previous(&self) -> Option<Period> {
        let is_month = self.from.day() == 1
            && self.from.month() == self.to.month()
            && self.from.year() == self.to.year()
            && self.to.succ_opt().is_some_and(|d| d.day() == 1);
        if is_month {
            let from = self.from.checked_sub_months(Months::new(1))?;
            let to = self.from.pred_opt()?;
            return Some(Period::range(from, to));
        }
        let days = (self.to - self.from).num_days() + 1;
        let to = self.from.pred_opt()?;
        let from = to.checked_sub_signed(chrono::TimeDelta::days(days - 1))?;
        Some(Period::range(from, to))
    }

    /// Consecutive calendar months (or quarters when `quarters`) covering the period, each
    /// clipped to it.
    pub fn split(&self, quarters: bool) -> Vec<Period> {
        let mut out = Vec::new();
        let step = if quarters { 3 } else { 1 };
        let m0 = if quarters {
            (self.from.month0() / 3) * 3 + 1
        } else {
            self.from.month()
        };
        let mut start = NaiveDate::from_ymd_opt(self.from.year(), m0, 1);
        while let Some(s) = start {
            if s > self.to {
                break;
            }
            let next = s.checked_add_months(Months::new(step));
            let end = next.and_then(|n| n.pred_opt()).unwrap_or(self.to);
            let from = s.max(self.from);
            let to = end.min(self.to);
            let label = if quarters {
                format!("{}-Q{}", s.year(), s.month0() / 3 + 1)
            } else {
                format!("{}-{:02}", s.year(), s.month())
            };
            out.push(Period { label, from, to });
            start = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (String, String) {
        let x = Period::parse(s, QuarterRule::Official).expect(s);
        (x.from.to_string(), x.to.to_string())
    }

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn official_and_calendar_presets() {
        assert_eq!(p("2026-Q1"), s("2025-12-15", "2026-03-14"));
        assert_eq!(p("2026-Q4"), s("2026-09-15", "2026-12-14"));
        assert_eq!(p("2026-H1"), s("2025-12-15", "2026-06-14"));
        assert_eq!(p("2026-H2"), s("2026-06-15", "2026-12-14"));
        assert_eq!(p("2026"), s("2025-12-15", "2026-12-14"));
        assert_eq!(p("2026-OY"), s("2025-12-15", "2026-12-14"));
        assert_eq!(p("2026-CY"), s("2026-01-01", "2026-12-31"));
        assert_eq!(p("2026-CQ1"), s("2026-01-01", "2026-03-31"));
        assert_eq!(p("2026-CH2"), s("2026-07-01", "2026-12-31"));
        assert_eq!(p("2026-02"), s("2026-02-01", "2026-02-28"));
        assert_eq!(p("2028-02"), s("2028-02-01", "2028-02-29"));
        assert_eq!(p("2026-12"), s("2026-12-01", "2026-12-31"));
        assert_eq!(p("2026-01-05..2026-01-22"), s("2026-01-05", "2026-01-22"));
        let c = Period::parse("2026-Q1", QuarterRule::Calendar).expect("cal");
        assert_eq!(
            (c.from.to_string(), c.to.to_string()),
            s("2026-01-01", "2026-03-31")
        );
        let c = Period::parse("2026", QuarterRule::Calendar).expect("cal");
        assert_eq!(
            (c.from.to_string(), c.to.to_string()),
            s("2026-01-01", "2026-12-31")
        );
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "26",
            "2026-13",
            "2026-00",
            "2026-Q5",
            "2026-Q0",
            "2026-H3",
            "Q1",
            "2026-3",
            "2026-03-01..2026-02-01",
            "2026-Y",
            "abcd",
            "2026-OQ",
            "2026-031",
        ] {
            assert!(Period::parse(bad, QuarterRule::Official).is_err(), "{bad}");
        }
    }

    #[test]
    fn previous_and_split() {
        let m = Period::parse("2026-03", QuarterRule::Official).expect("m");
        let prev = m.previous().expect("prev");
        assert_eq!(
            (prev.from.to_string(), prev.to.to_string()),
            s("2026-02-01", "2026-02-28")
        );
        let q = Period::parse("2026-Q1", QuarterRule::Official).expect("q");
        let prev = q.previous().expect("prev");
        // 90 days: 15/12/2025..14/3/2026 → the 90 days before
        assert_eq!(prev.to.to_string(), "2025-12-14");
        assert_eq!((q.to - q.from).num_days(), (prev.to - prev.from).num_days());
        let parts = q.split(false);
        let labels: Vec<_> = parts.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2025-12", "2026-01", "2026-02", "2026-03"]);
        assert_eq!(parts[0].from.to_string(), "2025-12-15");
        assert_eq!(parts[3].to.to_string(), "2026-03-14");
        let y = Period::parse("2026-CY", QuarterRule::Official).expect("y");
        let qs = y.split(true);
        assert_eq!(qs.len(), 4);
        assert_eq!(qs[3].label, "2026-Q4");
        assert_eq!(qs[3].from.to_string(), "2026-10-01");
    }
}
