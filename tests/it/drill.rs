//! "Explain every number", property test over HTTP: the dossiers behind a cell are the
//! cell. On the golden fixture (or, with `GIAMSAT_DRILL_DOSSIERS=N`, a generated province
//! of N dossiers: one-stop events and the portal's sync records), for random periods, all
//! nine groupings, random drill-down filters, random rows (TOTAL included) and every
//! column:
//! * `count` of `GET /api/v1/reports/bieu06/dossiers` is the cell of
//!   `GET /api/v1/reports/bieu06` with the same parameters, the list has `count` distinct
//!   dossiers ordered by id, and walking the pages with `cursor` gives the same list;
//! * the lists partition as the Biểu 06 identities say (as sets of dossier ids, disjoint):
//!   total = received_online ⊎ received_offline ⊎ carried_over = ended ⊎ in_progress,
//!   ended = ended_early ⊎ ended_on_day ⊎ ended_late, in_progress = in_time ⊎ overdue,
//!   on_time = early ∪ on_day ∪ in_time, late = ended_late ∪ overdue;
//! * every listed dossier belongs to the row (its group code) and the filters, and its
//!   class is the column's;
//! * the CSV of a list has `count` + 1 lines;
//! * for Decision 766 (the whole scope; six random counts of one unit), every per-dossier
//!   count of a criterion is the `count` of `GET /api/v1/indicators/766/dossiers?count=…`,
//!   and over the whole scope its dossiers are the Biểu 06 lists they are defined from.
//!
//! The random choices come from one seed: `GIAMSAT_DRILL_SEED` (default below), the
//! number of cases from `GIAMSAT_DRILL_CASES` (the first nine use the nine groupings);
//! the seed is printed and quoted in every failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::common::{self, cli, request, start_server};

const DEFAULT_SEED: u64 = 17;
const DEFAULT_CASES: usize = 9;

const GROUP_BYS: [&str; 9] = [
    "field",
    "agency",
    "commune",
    "procedure",
    "province",
    "procedure_level",
    "channel",
    "source",
    "non_territorial",
];

const COLUMNS: [&str; 13] = [
    "total",
    "received_online",
    "received_offline",
    "carried_over",
    "ended",
    "ended_early",
    "ended_on_day",
    "ended_late",
    "in_progress",
    "in_progress_in_time",
    "in_progress_overdue",
    "on_time",
    "late",
];

/// The per-dossier counts of the 766 report that have a list (the spec's list).
const DOSSIER_COUNTS: [&str; 17] = [
    "dossiers",
    "dossiers_on_time",
    "dossiers_late",
    "dossiers_with_feedback",
    "dossiers_synced",
    "received",
    "received_online_capable",
    "received_online_capable_online",
    "received_with_fee",
    "received_with_fee_paid_online",
    "received_digitized",
    "received_data_reused",
    "received_vneid",
    "ended",
    "ended_result_digitized",
    "ended_certified",
    "ended_certified_digitized",
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Percent-encode a query value (everything but RFC 3986 unreserved characters).
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn p(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

struct Api {
    port: u16,
    token: String,
    /// Printed with every failure.
    ctx: String,
}

impl Api {
    fn get(&self, path: &str, params: &[(String, String)]) -> common::Reply {
        let url = format!("{path}?{}", query(params));
        request(self.port, "GET", &url, Some(&self.token), None)
    }

    fn json(&self, path: &str, params: &[(String, String)]) -> Value {
        let r = self.get(path, params);
        assert_eq!(
            r.status,
            200,
            "{}: GET {path}?{}: {}",
            self.ctx,
            query(params),
            r.text()
        );
        r.json()
    }

    /// A whole list (one page of up to 10 000): its count and items.
    fn list(&self, path: &str, params: &[(String, String)]) -> (i64, Vec<Value>) {
        let mut all = params.to_vec();
        all.push(p("limit", "10000"));
        let b = self.json(path, &all);
        let count = b["count"]
            .as_i64()
            .unwrap_or_else(|| panic!("{}: count in {b}", self.ctx));
        assert_eq!(
            b["next_cursor"],
            Value::Null,
            "{}: {path}?{}: one page holds everything",
            self.ctx,
            query(&all)
        );
        let items = b["items"].as_array().cloned().unwrap_or_default();
        (count, items)
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            i["dossier_id"]
                .as_str()
                .unwrap_or_else(|| panic!("item without dossier_id: {i}"))
                .to_string()
        })
        .collect()
}

/// Ids as a set, checking that the list is strictly ordered by id (so distinct).
fn id_set(ctx: &str, what: &str, items: &[Value]) -> BTreeSet<String> {
    let v = ids(items);
    for w in v.windows(2) {
        assert!(
            w[0] < w[1],
            "{ctx}: {what}: not ordered by dossier_id or repeated: {} then {}",
            w[0],
            w[1]
        );
    }
    v.into_iter().collect()
}

/// The value of a report cell, with the on-time sums.
fn cell(row: &Value, column: &str) -> i64 {
    let n = |k: &str| row[k].as_i64().unwrap_or_else(|| panic!("{k} in {row}"));
    match column {
        "on_time" => n("ended_early") + n("ended_on_day") + n("in_progress_in_time"),
        "late" => n("ended_late") + n("in_progress_overdue"),
        c => n(c),
    }
}

/// Records of a CSV body (newlines inside quoted fields do not end a record).
fn csv_records(body: &str) -> usize {
    let mut quoted = false;
    let mut records = 0;
    let mut in_record = false;
    for ch in body.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                in_record = true;
            }
            '\n' if !quoted => {
                records += 1;
                in_record = false;
            }
            '\r' => {}
            _ => in_record = true,
        }
    }
    records + usize::from(in_record)
}

/// `f` over `items` on two threads (the server has two cores), results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let f = &f;
    let (even, odd): (Vec<R>, Vec<R>) = std::thread::scope(|s| {
        let a = s.spawn(move || items.iter().step_by(2).map(f).collect::<Vec<R>>());
        let b: Vec<R> = items.iter().skip(1).step_by(2).map(f).collect();
        (a.join().expect("worker"), b)
    });
    let mut out = Vec::with_capacity(items.len());
    let (mut e, mut o) = (even.into_iter(), odd.into_iter());
    loop {
        match (e.next(), o.next()) {
            (Some(x), Some(y)) => {
                out.push(x);
                out.push(y);
            }
            (Some(x), None) => out.push(x),
            (None, Some(y)) => out.push(y),
            (None, None) => break,
        }
    }
    out
}

fn disjoint_union(ctx: &str, what: &str, whole: &BTreeSet<String>, parts: &[&BTreeSet<String>]) {
    let mut seen = BTreeSet::new();
    for part in parts {
        for id in *part {
            assert!(seen.insert(id.clone()), "{ctx}: {what}: {id} in two parts");
        }
    }
    assert_eq!(&seen, whole, "{ctx}: {what}");
}

/// Generated data (one-stop events + portal sync records), ingested through the binary.
fn generated(tmp: &Path, dossiers: u64, seed: u64) -> PathBuf {
    let gen = tmp.join("gen");
    let data = tmp.join("data");
    cli(
        &data,
        &[
            "generate",
            "--out",
            gen.to_str().expect("p"),
            "--dossiers",
            &dossiers.to_string(),
            "--seed",
            &seed.to_string(),
        ],
    );
    cli(
        &data,
        &[
            "ingest",
            "--format",
            "procedures",
            gen.join("procedures.csv").to_str().expect("p"),
        ],
    );
    cli(
        &data,
        &["ingest", gen.join("events.ndjson").to_str().expect("p")],
    );
    cli(
        &data,
        &[
            "ingest",
            "--format",
            "dvcqg",
            "--source",
            "dvcqg",
            gen.join("dvcqg.ndjson").to_str().expect("p"),
        ],
    );
    data
}

/// Which item field holds the code a grouping groups by (groupings without one: None).
fn group_field(group_by: &str) -> Option<&'static str> {
    match group_by {
        "field" => Some("field_code"),
        "agency" => Some("agency_code"),
        "commune" => Some("commune_code"),
        "procedure" => Some("procedure_code"),
        "province" => Some("province_code"),
        _ => None,
    }
}

fn item_code(item: &Value, field: &str) -> String {
    item[field].as_str().unwrap_or_default().to_string()
}

/// Codes seen in the data, for the random filters.
struct Codes {
    by: BTreeMap<&'static str, Vec<String>>,
}

impl Codes {
    fn of(api: &Api) -> Codes {
        let groupings = ["field", "agency", "commune", "procedure"];
        let by = groupings
            .into_iter()
            .zip(par_map(&groupings, |g| {
                let rows = api.json(
                    "/api/v1/reports/bieu06",
                    &[
                        p("from", "2025-01-01"),
                        p("to", "2026-12-31"),
                        p("group_by", *g),
                    ],
                );
                let codes: Vec<String> = rows
                    .as_array()
                    .expect("rows")
                    .iter()
                    .filter_map(|r| r["group"].as_str())
                    .filter(|c| !c.is_empty() && *c != "TOTAL")
                    .map(str::to_string)
                    .collect();
                assert!(!codes.is_empty(), "the generated data has {g} codes");
                codes
            }))
            .collect();
        Codes { by }
    }

    fn pick(&self, rng: &mut StdRng, g: &str) -> String {
        let v = &self.by[g];
        v[rng.random_range(0..v.len())].clone()
    }
}

/// Random drill-down filters: (param, value), and the item field each one constrains.
fn random_filters(rng: &mut StdRng, codes: &Codes) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let n = match rng.random_range(0..10) {
        0..=3 => 0,
        4..=8 => 1,
        _ => 2,
    };
    for _ in 0..n {
        let (k, v) = match rng.random_range(0..8) {
            0 => ("field", codes.pick(rng, "field")),
            1 => ("agency", codes.pick(rng, "agency")),
            2 => ("procedure", codes.pick(rng, "procedure")),
            3 => ("commune", codes.pick(rng, "commune")),
            4 => (
                "procedure_level",
                ["full_online", "partial_online", "offline"][rng.random_range(0..3)].to_string(),
            ),
            5 => (
                "non_territorial",
                ["true", "false"][rng.random_range(0..2)].to_string(),
            ),
            6 => ("province", "31".to_string()),
            _ => continue,
        };
        if !f.iter().any(|(x, _)| x == k) {
            f.push(p(k, v));
        }
    }
    f
}

/// The warehouse under test and where its dossiers lie in time.
struct Dataset {
    data: PathBuf,
    /// A period holding every dossier.
    whole: (NaiveDate, NaiveDate),
    /// Random periods start in `start .. start + start_days` and last up to `max_days`.
    start: NaiveDate,
    start_days: u64,
    max_days: u64,
}

impl Dataset {
    /// The golden fixture (default: small, so the many requests stay fast), or with
    /// `GIAMSAT_DRILL_DOSSIERS=N` a generated province of N dossiers.
    fn new(tmp: &Path, seed: u64) -> Dataset {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let dossiers: u64 = env_or("GIAMSAT_DRILL_DOSSIERS", 0);
        if dossiers > 0 {
            return Dataset {
                data: generated(tmp, dossiers, seed % 1000 + 1),
                // the generator receives from 1/7/2025 to 20/11/2026
                whole: (d(2025, 7, 1), d(2026, 11, 20)),
                start: d(2025, 6, 1),
                start_days: 560,
                max_days: 150,
            };
        }
        let data = tmp.join("data");
        let g = common::root().join("fixtures/golden");
        common::ingest_all(&data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
        Dataset {
            data,
            // G23 received 29/12/2025 … G30 ended 31/3/2026 (G24 lies wholly in 12/2025)
            whole: (d(2025, 12, 1), d(2026, 3, 31)),
            start: d(2025, 11, 25),
            start_days: 130,
            max_days: 90,
        }
    }

    fn random_period(&self, rng: &mut StdRng) -> (NaiveDate, NaiveDate) {
        let a = self.start + chrono::Days::new(rng.random_range(0..self.start_days));
        let b = a + chrono::Days::new(rng.random_range(0..=self.max_days));
        (a, b)
    }
}

/// One (period, grouping, filters) case: the report, then every column of one row (TOTAL,
/// asked for as "no group" or as `group=TOTAL`, or a random row).
fn check_case(
    api: &Api,
    rng: &mut StdRng,
    (from, to): (NaiveDate, NaiveDate),
    group_by: &str,
    filters: &[(String, String)],
    total_only: bool,
) -> i64 {
    let mut params = vec![
        p("from", from.to_string()),
        p("to", to.to_string()),
        p("group_by", group_by),
    ];
    params.extend_from_slice(filters);
    let rows = api.json("/api/v1/reports/bieu06", &params);
    let rows = rows.as_array().cloned().expect("rows");
    let total_row = rows.last().expect("TOTAL row").clone();
    assert_eq!(total_row["group"], "TOTAL", "{}", api.ctx);

    let others = &rows[..rows.len() - 1];
    let (group, row): (Option<String>, Value) =
        if total_only || others.is_empty() || rng.random_bool(0.4) {
            let g = rng.random_bool(0.5).then(|| "TOTAL".to_string());
            (g, total_row.clone())
        } else {
            let r = &others[rng.random_range(0..others.len())];
            (
                Some(r["group"].as_str().expect("group").to_string()),
                r.clone(),
            )
        };
    let mut base = params.clone();
    if let Some(g) = &group {
        base.push(p("group", g.clone()));
    }
    let ctx = format!("{} [group {:?}]", api.ctx, group);
    eprintln!("{ctx}: row total {}", cell(&row, "total"));

    // the thirteen lists, and the CSV download of one of them, two at a time
    let csv_column = COLUMNS[rng.random_range(0..COLUMNS.len())];
    let jobs: Vec<Option<&str>> = COLUMNS.iter().copied().map(Some).chain([None]).collect();
    let mut fetched = par_map(&jobs, |job| {
        let mut q = base.clone();
        match job {
            Some(column) => {
                q.push(p("column", *column));
                Ok(api.list("/api/v1/reports/bieu06/dossiers", &q))
            }
            None => {
                q.push(p("column", csv_column));
                q.push(p("format", "csv"));
                Err(api.get("/api/v1/reports/bieu06/dossiers", &q))
            }
        }
    });
    let csv = match fetched.pop() {
        Some(Err(r)) => r,
        _ => unreachable!("the last job is the CSV"),
    };
    let fetched = fetched.into_iter().map(|r| match r {
        Ok(list) => list,
        Err(_) => unreachable!("the first jobs are lists"),
    });
    let mut sets: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut lists: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (column, (count, items)) in COLUMNS.into_iter().zip(fetched) {
        let want = cell(&row, column);
        assert_eq!(count, want, "{ctx}: count of {column} = the report's cell");
        let set = id_set(&ctx, column, &items);
        assert_eq!(
            set.len() as i64,
            count,
            "{ctx}: {column}: {count} dossiers listed"
        );
        // the class of each listed dossier is the column's
        let classes: &[&str] = match column {
            "ended" => &["early", "on_day", "late"],
            "ended_early" => &["early"],
            "ended_on_day" => &["on_day"],
            "ended_late" => &["late"],
            "in_progress" => &["in_time", "overdue"],
            "in_progress_in_time" => &["in_time"],
            "in_progress_overdue" => &["overdue"],
            "on_time" => &["early", "on_day", "in_time"],
            "late" => &["late", "overdue"],
            _ => &["early", "on_day", "late", "in_time", "overdue"],
        };
        for it in &items {
            let c = it["class"].as_str().unwrap_or_default();
            assert!(
                classes.contains(&c),
                "{ctx}: {column}: {} has class {c:?}",
                it["dossier_id"]
            );
            // the row's group and the filters hold for every listed dossier
            if let (Some(f), Some(g)) = (group_field(group_by), &group) {
                if g != "TOTAL" {
                    assert_eq!(
                        &item_code(it, f),
                        g,
                        "{ctx}: {column}: {} is not in the row",
                        it["dossier_id"]
                    );
                }
            }
            for (k, v) in filters {
                let f = match k.as_str() {
                    "field" => "field_code",
                    "agency" => "agency_code",
                    "procedure" => "procedure_code",
                    "commune" => "commune_code",
                    "province" => "province_code",
                    _ => continue,
                };
                assert_eq!(
                    &item_code(it, f),
                    v,
                    "{ctx}: {column}: {} outside the filter {k}",
                    it["dossier_id"]
                );
            }
        }
        sets.insert(column, set);
        lists.insert(column, items);
    }
    let s = |c: &str| &sets[c];
    disjoint_union(
        &ctx,
        "total = received_online ⊎ received_offline ⊎ carried_over",
        s("total"),
        &[
            s("received_online"),
            s("received_offline"),
            s("carried_over"),
        ],
    );
    disjoint_union(
        &ctx,
        "total = ended ⊎ in_progress",
        s("total"),
        &[s("ended"), s("in_progress")],
    );
    disjoint_union(
        &ctx,
        "ended = ended_early ⊎ ended_on_day ⊎ ended_late",
        s("ended"),
        &[s("ended_early"), s("ended_on_day"), s("ended_late")],
    );
    disjoint_union(
        &ctx,
        "in_progress = in_progress_in_time ⊎ in_progress_overdue",
        s("in_progress"),
        &[s("in_progress_in_time"), s("in_progress_overdue")],
    );
    disjoint_union(
        &ctx,
        "on_time = ended_early ∪ ended_on_day ∪ in_progress_in_time",
        s("on_time"),
        &[
            s("ended_early"),
            s("ended_on_day"),
            s("in_progress_in_time"),
        ],
    );
    disjoint_union(
        &ctx,
        "late = ended_late ∪ in_progress_overdue",
        s("late"),
        &[s("ended_late"), s("in_progress_overdue")],
    );

    // walking the pages of one column (at most about three pages) gives the same list
    let paged_column = COLUMNS[rng.random_range(0..COLUMNS.len())];
    let whole = ids(&lists[paged_column]);
    let count = whole.len();
    let limit = rng.random_range(1..=25usize).max(count.div_ceil(4)).max(1);
    let mut walked: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = base.clone();
        q.push(p("column", paged_column));
        q.push(p("limit", limit.to_string()));
        if let Some(c) = &cursor {
            q.push(p("cursor", c.clone()));
        }
        let b = api.json("/api/v1/reports/bieu06/dossiers", &q);
        assert_eq!(
            b["count"].as_i64(),
            Some(count as i64),
            "{ctx}: {paged_column}: count on page {pages}"
        );
        let items = b["items"].as_array().cloned().unwrap_or_default();
        assert!(
            items.len() <= limit,
            "{ctx}: {paged_column}: {} items on a page of {limit}",
            items.len()
        );
        walked.extend(ids(&items));
        pages += 1;
        assert!(
            pages <= count / limit + 2,
            "{ctx}: {paged_column}: too many pages of {limit} for {count}"
        );
        match b["next_cursor"].as_str() {
            Some(c) => {
                assert!(!items.is_empty(), "{ctx}: an empty page with a next cursor");
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    assert_eq!(
        walked, whole,
        "{ctx}: {paged_column}: the pages of {limit} are the whole list"
    );

    // the CSV download of one list: a heading and one line per dossier
    assert_eq!(csv.status, 200, "{ctx}: csv {csv_column}: {}", csv.text());
    let text = csv.text();
    let n = sets[csv_column].len();
    assert_eq!(
        csv_records(&text),
        n + 1,
        "{ctx}: csv of {csv_column} has {n} + 1 lines:\n{text}"
    );
    for id in &sets[csv_column] {
        assert!(text.contains(id.as_str()), "{ctx}: csv lacks {id}");
    }
    cell(&total_row, "total")
}

/// Decision 766 over one period, for the whole scope (`unit` None) or one unit
/// (`group_by` + `unit`): every dossier count of a criterion is its list's count; over the
/// whole scope the counts defined by Biểu 06 are its lists.
fn check_766(
    api: &Api,
    rng: &mut StdRng,
    (from, to): (NaiveDate, NaiveDate),
    unit: Option<(&str, String)>,
) {
    let period = format!("{from}..{to}");
    let ctx = format!("{} 766 {period} unit {unit:?}", api.ctx);
    let mut params = vec![p("period", period.clone())];
    if let Some((g, _)) = &unit {
        params.push(p("group_by", *g));
    }
    let ix = api.json("/api/v1/indicators/766", &params);
    let index = match &unit {
        None => ix,
        Some((_, code)) => ix["units"]
            .as_array()
            .expect("units")
            .iter()
            .find(|u| u["unit"] == code.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{ctx}: the unit is in the report: {ix}")),
    };
    // (criterion key, count name, the criterion's value)
    let mut wanted: Vec<(String, String, i64)> = Vec::new();
    for g in index["groups"].as_array().expect("groups") {
        for c in g["criteria"].as_array().expect("criteria") {
            for (name_key, value_key) in [
                ("numerator_name", "numerator"),
                ("denominator_name", "denominator"),
            ] {
                let name = c[name_key].as_str().expect("count name").to_string();
                if DOSSIER_COUNTS.contains(&name.as_str()) {
                    wanted.push((
                        c["key"].as_str().unwrap_or_default().to_string(),
                        name,
                        c[value_key].as_i64().expect("count"),
                    ));
                }
            }
        }
    }
    assert!(
        wanted.len() >= 10,
        "{ctx}: the 766 criteria name dossier counts ({})",
        wanted.len()
    );
    let mut names: Vec<String> = wanted
        .iter()
        .map(|(_, n, _)| n.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if unit.is_some() {
        // one unit: six of the counts (each request costs a query), chosen by the seed
        while names.len() > 6 {
            names.remove(rng.random_range(0..names.len()));
        }
        wanted.retain(|(_, n, _)| names.contains(n));
    }
    let fetched = par_map(&names, |name| {
        let mut q = params.clone();
        q.push(p("count", name.clone()));
        if let Some((_, code)) = &unit {
            q.push(p("unit", code.clone()));
        }
        let (count, items) = api.list("/api/v1/indicators/766/dossiers", &q);
        (count, id_set(&ctx, name, &items))
    });
    let lists: BTreeMap<String, (i64, BTreeSet<String>)> = names.into_iter().zip(fetched).collect();
    for (key, name, want) in &wanted {
        let (count, set) = &lists[name];
        assert_eq!(
            count, want,
            "{ctx}: criterion {key}: {name} = its list's count"
        );
        assert_eq!(set.len() as i64, *count, "{ctx}: {name}: listed");
    }
    if unit.is_some() {
        return;
    }
    // the counts Biểu 06 defines are its lists
    let b06_columns = [
        "total",
        "on_time",
        "late",
        "ended",
        "received_online",
        "received_offline",
    ];
    let b06: BTreeMap<&str, BTreeSet<String>> = b06_columns
        .into_iter()
        .zip(par_map(&b06_columns, |column| {
            let (_, items) = api.list(
                "/api/v1/reports/bieu06/dossiers",
                &[
                    p("from", from.to_string()),
                    p("to", to.to_string()),
                    p("column", *column),
                ],
            );
            id_set(&ctx, column, &items)
        }))
        .collect();
    for (count, column) in [
        ("dossiers", "total"),
        ("dossiers_on_time", "on_time"),
        ("dossiers_late", "late"),
        ("ended", "ended"),
    ] {
        if let Some((_, s)) = lists.get(count) {
            assert_eq!(s, &b06[column], "{ctx}: 766 {count} = Biểu 06 {column}");
        }
    }
    if let Some((_, s)) = lists.get("received") {
        let mut want = b06["received_online"].clone();
        want.extend(b06["received_offline"].iter().cloned());
        assert_eq!(s, &want, "{ctx}: received = received online ⊎ offline");
    }
    // counts that are not of dossiers have no list
    for name in ["procedures", "feedback", "dossiers_satisfaction"] {
        let r = api.get(
            "/api/v1/indicators/766/dossiers",
            &[p("period", period.clone()), p("count", name)],
        );
        assert_eq!(r.status, 400, "{ctx}: count={name}: {}", r.text());
        assert!(
            r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{ctx}: count={name}: {}",
            r.text()
        );
    }
}

#[test]
fn every_cell_is_the_count_of_its_dossiers() {
    let seed: u64 = env_or("GIAMSAT_DRILL_SEED", DEFAULT_SEED);
    let cases: usize = env_or("GIAMSAT_DRILL_CASES", DEFAULT_CASES);
    eprintln!("drill: seed {seed}, {cases} cases (GIAMSAT_DRILL_SEED / GIAMSAT_DRILL_CASES)");
    let tmp = tempfile::tempdir().expect("tmp");
    let set = Dataset::new(tmp.path(), seed);
    let token = cli(&set.data, &["token", "add", "--role", "admin"]);
    let (_server, port) = start_server(&set.data, &[]);
    let mut api = Api {
        port,
        token,
        ctx: format!("seed {seed}"),
    };
    let codes = Codes::of(&api);
    let mut rng = StdRng::seed_from_u64(seed);
    // every grouping once in the first nine cases, in a seeded order
    let offset = rng.random_range(0..GROUP_BYS.len());
    let mut nonempty = 0;
    for case in 0..cases {
        let period = if case == 0 {
            set.whole
        } else {
            set.random_period(&mut rng)
        };
        let group_by = GROUP_BYS[(case + offset) % GROUP_BYS.len()];
        let filters = if case == 0 {
            Vec::new()
        } else {
            random_filters(&mut rng, &codes)
        };
        api.ctx = format!(
            "seed {seed} case {case}: {}..{} group_by={group_by} filters={}",
            period.0,
            period.1,
            query(&filters)
        );
        if check_case(&api, &mut rng, period, group_by, &filters, case == 0) > 0 {
            nonempty += 1;
        }
    }
    assert!(
        nonempty * 3 >= cases,
        "seed {seed}: the cases must mostly have dossiers ({nonempty} of {cases})"
    );

    // Decision 766: the official Q1 2026 over the whole scope, then one random commune or
    // agency over a random period that has it
    api.ctx = format!("seed {seed}");
    let q1 = (
        NaiveDate::from_ymd_opt(2025, 12, 15).expect("d"),
        NaiveDate::from_ymd_opt(2026, 3, 14).expect("d"),
    );
    check_766(&api, &mut rng, q1, None);
    let (g, column) = if rng.random_bool(0.5) {
        ("commune", "commune_code")
    } else {
        ("agency", "agency_code")
    };
    let period = set.random_period(&mut rng);
    let (_, items) = api.list(
        "/api/v1/reports/bieu06/dossiers",
        &[
            p("from", period.0.to_string()),
            p("to", period.1.to_string()),
            p("column", "total"),
        ],
    );
    let units: Vec<String> = items
        .iter()
        .filter_map(|i| i[column].as_str())
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    if !units.is_empty() {
        let unit = units[rng.random_range(0..units.len())].clone();
        check_766(&api, &mut rng, period, Some((g, unit)));
    }
}
