//! The national portal's dossier sync records (docs/contract.md §1 "dvcqg", with the
//! table of the fields read) turned into canonical events.
//!
//! Accepted shapes: one JSON value per line, or the whole input as one JSON value; a
//! value is a record, an array of records, or an envelope `{"service": "DongBoHoSoMC" |
//! "CapNhatTienDoHoSoMC", "data": [...]}`. A record is a dossier record (it has
//! `TrangThaiHoSo`) or a progress record (`ThoiDiemXuLy` + `TrangThai`).
//!
//! A dossier is resent whole at every status change, so the conversion is built to make
//! resends add nothing and order of arrival not matter:
//! * **life-cycle events** carry only `dossier_id`, `type` and `at`, with the id
//!   `dv-<hash(MaHoSo, type, at)>`: the implied `received` at `NgayTiepNhan` (any status
//!   from 2 on, except 3), every `QuaTrinhXuLy[]` step, every `DanhSachHoSoBoSung[]`
//!   round, and the end stated by the record (`NgayKetThucXuLy`, `NgayTra`, `NgayTuChoi`);
//! * one **status report** per record, a `processing` event at the instant of the
//!   record's current status (capped at its end), carrying the dimensions, the flags and
//!   `NgayHenTra` as `due_at`, with a content-derived id: a resend adds it only when
//!   something in it changed (a new status, a moved due date, a payment).
//!
//! Status codes are mapped as the table of docs/domain.md "Dossier life cycle" says,
//! literally: a sender that reports "Hoàn thành bổ sung" with code 5 produces a second
//! `supplement_requested` (a data-quality pattern to spot, not to correct silently).

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Asia::Ho_Chi_Minh;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use giamsat_warehouse::event::{Event, EventType};
use giamsat_warehouse::store::QuarantineRow;

use crate::{lines, Input};

/// Status code → canonical event type (docs/domain.md "Dossier life cycle").
pub fn status_type(code: u32) -> Option<EventType> {
    Some(match code {
        1 => EventType::Submitted,
        2 => EventType::Received,
        3 => EventType::Rejected,
        4 => EventType::Processing,
        5 => EventType::SupplementRequested,
        6 => EventType::FinancialObligation,
        7 => EventType::Withdrawn,
        8 => EventType::Stopped,
        9 => EventType::Resolved,
        10 => EventType::Returned,
        _ => return None,
    })
}

/// `yyyyMMddHHmmss` local time; `""`/null = none.
fn date(rec: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    let s = match rec.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(format!(
                "{key} phải là chuỗi ngày yyyyMMddHHmmss, nhận được {other}"
            ))
        }
    };
    let n = NaiveDateTime::parse_from_str(&s, "%Y%m%d%H%M%S")
        .map_err(|_| format!("{key} không đúng dạng yyyyMMddHHmmss: {s:?}"))?;
    Ho_Chi_Minh
        .from_local_datetime(&n)
        .single()
        .map(|t| Some(t.timestamp_micros()))
        .ok_or_else(|| format!("{key}: thời điểm không tồn tại: {s:?}"))
}

fn text(rec: &Map<String, Value>, key: &str) -> Option<String> {
    match rec.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn code(rec: &Map<String, Value>, key: &str) -> Result<Option<u32>, String> {
    match text(rec, key) {
        None => Ok(None),
        Some(s) => s
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("{key} phải là mã số: {s:?}")),
    }
}

fn flag(rec: &Map<String, Value>, key: &str) -> Option<bool> {
    text(rec, key).map(|s| s == "1")
}

fn hash_id(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    format!("dv-{}", hex::encode(&digest[..16]))
}

fn life(source: &str, dossier: &str, kind: EventType, at: i64) -> Event {
    Event {
        source: source.to_string(),
        event_id: hash_id(&[dossier, kind.as_str(), &at.to_string()]),
        dossier_id: Some(dossier.to_string()),
        event_type: kind.as_str().to_string(),
        at,
        ..Default::default()
    }
}

fn array<'a>(rec: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    rec.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A progress step (`QuaTrinhXuLy[]` entry or `CapNhatTienDoHoSoMC` record) → event;
/// `None` without `ThoiDiemXuLy` (a step is then skipped, a progress record refused).
fn progress(source: &str, dossier: &str, step: &Value) -> Result<Option<Event>, String> {
    let Some(step) = step.as_object() else {
        return Err("bước xử lý phải là đối tượng JSON".into());
    };
    let Some(at) = date(step, "ThoiDiemXuLy")? else {
        return Ok(None);
    };
    let status = code(step, "TrangThai")?.ok_or("bước xử lý thiếu TrangThai")?;
    let kind = status_type(status).ok_or_else(|| format!("TrangThai không hợp lệ: {status}"))?;
    Ok(Some(life(source, dossier, kind, at)))
}

/// Convert one dossier record.
pub fn dossier_record(source: &str, rec: &Map<String, Value>) -> Result<Vec<Event>, String> {
    let dossier = text(rec, "MaHoSo").ok_or("thiếu MaHoSo")?;
    let status = code(rec, "TrangThaiHoSo")?.ok_or("thiếu TrangThaiHoSo")?;
    let status_kind =
        status_type(status).ok_or_else(|| format!("TrangThaiHoSo không hợp lệ: {status}"))?;
    let received = date(rec, "NgayTiepNhan")?;
    let submitted = date(rec, "NgayNopHoSo")?;
    let due = date(rec, "NgayHenTra")?;
    let ended = date(rec, "NgayKetThucXuLy")?;
    let returned = date(rec, "NgayTra")?;
    let refused = date(rec, "NgayTuChoi")?;
    let mut out = Vec::new();
    if status >= 2 && status != 3 {
        let at = received.ok_or("hồ sơ từ trạng thái 2 trở đi phải có NgayTiepNhan")?;
        out.push(life(source, &dossier, EventType::Received, at));
    }
    if let Some(at) = submitted.or(if status == 1 { received } else { None }) {
        out.push(life(source, &dossier, EventType::Submitted, at));
    }
    for step in array(rec, "QuaTrinhXuLy") {
        if let Some(e) = progress(source, &dossier, step)? {
            out.push(e);
        }
    }
    for round in array(rec, "DanhSachHoSoBoSung") {
        let Some(round) = round.as_object() else {
            return Err("DanhSachHoSoBoSung phải là mảng đối tượng".into());
        };
        if let Some(at) = date(round, "NgayBoSung")? {
            out.push(life(source, &dossier, EventType::SupplementRequested, at));
        }
        if let Some(at) = date(round, "NgayTiepNhanBoSung")? {
            let mut e = life(source, &dossier, EventType::SupplementReceived, at);
            if let Some(d) = date(round, "NgayHenTraMoi")? {
                e.due_at = Some(d);
                e.event_id = hash_id(&[
                    &dossier,
                    "supplement_received",
                    &at.to_string(),
                    &d.to_string(),
                ]);
            }
            out.push(e);
        }
    }
    // the end the record states
    let end = match status {
        3 => refused.or(received).map(|t| (EventType::Rejected, t)),
        7 => ended.map(|t| (EventType::Withdrawn, t)),
        8 => ended.map(|t| (EventType::Stopped, t)),
        9 | 10 => ended.map(|t| (EventType::Resolved, t)),
        _ => None,
    };
    if let Some((k, t)) = end {
        out.push(life(source, &dossier, k, t));
    }
    if status == 10 {
        if let Some(t) = returned {
            out.push(life(source, &dossier, EventType::Returned, t));
        }
    }
    // the status report: when the current status was reached, capped at the record's end
    let latest_step = out
        .iter()
        .filter(|e| e.event_type == status_kind.as_str())
        .map(|e| e.at)
        .max();
    let status_at = match status {
        1 => submitted.or(received),
        2 => received,
        3 => refused.or(received),
        7..=9 => ended.or(latest_step),
        10 => ended.or(returned).or(latest_step),
        _ => latest_step
            .or_else(|| out.iter().map(|e| e.at).max())
            .or(received),
    };
    if let Some(at) = status_at {
        let channel = match text(rec, "KenhThucHien").as_deref() {
            Some("1") => Some("in_person"),
            Some("2") => Some("online"),
            Some("3") => Some("postal"),
            _ => None,
        };
        let results = array(rec, "DanhSachGiayToKetQua");
        let files = array(rec, "TaiLieuNop");
        let file_flag = |k: &str, vals: &[&str]| {
            files.iter().any(|f| {
                f.get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|v| vals.contains(&v))
            })
        };
        let mut attrs = Map::new();
        attrs.insert("TrangThaiHoSo".into(), json!(status.to_string()));
        for k in [
            "SoBienNhan",
            "NoiNopHoSo",
            "LoaiDoiTuong",
            "DuocThanhToanTrucTuyen",
        ] {
            if let Some(v) = text(rec, k) {
                attrs.insert(k.into(), json!(v));
            }
        }
        let mut e = Event {
            source: source.to_string(),
            dossier_id: Some(dossier.clone()),
            event_type: EventType::Processing.as_str().to_string(),
            at,
            due_at: due,
            procedure_code: text(rec, "MaTTHC"),
            procedure_name: text(rec, "TenTTHC"),
            field_code: text(rec, "MaLinhVuc"),
            field_name: text(rec, "TenLinhVuc"),
            agency_name: text(rec, "DonViXuLy"),
            channel: channel.map(str::to_string),
            paid_online: text(rec, "DuocThanhToanTrucTuyen").map(|v| v == "1" || v == "2"),
            digitized: flag(rec, "HoSoCoThanhPhanSoHoa")
                .or_else(|| (!files.is_empty()).then(|| file_flag("DuocSoHoa", &["1"]))),
            result_digitized: (!results.is_empty()).then(|| {
                results.iter().any(|r| {
                    r.get("DuongDanTepTinKetQua")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                })
            }),
            data_reused: (!files.is_empty()).then(|| {
                file_flag("DuocTaiSuDung", &["1", "2"]) || file_flag("DuocLayTuKhoDMQG", &["1"])
            }),
            vneid: flag(rec, "TaiKhoanDuocXacThucVoiVNeID"),
            attrs: Some(Value::Object(attrs).to_string()),
            ..Default::default()
        };
        e.event_id = crate::canonical::content_id(&e).replacen("h-", "dv-s-", 1);
        out.push(e);
    }
    // nothing to place in time (status 1 or 3 without any date): refused, not dropped
    if out.is_empty() {
        return Err(format!(
            "hồ sơ trạng thái {status} không có ngày nào để đặt thời điểm \
             (NgayNopHoSo, NgayTiepNhan, NgayTuChoi, QuaTrinhXuLy)"
        ));
    }
    Ok(out)
}

fn is_progress(rec: &Map<String, Value>) -> bool {
    !rec.contains_key("TrangThaiHoSo") && rec.contains_key("ThoiDiemXuLy")
}

/// Convert one JSON value (record, array, envelope) into events; errors are per record.
/// Events of one record, or why it was refused with its original bytes.
type RecordResult = Result<Vec<Event>, (String, Vec<u8>)>;

fn value_events(source: &str, v: &Value, out: &mut Vec<RecordResult>) {
    match v {
        Value::Array(items) => {
            for item in items {
                value_events(source, item, out);
            }
        }
        Value::Object(obj) if obj.contains_key("data") && obj.contains_key("service") => {
            match (obj.get("service").and_then(Value::as_str), obj.get("data")) {
                (Some("DongBoHoSoMC" | "CapNhatTienDoHoSoMC"), Some(data)) => {
                    value_events(source, data, out)
                }
                (s, _) => out.push(Err((
                    format!("service không được hỗ trợ: {s:?}"),
                    v.to_string().into_bytes(),
                ))),
            }
        }
        Value::Object(obj) => {
            let r = if is_progress(obj) {
                match text(obj, "MaHoSo") {
                    None => Err("bản ghi tiến độ thiếu MaHoSo".to_string()),
                    Some(d) => match progress(source, &d, v) {
                        Ok(Some(e)) => Ok(vec![e]),
                        Ok(None) => Err("bản ghi tiến độ thiếu ThoiDiemXuLy".to_string()),
                        Err(e) => Err(e),
                    },
                }
            } else {
                dossier_record(source, obj)
            };
            out.push(r.map_err(|e| (e, v.to_string().into_bytes())));
        }
        other => out.push(Err((
            "bản ghi phải là đối tượng JSON".into(),
            other.to_string().into_bytes(),
        ))),
    }
}

/// Records already read as JSON values (elements of an array or of an envelope's
/// `data`, read in chunks by the streaming reader), all attributed to `line` of `input`.
/// `service` is the envelope's service, when the values came from one.
pub fn parse_values(
    source: &str,
    input: &str,
    line: i64,
    service: Option<&str>,
    values: &[Value],
) -> (Vec<Event>, Vec<QuarantineRow>) {
    let mut results = Vec::new();
    match service {
        None | Some("DongBoHoSoMC" | "CapNhatTienDoHoSoMC") => {
            for v in values {
                value_events(source, v, &mut results);
            }
        }
        Some(s) => {
            for v in values {
                results.push(Err((
                    format!("service không được hỗ trợ: {s:?}"),
                    v.to_string().into_bytes(),
                )));
            }
        }
    }
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for r in results {
        match r {
            Ok(evs) => good.extend(evs),
            Err((reason, original)) => bad.push(QuarantineRow {
                source: Some(source.to_string()),
                input: input.to_string(),
                line,
                reason,
                original,
            }),
        }
    }
    (good, bad)
}

/// Parse dvcqg inputs into events and quarantined records.
pub fn parse(inputs: &[Input], source: &str) -> (Vec<Event>, Vec<QuarantineRow>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for input in inputs {
        let mut push = |line: i64, results: Vec<RecordResult>| {
            for r in results {
                match r {
                    Ok(evs) => good.extend(evs),
                    Err((reason, original)) => bad.push(QuarantineRow {
                        source: Some(source.to_string()),
                        input: input.name.clone(),
                        line,
                        reason,
                        original,
                    }),
                }
            }
        };
        // the whole input as one JSON value (a pretty-printed array or envelope) …
        if let Ok(v) = serde_json::from_slice::<Value>(&input.bytes) {
            let mut results = Vec::new();
            value_events(source, &v, &mut results);
            push(1, results);
            continue;
        }
        // … or one JSON value per line
        for (no, line) in lines(&input.bytes) {
            match serde_json::from_slice::<Value>(line) {
                Ok(v) => {
                    let mut results = Vec::new();
                    value_events(source, &v, &mut results);
                    push(no, results);
                }
                Err(e) => push(no, vec![Err((format!("JSON sai: {e}"), line.to_vec()))]),
            }
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: &str, extra: Value) -> Value {
        let mut base = json!({
            "MaHoSo": "000.00.31.H31-260105-0001", "MaTTHC": "1.001193", "TenTTHC": "Đăng ký khai sinh",
            "MaLinhVuc": "HT", "TenLinhVuc": "Hộ tịch", "KenhThucHien": "2", "NgayTiepNhan": "20260105081500",
            "NgayHenTra": "20260106081500", "TrangThaiHoSo": status, "NgayKetThucXuLy": "", "NgayTra": "",
            "DonViXuLy": "UBND phường Hồng Bàng", "DuocThanhToanTrucTuyen": "0", "QuaTrinhXuLy": []
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    }

    fn events(v: &Value) -> Vec<Event> {
        let input = Input {
            name: "t".into(),
            bytes: v.to_string().into_bytes(),
        };
        let (good, bad) = parse(&[input], "dvcqg");
        assert!(
            bad.is_empty(),
            "{:?}",
            bad.iter().map(|b| &b.reason).collect::<Vec<_>>()
        );
        good
    }

    #[test]
    fn a_resolved_record_implies_its_reception() {
        let e = events(&rec("9", json!({"NgayKetThucXuLy": "20260105160000"})));
        let kinds: Vec<&str> = e.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(kinds, vec!["received", "resolved", "processing"]);
        let report = &e[2];
        assert_eq!(report.at, e[1].at, "the status report sits at the end");
        assert_eq!(report.channel.as_deref(), Some("online"));
        assert_eq!(report.paid_online, Some(false));
        assert!(report.due_at.is_some());
    }

    #[test]
    fn envelope_array_and_bad_dates() {
        let env = json!({"service": "DongBoHoSoMC", "data": [rec("2", json!({})), rec("4", json!({"NgayTiepNhan": "2026-01-05"}))]});
        let input = Input {
            name: "t".into(),
            bytes: env.to_string().into_bytes(),
        };
        let (good, bad) = parse(&[input], "dvcqg");
        assert_eq!(
            good.len(),
            2,
            "received + status report of the first record"
        );
        assert_eq!(bad.len(), 1);
        assert!(bad[0].reason.contains("NgayTiepNhan"), "{}", bad[0].reason);
        let progress = json!({"service": "CapNhatTienDoHoSoMC", "data": [
            {"MaHoSo": "X", "ThoiDiemXuLy": "20260105090000", "TrangThai": "5", "NoiDungXuLy": "Yêu cầu bổ sung"}]});
        let e = events(&progress);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_type, "supplement_requested");
    }

    #[test]
    fn a_record_without_any_date_is_quarantined_not_dropped() {
        let undated = [
            rec("1", json!({"NgayTiepNhan": ""})),
            rec("3", json!({"NgayTiepNhan": null})),
            json!({"MaHoSo": "X", "ThoiDiemXuLy": "", "TrangThai": "4"}),
        ];
        for v in undated {
            let input = Input {
                name: "t".into(),
                bytes: v.to_string().into_bytes(),
            };
            let (good, bad) = parse(&[input], "dvcqg");
            assert!(good.is_empty(), "{v}");
            assert_eq!(bad.len(), 1, "{v}");
            assert!(bad[0].reason.contains("Ngay") || bad[0].reason.contains("ThoiDiemXuLy"));
            assert_eq!(bad[0].original, v.to_string().into_bytes());
        }
    }
}
