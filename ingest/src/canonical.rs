//! Canonical NDJSON events (docs/contract.md §1): parse, validate, derive missing event ids.

use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Asia::Ho_Chi_Minh;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use giamsat_warehouse::event::{Event, EventType, DIM_COLUMNS, FLAG_COLUMNS};

const KNOWN: [&str; 7] = [
    "source",
    "event_id",
    "dossier_id",
    "feedback_id",
    "type",
    "at",
    "due_at",
];

/// Parse an instant: RFC 3339, or a local date-time (Asia/Ho_Chi_Minh) without offset.
pub fn parse_instant(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ho_Chi_Minh
                .from_local_datetime(&n)
                .single()
                .map(|t| t.timestamp_micros())
                .ok_or_else(|| format!("thời điểm không tồn tại theo giờ địa phương: {s:?}"));
        }
    }
    Err(format!("thời điểm không đúng RFC 3339: {s:?}"))
}

/// `[a-z0-9-]{1,64}` (docs/contract.md §1).
pub fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("trường {key} phải là chuỗi, nhận được {other}")),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!(
            "trường {key} phải là true/false, nhận được {other}"
        )),
    }
}

/// A short stable digest of a key (idempotency keys).
pub fn key_digest(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

/// Content-derived id: the same record (same normalised content) gives the same id.
pub fn content_id(e: &Event) -> String {
    let text = if e.event_id.is_empty() {
        serde_json::to_string(e)
    } else {
        let mut copy = e.clone();
        copy.event_id.clear();
        serde_json::to_string(&copy)
    }
    .unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    format!("h-{}", hex::encode(&digest[..16]))
}

/// Parse one canonical record. `default_source` fills a missing `source` (for HTTP push).
pub fn parse_event(line: &[u8], default_source: Option<&str>) -> Result<Event, String> {
    let text = std::str::from_utf8(line).map_err(|_| "dòng không phải UTF-8".to_string())?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("JSON sai: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("bản ghi phải là một đối tượng JSON".into());
    };
    let source = match (opt_string(&obj, "source")?, default_source) {
        (Some(s), _) => s,
        (None, Some(d)) => d.to_string(),
        (None, None) => return Err("thiếu trường source".into()),
    };
    if !valid_source(&source) {
        return Err(format!(
            "source không hợp lệ (cần [a-z0-9-]{{1,64}}): {source:?}"
        ));
    }
    let type_str = opt_string(&obj, "type")?.ok_or("thiếu trường type")?;
    let kind =
        EventType::parse(&type_str).ok_or_else(|| format!("type không hợp lệ: {type_str:?}"))?;
    let at = parse_instant(&opt_string(&obj, "at")?.ok_or("thiếu trường at")?)?;
    let due_at = opt_string(&obj, "due_at")?
        .map(|s| parse_instant(&s))
        .transpose()?;
    let dossier_id = opt_string(&obj, "dossier_id")?;
    let feedback_id = opt_string(&obj, "feedback_id")?;
    if kind.is_feedback() {
        if feedback_id.is_none() {
            return Err("sự kiện phản ánh thiếu feedback_id".into());
        }
    } else if dossier_id.is_none() {
        return Err("sự kiện hồ sơ thiếu dossier_id".into());
    }
    let dims = DIM_COLUMNS
        .iter()
        .map(|c| opt_string(&obj, c))
        .collect::<Result<Vec<_>, _>>()?;
    for (col, allowed) in [
        ("channel", &["online", "in_person", "postal"][..]),
        (
            "procedure_level",
            &["full_online", "partial_online", "offline"][..],
        ),
    ] {
        let i = DIM_COLUMNS.iter().position(|c| *c == col).unwrap_or(0);
        if let Some(v) = &dims[i] {
            if !allowed.contains(&v.as_str()) {
                return Err(format!("{col} không hợp lệ: {v:?}"));
            }
        }
    }
    let flags = FLAG_COLUMNS
        .iter()
        .map(|c| opt_bool(&obj, c))
        .collect::<Result<Vec<_>, _>>()?;
    // everything else is kept verbatim in attrs
    let mut attrs = match obj.get("attrs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(format!("attrs phải là đối tượng JSON, nhận được {other}")),
    };
    for (k, v) in &obj {
        if k != "attrs"
            && !KNOWN.contains(&k.as_str())
            && !DIM_COLUMNS.contains(&k.as_str())
            && !FLAG_COLUMNS.contains(&k.as_str())
        {
            attrs.insert(k.clone(), v.clone());
        }
    }
    let mut e = Event {
        source,
        event_id: opt_string(&obj, "event_id")?.unwrap_or_default(),
        dossier_id,
        feedback_id,
        event_type: kind.as_str().to_string(),
        at,
        due_at,
        attrs: if attrs.is_empty() {
            None
        } else {
            Some(Value::Object(attrs).to_string())
        },
        ..Default::default()
    };
    for (slot, v) in e.dims_mut().into_iter().zip(dims) {
        *slot = v;
    }
    for (slot, v) in e.flags_mut().into_iter().zip(flags) {
        *slot = v;
    }
    if e.event_id.is_empty() {
        e.event_id = content_id(&e);
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_example() {
        let line = r#"{"source":"hp-motcua","dossier_id":"H31.26-260105-0001","type":"received",
 "at":"2026-01-05T08:15:00+07:00","due_at":"2026-01-09T17:00:00+07:00",
 "procedure_code":"1.001612","procedure_name":"Chứng thực bản sao từ bản chính",
 "procedure_level":"partial_online","field_code":"CT","field_name":"Chứng thực",
 "agency_code":"31.11311","agency_name":"UBND phường Hồng Bàng",
 "province_code":"31","commune_code":"11311","channel":"online",
 "applicant_province_code":"31","applicant_commune_code":"11737",
 "paid_online":true,"digitized":true,"data_reused":false,"so_bien_nhan":"BN-1"}"#;
        let e = parse_event(line.replace('\n', "").as_bytes(), None).expect("valid");
        assert_eq!(e.at, parse_instant("2026-01-05T01:15:00Z").expect("t"));
        assert_eq!(e.commune_code.as_deref(), Some("11311"));
        assert!(e.event_id.starts_with("h-"));
        assert_eq!(e.attrs.as_deref(), Some(r#"{"so_bien_nhan":"BN-1"}"#));
    }

    #[test]
    fn local_time_without_offset_is_vietnam_time() {
        assert_eq!(
            parse_instant("2026-01-05T08:15:00").expect("t"),
            parse_instant("2026-01-05T08:15:00+07:00").expect("t")
        );
    }

    #[test]
    fn same_content_same_id_and_bad_records_have_reasons() {
        let a = parse_event(br#"{"source":"s","dossier_id":"D","type":"received","at":"2026-01-05T08:15:00+07:00"}"#, None)
            .expect("ok");
        let b = parse_event(
            br#"{"type":"received","dossier_id":"D","source":"s",  "at":"2026-01-05T01:15:00Z"}"#,
            None,
        )
        .expect("ok");
        assert_eq!(a.event_id, b.event_id);
        for (bad, why) in [
            (&br#"{"source":"S!","dossier_id":"D","type":"received","at":"2026-01-05T08:15:00Z"}"#[..], "source"),
            (br#"{"source":"s","dossier_id":"D","type":"nope","at":"2026-01-05T08:15:00Z"}"#, "type"),
            (br#"{"source":"s","dossier_id":"D","type":"received","at":"2026-13-45"}"#, "RFC"),
            (br#"{"source":"s","type":"received","at":"2026-01-05T08:15:00Z"}"#, "dossier_id"),
            (br#"{"source":"s","dossier_id":"D","type":"received","at":"2026-01-05T08:15:00Z","channel":"fax"}"#, "channel"),
            (br#"{"source":"s","dossier_id":"D","type":"received","at":"2026-01-05T08:15:00Z","commune_code":11311}"#, "chuỗi"),
            (br#"{"source":"s","dossier_id":"D""#, "JSON"),
            (b"[1,2]", "đối tượng"),
        ] {
            let err = parse_event(bad, None).expect_err("must fail");
            assert!(err.contains(why), "{err} should mention {why}");
        }
    }
}
