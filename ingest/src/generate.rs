//! Realistic synthetic data for one province: a procedure catalog and canonical events.
//!
//! Shapes follow the field reports (digested in docs/domain.md): certification and civil status
//! dominate, > 90 % of commune dossiers are online, a few % are late, some need a
//! supplement, a few are withdrawn, stopped or rejected, some sources report no due time,
//! several source systems (provincial one-stop, ministry systems from 1/7/2026, the
//! national portal mirroring part of them), and the delivery is messy: out-of-order
//! lines, duplicate deliveries and a few malformed lines.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use giamsat_warehouse::calendar::{Calendar, CalendarConfig, DAY_MICROS, MICROS};
use giamsat_warehouse::refdata;

use crate::IngestError;

/// One procedure of the synthetic catalog.
struct Proc {
    code: &'static str,
    name: &'static str,
    field: (&'static str, &'static str),
    level: &'static str,
    authority: &'static str,
    days: f64,
    fee: bool,
    weight: f64,
    /// Agency for province-level procedures (code suffix, name).
    agency: Option<(&'static str, &'static str)>,
}

const CT: (&str, &str) = ("CT", "Chứng thực");
const HT: (&str, &str) = ("HT", "Hộ tịch");
const DD: (&str, &str) = ("DD", "Đất đai");
const HKD: (&str, &str) = ("HKD", "Hộ kinh doanh");
const NCC: (&str, &str) = ("NCC", "Người có công");
const BTXH: (&str, &str) = ("BTXH", "Bảo trợ xã hội");
const XD: (&str, &str) = ("XD", "Xây dựng");
const LLTP: (&str, &str) = ("LLTP", "Lý lịch tư pháp");

#[rustfmt::skip]
const CATALOG: &[Proc] = &[
    Proc { code: "2.000815", name: "Chứng thực bản sao từ bản chính giấy tờ, văn bản", field: CT, level: "partial_online", authority: "commune", days: 1.0, fee: true, weight: 30.0, agency: None },
    Proc { code: "2.000884", name: "Chứng thực chữ ký trong các giấy tờ, văn bản", field: CT, level: "partial_online", authority: "commune", days: 1.0, fee: true, weight: 12.0, agency: None },
    Proc { code: "2.000913", name: "Chứng thực hợp đồng, giao dịch liên quan đến tài sản là động sản", field: CT, level: "partial_online", authority: "commune", days: 2.0, fee: true, weight: 4.0, agency: None },
    Proc { code: "2.001035", name: "Cấp bản sao có chứng thực từ bản chính hợp đồng, giao dịch đã được chứng thực", field: CT, level: "full_online", authority: "commune", days: 2.0, fee: true, weight: 3.0, agency: None },
    Proc { code: "1.001193", name: "Đăng ký khai sinh", field: HT, level: "full_online", authority: "commune", days: 1.0, fee: false, weight: 7.0, agency: None },
    Proc { code: "1.000894", name: "Đăng ký kết hôn", field: HT, level: "partial_online", authority: "commune", days: 5.0, fee: false, weight: 3.0, agency: None },
    Proc { code: "1.000656", name: "Đăng ký khai tử", field: HT, level: "full_online", authority: "commune", days: 1.0, fee: false, weight: 2.0, agency: None },
    Proc { code: "1.004873", name: "Cấp bản sao trích lục hộ tịch", field: HT, level: "full_online", authority: "commune", days: 1.0, fee: true, weight: 5.0, agency: None },
    Proc { code: "1.004884", name: "Cấp Giấy xác nhận tình trạng hôn nhân", field: HT, level: "full_online", authority: "commune", days: 3.0, fee: true, weight: 4.0, agency: None },
    Proc { code: "1.012790", name: "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất", field: DD, level: "partial_online", authority: "commune", days: 10.0, fee: true, weight: 4.0, agency: None },
    Proc { code: "1.012756", name: "Đăng ký đất đai, tài sản gắn liền với đất, cấp Giấy chứng nhận lần đầu", field: DD, level: "partial_online", authority: "province", days: 20.0, fee: true, weight: 2.0, agency: Some(("VPDKDD", "Văn phòng Đăng ký đất đai")) },
    Proc { code: "1.012800", name: "Chuyển mục đích sử dụng đất", field: DD, level: "partial_online", authority: "commune", days: 15.0, fee: true, weight: 1.0, agency: None },
    Proc { code: "2.000720", name: "Đăng ký thành lập hộ kinh doanh", field: HKD, level: "full_online", authority: "commune", days: 3.0, fee: true, weight: 2.0, agency: None },
    Proc { code: "2.000575", name: "Đăng ký thay đổi nội dung đăng ký hộ kinh doanh", field: HKD, level: "full_online", authority: "commune", days: 3.0, fee: true, weight: 1.0, agency: None },
    Proc { code: "2.000560", name: "Thông báo chấm dứt hoạt động hộ kinh doanh", field: HKD, level: "full_online", authority: "commune", days: 3.0, fee: false, weight: 0.5, agency: None },
    Proc { code: "1.010820", name: "Giải quyết chế độ trợ cấp thờ cúng liệt sĩ", field: NCC, level: "partial_online", authority: "commune", days: 12.0, fee: false, weight: 0.7, agency: None },
    Proc { code: "1.010801", name: "Cấp giấy xác nhận thân nhân của người có công", field: NCC, level: "partial_online", authority: "commune", days: 5.0, fee: false, weight: 0.7, agency: None },
    Proc { code: "1.001776", name: "Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng", field: BTXH, level: "partial_online", authority: "commune", days: 7.0, fee: false, weight: 0.8, agency: None },
    Proc { code: "1.001758", name: "Hỗ trợ chi phí mai táng cho đối tượng bảo trợ xã hội", field: BTXH, level: "partial_online", authority: "commune", days: 3.0, fee: false, weight: 0.4, agency: None },
    Proc { code: "1.009994", name: "Cấp giấy phép xây dựng nhà ở riêng lẻ", field: XD, level: "partial_online", authority: "commune", days: 15.0, fee: true, weight: 0.8, agency: None },
    Proc { code: "2.000505", name: "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam", field: LLTP, level: "full_online", authority: "province", days: 10.0, fee: true, weight: 1.5, agency: Some(("STP", "Sở Tư pháp")) },
];

/// What `generate` wrote.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Generated {
    pub dossiers: u64,
    pub lines: u64,
    pub malformed: u64,
    pub duplicates: u64,
    /// Portal sync records written to `dvcqg.ndjson`.
    pub portal_records: u64,
}

/// Parameters of the generator.
#[derive(Debug, Clone)]
pub struct Params {
    pub province: String,
    pub dossiers: u64,
    pub seed: u64,
    /// First and last local dates of receipt. The generator's "now" is the day after `to`:
    /// nothing happens after it, so recent dossiers are still in progress.
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            province: "31".into(),
            dossiers: 10_000,
            seed: 1,
            // the territory of 1 July 2025; ~17 months up to the week before "today"
            from: NaiveDate::from_ymd_opt(2025, 7, 1).unwrap_or_default(),
            to: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default(),
        }
    }
}

fn rfc(t: i64) -> String {
    let d = DateTime::<Utc>::from_timestamp_micros(t + 7 * 3600 * MICROS).unwrap_or_default();
    format!("{}+07:00", d.naive_utc().format("%Y-%m-%dT%H:%M:%S"))
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for it in items {
        x -= weight(it);
        if x <= 0.0 {
            return it;
        }
    }
    &items[items.len() - 1]
}

/// Generate `procedures.csv`, `events.ndjson` and `dvcqg.ndjson` into `out`.
pub fn generate(out: &Path, p: &Params) -> Result<Generated, IngestError> {
    generate_with(out, p, &|_| {})
}

/// Lines of canonical events shuffled together (out-of-order delivery window).
const WINDOW: usize = 500;
/// Portal records are shuffled in blocks of this many (swaps reach back up to 50).
const PORTAL_BLOCK: usize = 1000;

/// The messy delivery of the events, streamed: lines are written in windows of
/// [`WINDOW`], each shuffled, with 1 % duplicates and one malformed line in 2,000. Only
/// one window is in memory, so memory does not grow with the number of dossiers. It has
/// its own random stream, so the dossiers themselves depend only on the seed.
struct Delivery<W: Write> {
    out: W,
    rng: StdRng,
    window: Vec<String>,
    /// Lines generated (before duplicates and malformed lines).
    generated: u64,
    written: u64,
    duplicates: u64,
    malformed: u64,
}

impl<W: Write> Delivery<W> {
    fn push(&mut self, line: String) -> std::io::Result<()> {
        self.generated += 1;
        self.window.push(line);
        if self.window.len() >= WINDOW {
            self.flush_window()?;
        }
        Ok(())
    }

    fn flush_window(&mut self) -> std::io::Result<()> {
        if self.window.is_empty() {
            return Ok(());
        }
        // duplicates: 1 % of the generated lines, re-delivered within the window
        let n = self.window.len();
        while self.duplicates < self.generated / 100 {
            let l = self.window[self.rng.random_range(0..n)].clone();
            self.window.push(l);
            self.duplicates += 1;
        }
        for i in (1..self.window.len()).rev() {
            let j = self.rng.random_range(0..=i);
            self.window.swap(i, j);
        }
        for l in std::mem::take(&mut self.window) {
            self.out.write_all(l.as_bytes())?;
            self.out.write_all(b"\n")?;
            self.written += 1;
            if self.written.is_multiple_of(2000) {
                self.write_malformed(&l)?;
            }
        }
        Ok(())
    }

    fn write_malformed(&mut self, line: &str) -> std::io::Result<()> {
        let bad = match self.malformed % 5 {
            0 => {
                let mut cut = line.len() / 2;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line[..cut].to_string()
            }
            1 => line.replacen("\"type\":\"", "\"type\":\"x_", 1),
            2 => line.replacen("+07:00", "+07:00:99", 1),
            3 => r#"{"source":"HP MOTCUA","dossier_id":"?","type":"received","at":"2026-01-01T08:00:00+07:00"}"#.to_string(),
            _ => "không phải JSON".to_string(),
        };
        self.out.write_all(bad.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.malformed += 1;
        Ok(())
    }

    /// Write what is left; the counts are final.
    fn finish(mut self) -> std::io::Result<Delivery<W>> {
        self.flush_window()?;
        if self.malformed == 0 {
            // at least one, as a short file would otherwise have none
            self.out.write_all("không phải JSON\n".as_bytes())?;
            self.malformed = 1;
        }
        self.out.flush()?;
        Ok(self)
    }
}

/// The portal's sync records, streamed: out of order within blocks of [`PORTAL_BLOCK`].
struct PortalOut<W: Write> {
    out: W,
    rng: StdRng,
    block: Vec<String>,
    written: u64,
}

impl<W: Write> PortalOut<W> {
    fn push(&mut self, rec: String) -> std::io::Result<()> {
        self.block.push(rec);
        if self.block.len() >= PORTAL_BLOCK {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> std::io::Result<()> {
        for i in (1..self.block.len()).rev() {
            let j = i.saturating_sub(self.rng.random_range(0..50));
            self.block.swap(i, j);
        }
        for r in std::mem::take(&mut self.block) {
            self.out.write_all(r.as_bytes())?;
            self.out.write_all(b"\n")?;
            self.written += 1;
        }
        Ok(())
    }

    /// Write what is left; the number of records written.
    fn finish(mut self) -> std::io::Result<u64> {
        self.flush_block()?;
        self.out.flush()?;
        Ok(self.written)
    }
}

/// [`generate`], streaming to the files (memory independent of the number of dossiers),
/// calling `progress` with the number of dossiers done about every 10,000.
pub fn generate_with(
    out: &Path,
    p: &Params,
    progress: &dyn Fn(u64),
) -> Result<Generated, IngestError> {
    let io =
        |e: std::io::Error| IngestError::Input(format!("không ghi được {}: {e}", out.display()));
    std::fs::create_dir_all(out).map_err(io)?;
    let cal = Calendar::new(&CalendarConfig::default())?;
    let mut rng = StdRng::seed_from_u64(p.seed);
    let communes: Vec<_> = refdata::communes()?
        .into_iter()
        .filter(|c| c.province_code == p.province)
        .collect();
    if communes.is_empty() {
        return Err(IngestError::Input(format!(
            "không có mã tỉnh {:?}",
            p.province
        )));
    }
    let all_communes = refdata::communes()?;
    // busy and quiet communes
    let weights: Vec<f64> = communes
        .iter()
        .map(|_| (rng.random::<f64>() * 2.5).exp())
        .collect();

    // catalog
    let mut cat = csv::Writer::from_path(out.join("procedures.csv"))
        .map_err(|e| IngestError::Input(e.to_string()))?;
    cat.write_record(crate::procedures::COLUMNS)
        .map_err(|e| IngestError::Input(e.to_string()))?;
    for (i, pr) in CATALOG.iter().enumerate() {
        let published = NaiveDate::from_ymd_opt(2025, 7, 1 + (i % 20) as u32).unwrap_or_default();
        let due = NaiveDate::from_ymd_opt(2025, 7, 10).unwrap_or_default();
        cat.write_record([
            pr.code.to_string(),
            pr.name.to_string(),
            pr.field.0.to_string(),
            pr.field.1.to_string(),
            pr.level.to_string(),
            pr.authority.to_string(),
            pr.days.to_string(),
            pr.fee.to_string(),
            (pr.fee && i % 3 != 0).to_string(),
            published.to_string(),
            due.to_string(),
            (i % 7 != 3).to_string(),
        ])
        .map_err(|e| IngestError::Input(e.to_string()))?;
    }
    cat.flush().map_err(io)?;

    let start = cal.local_midnight(p.from);
    let now = cal.local_midnight(p.to) + DAY_MICROS;
    let span_days = ((now - start) / DAY_MICROS).max(1);
    let ministry_from = cal.local_midnight(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap_or_default());
    let prov = p.province.as_str();
    let buf = |name: &str| {
        std::fs::File::create(out.join(name)).map(|f| std::io::BufWriter::with_capacity(1 << 20, f))
    };
    let mut lines = Delivery {
        out: buf("events.ndjson").map_err(io)?,
        rng: StdRng::seed_from_u64(p.seed ^ 0x6465_6c69_7665_7279),
        window: Vec::with_capacity(2 * WINDOW),
        generated: 0,
        written: 0,
        duplicates: 0,
        malformed: 0,
    };
    let mut portal = PortalOut {
        out: buf("dvcqg.ndjson").map_err(io)?,
        rng: StdRng::seed_from_u64(p.seed ^ 0x706f_7274_616c),
        block: Vec::with_capacity(PORTAL_BLOCK + 64),
        written: 0,
    };
    let minute = 60 * MICROS;

    for n in 0..p.dossiers {
        if n % 10_000 == 0 && n > 0 {
            progress(n);
        }
        let pr = pick(&mut rng, CATALOG, |c| c.weight);
        let ci = {
            let total: f64 = weights.iter().sum();
            let mut x = rng.random::<f64>() * total;
            let mut idx = 0;
            for (i, w) in weights.iter().enumerate() {
                x -= w;
                if x <= 0.0 {
                    idx = i;
                    break;
                }
            }
            idx
        };
        let commune = &communes[ci];
        let online = rng.random::<f64>() < if pr.level == "full_online" { 0.97 } else { 0.9 };
        let channel = if online {
            "online"
        } else if rng.random::<f64>() < 0.03 {
            "postal"
        } else {
            "in_person"
        };
        // submission instant: online any time of day, in person during office hours
        let day = start + rng.random_range(0..span_days) * DAY_MICROS;
        let submitted = if online {
            day + rng.random_range(0..24 * 60) * minute
        } else {
            let w = cal.add_working_micros(day, 1).unwrap_or(day);
            w + rng.random_range(0..6 * 60) * minute
        };
        // received: usually the next working instant (+ a little), sometimes logged at once
        let received = if !online || rng.random::<f64>() < 0.1 {
            submitted
        } else {
            cal.add_working_micros(submitted, rng.random_range(1..90) * minute)
                .unwrap_or(submitted)
        };
        if received >= now {
            continue;
        }
        let yymmdd = cal.local_date(received).format("%y%m%d");
        let dossier_id = format!("H{prov}.{}-{yymmdd}-{n:06}", commune.commune_code);
        let source = if received >= ministry_from && pr.field.0 == "HT" {
            "bo-tuphap"
        } else if received >= ministry_from && pr.field.0 == "HKD" {
            "bo-dkkd"
        } else {
            "hp-motcua"
        };
        let (agency_code, agency_name) = match pr.agency {
            Some((c, name)) => (format!("{prov}.{c}"), name.to_string()),
            None => (
                format!("{prov}.{}", commune.commune_code),
                format!("UBND {}", commune.commune_name),
            ),
        };
        let applicant = if rng.random::<f64>() < 0.05 {
            &all_communes[rng.random_range(0..all_communes.len())]
        } else {
            commune
        };
        let allowed = (pr.days * cal.day_len_micros() as f64) as i64;
        let due = cal.add_working_micros(received, allowed);
        let due_reported = rng.random::<f64>() < 0.88;

        let mut evs: Vec<Map<String, Value>> = Vec::new();
        let base = |t: &str, at: i64| {
            let mut m = Map::new();
            m.insert("source".into(), json!(source));
            m.insert("dossier_id".into(), json!(dossier_id));
            m.insert("type".into(), json!(t));
            m.insert("at".into(), json!(rfc(at)));
            m
        };
        let full = |mut m: Map<String, Value>| {
            m.insert("procedure_code".into(), json!(pr.code));
            m.insert("procedure_name".into(), json!(pr.name));
            m.insert("procedure_level".into(), json!(pr.level));
            m.insert("field_code".into(), json!(pr.field.0));
            m.insert("field_name".into(), json!(pr.field.1));
            m.insert("agency_code".into(), json!(agency_code));
            m.insert("agency_name".into(), json!(agency_name));
            m.insert("province_code".into(), json!(prov));
            m.insert("commune_code".into(), json!(commune.commune_code));
            m.insert("channel".into(), json!(channel));
            m.insert(
                "applicant_province_code".into(),
                json!(applicant.province_code),
            );
            m.insert(
                "applicant_commune_code".into(),
                json!(applicant.commune_code),
            );
            m
        };
        if online {
            evs.push(full(base("submitted", submitted)));
        }
        // rejected at receipt (never received)
        if rng.random::<f64>() < 0.01 {
            let mut m = full(base("rejected", received));
            m.insert(
                "attrs".into(),
                json!({"ly_do": "Hồ sơ không thuộc thẩm quyền"}),
            );
            evs.push(m);
            emit(&mut lines, evs).map_err(io)?;
            continue;
        }
        let mut rec = full(base("received", received));
        if due_reported {
            if let Some(d) = due {
                rec.insert("due_at".into(), json!(rfc(d)));
            }
        }
        rec.insert("digitized".into(), json!(rng.random::<f64>() < 0.8));
        rec.insert("data_reused".into(), json!(rng.random::<f64>() < 0.4));
        rec.insert("vneid".into(), json!(online && rng.random::<f64>() < 0.5));
        // 0.3 % of dossiers lost their "received" event in the source system
        if rng.random::<f64>() >= 0.003 {
            evs.push(rec);
        } else {
            evs.push(full(base("processing", received)));
        }
        let mut t = received + rng.random_range(5..120) * minute;
        evs.push(base("processing", t));
        // supplement rounds
        let mut pause_work = 0;
        let mut ended_open = false;
        let r = rng.random::<f64>();
        let rounds = if r < 0.003 {
            2
        } else if r < 0.035 {
            1
        } else {
            0
        };
        for _ in 0..rounds {
            t = cal
                .add_working_micros(t, rng.random_range(30..(allowed / minute).max(31)) * minute)
                .unwrap_or(t);
            if t >= now {
                break;
            }
            evs.push(base("supplement_requested", t));
            if rng.random::<f64>() < 0.8 {
                let back =
                    t + rng.random_range(1..6) * DAY_MICROS + rng.random_range(0..600) * minute;
                if back >= now {
                    ended_open = true;
                    break;
                }
                pause_work += cal.working_micros(t, back).unwrap_or(0);
                let mut m = base("supplement_received", back);
                if due_reported {
                    if let Some(d) = due.and_then(|d| cal.add_working_micros(d, pause_work)) {
                        m.insert("due_at".into(), json!(rfc(d)));
                    }
                }
                evs.push(m);
                t = back;
            } else {
                ended_open = true;
                break;
            }
        }
        // end
        let fate = rng.random::<f64>();
        let spent = if fate < 0.04 {
            // late: beyond the allowed time by up to 3 days
            allowed
                + pause_work
                + rng.random_range(30..(3 * cal.day_len_micros() / minute)) * minute
        } else {
            let frac = rng.random::<f64>().powf(2.0) * 0.95;
            ((allowed as f64 * frac) as i64).max(20 * minute) + pause_work
        };
        let end_t = cal
            .add_working_micros(received, spent)
            .unwrap_or(received + spent);
        let end_type = if ended_open {
            if rng.random::<f64>() < 0.5 {
                Some("withdrawn")
            } else {
                None
            }
        } else if fate > 0.995 {
            Some("withdrawn")
        } else if fate > 0.993 {
            Some("stopped")
        } else {
            Some("resolved")
        };
        if let Some(kind) = end_type {
            let end_t = if ended_open {
                t + rng.random_range(1..10) * DAY_MICROS
            } else {
                end_t.max(t + minute)
            };
            if end_t < now {
                let mut m = base(kind, end_t);
                m.insert(
                    "result_digitized".into(),
                    json!(kind == "resolved" && rng.random::<f64>() < 0.7),
                );
                if pr.fee {
                    m.insert(
                        "paid_online".into(),
                        json!(online && rng.random::<f64>() < 0.6),
                    );
                }
                evs.push(m);
                if kind == "resolved" && rng.random::<f64>() < 0.85 {
                    let ret = end_t + rng.random_range(10..3 * 24 * 60) * minute;
                    if ret < now {
                        evs.push(base("returned", ret));
                    }
                }
            }
        }
        // the national portal receives about 60 % of dossiers, as sync records resent
        // whole at every status change (some twice)
        if rng.random::<f64>() < 0.6 {
            let channel_code = match channel {
                "online" => "2",
                "postal" => "3",
                _ => "1",
            };
            let base = json!({
                "MaHoSo": dossier_id, "MaTTHC": pr.code, "TenTTHC": pr.name, "MaLinhVuc": pr.field.0,
                "TenLinhVuc": pr.field.1, "KenhThucHien": channel_code, "DonViXuLy": agency_name,
                "NgayNopHoSo": portal_time(submitted), "NgayTiepNhan": portal_time(received),
                "NgayHenTra": due.map(portal_time).unwrap_or_default(), "NgayKetThucXuLy": "", "NgayTra": "",
                "DuocThanhToanTrucTuyen": "0", "HoSoCoThanhPhanSoHoa": "1",
                "QuaTrinhXuLy": [], "DanhSachHoSoBoSung": []
            });
            for rec in portal_records(&base, &evs, due, &cal) {
                let copies = if rng.random::<f64>() < 0.02 { 2 } else { 1 };
                for _ in 0..copies {
                    portal.push(rec.clone()).map_err(io)?;
                }
            }
        }
        emit(&mut lines, evs).map_err(io)?;
    }
    progress(p.dossiers);

    let lines = lines.finish().map_err(io)?;
    let portal_records = portal.finish().map_err(io)?;
    Ok(Generated {
        dossiers: p.dossiers,
        lines: lines.written + lines.malformed,
        malformed: lines.malformed,
        duplicates: lines.duplicates,
        portal_records,
    })
}

/// Local `yyyyMMddHHmmss`, as the portal's senders write dates.
fn portal_time(t: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(t + 7 * 3600 * MICROS)
        .unwrap_or_default()
        .naive_utc()
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// One sync record per status change of a dossier, each carrying the steps so far.
fn portal_records(
    base: &Value,
    evs: &[Map<String, Value>],
    due: Option<i64>,
    cal: &Calendar,
) -> Vec<String> {
    let code = |t: &str| match t {
        "received" => Some(2),
        "processing" => Some(4),
        "supplement_requested" => Some(5),
        "supplement_received" => Some(4),
        "resolved" => Some(9),
        "returned" => Some(10),
        "withdrawn" => Some(7),
        "stopped" => Some(8),
        "rejected" => Some(3),
        _ => None,
    };
    let at = |m: &Map<String, Value>| {
        m.get("at")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp_micros())
    };
    let mut steps: Vec<(i64, &str)> = evs
        .iter()
        .filter_map(|m| Some((at(m)?, m.get("type")?.as_str()?)))
        .filter(|(_, t)| code(t).is_some())
        .collect();
    steps.sort();
    let mut out = Vec::new();
    let mut rec = base.clone();
    let mut progress: Vec<Value> = Vec::new();
    let mut rounds: Vec<Value> = Vec::new();
    let mut due_now = due;
    let mut pause = 0;
    for (t, kind) in steps {
        let Some(status) = code(kind) else { continue };
        progress.push(json!({"ThoiDiemXuLy": portal_time(t), "TrangThai": status.to_string(), "NguoiXuLy": "Chuyên viên", "NoiDungXuLy": kind}));
        match kind {
            "supplement_requested" => rounds.push(json!({"NgayBoSung": portal_time(t), "NgayTiepNhanBoSung": "", "NgayHenTraMoi": null})),
            "supplement_received" => {
                if let Some(open) = rounds.iter_mut().rev().find(|r| r["NgayTiepNhanBoSung"] == "") {
                    let req = open["NgayBoSung"].as_str().and_then(|s| NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok());
                    if let Some(req) = req {
                        let req = req.and_utc().timestamp_micros() - 7 * 3600 * MICROS;
                        pause += cal.working_micros(req, t).unwrap_or(0);
                    }
                    due_now = due.and_then(|d| cal.add_working_micros(d, pause));
                    open["NgayTiepNhanBoSung"] = json!(portal_time(t));
                    open["NgayHenTraMoi"] = json!(due_now.map(portal_time));
                }
            }
            "resolved" | "withdrawn" | "stopped" => rec["NgayKetThucXuLy"] = json!(portal_time(t)),
            "returned" => rec["NgayTra"] = json!(portal_time(t)),
            _ => {}
        }
        rec["TrangThaiHoSo"] = json!(status.to_string());
        rec["NgayHenTra"] = json!(due_now.map(portal_time).unwrap_or_default());
        rec["QuaTrinhXuLy"] = json!(progress);
        rec["DanhSachHoSoBoSung"] = json!(rounds);
        out.push(rec.to_string());
    }
    out
}

fn emit<W: Write>(lines: &mut Delivery<W>, evs: Vec<Map<String, Value>>) -> std::io::Result<()> {
    for m in evs {
        lines.push(Value::Object(m).to_string())?;
    }
    Ok(())
}
