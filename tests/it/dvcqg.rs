//! dvcqg resend test: one dossier sent whole at each of its status changes (some twice,
//! some out of order) yields exactly its events, and the same facts as one late sync.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use giamsat_ingest::{Format, IngestCounts};
use giamsat_warehouse::config::Config;
use giamsat_warehouse::store::Warehouse;

const ID: &str = "000.00.31.H31-260105-0001";

/// The record as the sender would send it after reaching step `n` (0-based) of:
/// 2 received 05/01 08:15 (due 07/01 17:00) → 4 processing 05/01 09:00 → 5 supplement
/// requested 06/01 10:00 → 4 supplement completed 08/01 09:00 (due moved to 09/01 17:00)
/// → 9 resolved 09/01 15:00 → 10 returned 12/01 10:00.
fn record(n: usize) -> Value {
    let steps = [
        ("2", "20260105081500"),
        ("4", "20260105090000"),
        ("5", "20260106100000"),
        ("4", "20260108090000"),
        ("9", "20260109150000"),
        ("10", "20260112100000"),
    ];
    let status = steps[n].0;
    let due = if n >= 3 {
        "20260109170000"
    } else {
        "20260107170000"
    };
    let mut rounds = Vec::new();
    if n >= 2 {
        let mut r = json!({"NgayBoSung": "20260106100000", "NoiDungBoSung": "Bổ sung bản sao CCCD", "NgayTiepNhanBoSung": "", "NgayHenTraMoi": null});
        if n >= 3 {
            r["NgayTiepNhanBoSung"] = json!("20260108090000");
            r["NgayHenTraMoi"] = json!("20260109170000");
        }
        rounds.push(r);
    }
    json!({
        "MaHoSo": ID, "MaTTHC": "1.000894", "TenTTHC": "Đăng ký kết hôn", "MaLinhVuc": "HT", "TenLinhVuc": "Hộ tịch",
        "KenhThucHien": "2", "NgayNopHoSo": "20260105081500", "NgayTiepNhan": "20260105081500", "NgayHenTra": due,
        "TrangThaiHoSo": status,
        "NgayKetThucXuLy": if n >= 4 { "20260109150000" } else { "" },
        "NgayTra": if n >= 5 { "20260112100000" } else { "" },
        "DonViXuLy": "UBND phường Hồng Bàng", "DuocThanhToanTrucTuyen": "0", "HoSoCoThanhPhanSoHoa": "1",
        "QuaTrinhXuLy": steps[..=n].iter().map(|(s, t)| json!({"ThoiDiemXuLy": t, "TrangThai": s, "NguoiXuLy": "Chuyên viên", "NoiDungXuLy": "", "ChucDanh": ""})).collect::<Vec<_>>(),
        "DanhSachHoSoBoSung": rounds,
        "TaiLieuNop": [{"TenTepDinhKem": "To khai", "DuocSoHoa": "1", "DuocTaiSuDung": "0", "DuocLayTuKhoDMQG": "0"}],
        "DanhSachGiayToKetQua": []
    })
}

async fn ingest(wh: &Warehouse, dir: &std::path::Path, name: &str, body: String) -> IngestCounts {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    giamsat_ingest::ingest_paths(wh, &Format::Dvcqg, None, &[p])
        .await
        .expect("ingest")
}

/// (type, local time, due) of the dossier's stored events.
async fn stored(wh: &Warehouse) -> BTreeSet<(String, String, String)> {
    wh.load_events()
        .await
        .expect("events")
        .into_iter()
        .map(|e| {
            let t = |v: i64| {
                chrono::DateTime::from_timestamp_micros(v + 7 * 3_600_000_000)
                    .expect("t")
                    .format("%d/%m %H:%M")
                    .to_string()
            };
            (
                e.event_type.clone(),
                t(e.at),
                e.due_at.map(t).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_add_nothing_and_order_does_not_matter() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wh = Warehouse::open_with(&tmp.path().join("a"), Config::default()).expect("wh");
    // each status change sent as its own batch; record 2 twice; record 0 again after record 4
    let mut accepted = 0;
    for (i, n) in [0usize, 1, 2, 2, 3, 4, 0, 5, 5].iter().enumerate() {
        let c = ingest(
            &wh,
            tmp.path(),
            &format!("r{i}.json"),
            record(*n).to_string(),
        )
        .await;
        assert_eq!(c.quarantined, 0);
        accepted += c.accepted;
    }
    let want: BTreeSet<(String, String, String)> = [
        // life-cycle events
        ("received", "05/01 08:15", ""),
        ("submitted", "05/01 08:15", ""),
        ("processing", "05/01 09:00", ""),
        ("supplement_requested", "06/01 10:00", ""),
        ("processing", "08/01 09:00", ""),
        ("supplement_received", "08/01 09:00", "09/01 17:00"),
        ("resolved", "09/01 15:00", ""),
        ("returned", "12/01 10:00", ""),
        // one status report per distinct status change, with the due date known then
        ("processing", "05/01 08:15", "07/01 17:00"),
        ("processing", "05/01 09:00", "07/01 17:00"),
        ("processing", "06/01 10:00", "07/01 17:00"),
        ("processing", "08/01 09:00", "09/01 17:00"),
        ("processing", "09/01 15:00", "09/01 17:00"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(stored(&wh).await, want);
    // 13 distinct (type, time, due) + the status-10 report, which differs from status 9's
    // only in its attrs (same instant and due)
    assert_eq!(accepted, 14);

    // the last record alone (a late sync, as an envelope) gives the same dossier facts
    let wh2 = Warehouse::open_with(&tmp.path().join("b"), Config::default()).expect("wh");
    let env = json!({"service": "DongBoHoSoMC", "madonvi": "000.00.31.H31", "data": [record(5)]});
    ingest(
        &wh2,
        tmp.path(),
        "late.json",
        serde_json::to_string_pretty(&env).expect("json"),
    )
    .await;
    let a = facts(&wh).await;
    assert_eq!(a, facts(&wh2).await);
    // due 09/01 17:00 reported; judged = 09/01 15:00 − 47 h of closed round = 07/01 16:00 → early
    assert!(
        a.contains("early") && a.contains("online") && a.contains("resolved"),
        "{a}"
    );
}

async fn facts(w: &Warehouse) -> String {
    let ctx = giamsat_queries::session(w).await.expect("session");
    let b = giamsat_queries::run_sql(
        &ctx,
        "SELECT CAST(received_at AS VARCHAR) r, CAST(ended_at AS VARCHAR) e, end_type, \
         CAST(due_at AS VARCHAR) d, supplement_requests, end_class, channel FROM dossier_facts",
    )
    .await
    .expect("sql");
    giamsat_queries::arrow::util::pretty::pretty_format_batches(&b)
        .expect("fmt")
        .to_string()
}
