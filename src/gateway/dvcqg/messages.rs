//! The requests feerecon sends the DVCQG platform: INIT (with its `ThongTinBienLai` receipt
//! object), QUERY and GET_BILL, each with its `MaXacThuc` (reference/dvcqg-payment.md §4, §6, §7);
//! and the answers to its reverse lookup (§8), built from the same receipt object.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{INIT_FIELDS, PHIEN_BAN, QUERY_FIELDS, checksum};
use crate::config::DvcqgConfig;
use crate::domain::Money;
use crate::gateway::{Order, OrderCase, vn_compact};

/// A name cut as TD cuts it: over 250 characters, the first 200 and "..." [S §4.2].
fn cut(name: &str) -> String {
    if name.chars().count() > 250 { format!("{}...", name.chars().take(200).collect::<String>()) } else { name.into() }
}

/// The INIT request [S §4]: the top-level fields (all strings), `ThongTinBienLai`, `MaXacThuc`.
///
/// - `MaThamChieu` is our `txn_ref`; `ThoiGianGD` the payment's creation, `yyyyMMddHHmmss` in
///   GMT+7 (24-hour: TD's `hh` is a bug [S §11]), sent again in QUERY and GET_BILL.
/// - `LoaiHinhThanhToan` "PAY", `MaKenhThanhToan` "1", `MaThietBi` "1", `NgonNgu` "vi-VN",
///   `MaTienTe` "VND", `MaNganHang` "PAYMENT" (the citizen picks the bank) [S: TD's values].
/// - `Ip`: the server's own address, as both implementations send [S].
/// - `ThongTinBienLai`: `MaDichVu` "2" (a case) [S: TD's string form]; `MaTTHC` the procedure
///   code and `MaDVC` it + ".01" [S: TD]; the unit, the case, the beneficiary account; one
///   `PhiLePhi` line per fee the citizen pays, `LoaiPhiLePhi` "1" phí / "2" lệ phí with the fee's
///   id and name and `SoTien` a number [S: OpenCPS's coding; TD sends one "Phi" line: the
///   platform's canonical form is unconfirmed, I]; `DSKhoanNop` one line with the total [S];
///   the payer's ID number "000000000", as TD sends when it has none [S]; fine fields empty.
pub fn init_request(cfg: &DvcqgConfig, order: &Order) -> Value {
    let amount = order.amount.dong().to_string();
    let time = vn_compact(order.created_at);
    let ip = cfg.server_ip.to_string();
    let top: [(&str, &str); 14] = [
        ("LoaiBanTin", "INIT"),
        ("PhienBan", PHIEN_BAN),
        ("MaDoiTac", &cfg.partner_code),
        ("MaThamChieu", &order.txn_ref),
        ("SoTien", &amount),
        ("LoaiHinhThanhToan", "PAY"),
        ("MaKenhThanhToan", "1"),
        ("MaThietBi", "1"),
        ("NgonNgu", "vi-VN"),
        ("MaTienTe", "VND"),
        ("MaNganHang", "PAYMENT"),
        ("ThongTinGiaoDich", &order.order_info),
        ("ThoiGianGD", &time),
        ("Ip", &ip),
    ];
    debug_assert!(top.iter().map(|(k, _)| *k).eq(INIT_FIELDS));
    let values: Vec<&str> = top.iter().map(|(_, v)| *v).collect();
    let mut body = serde_json::Map::new();
    for (k, v) in top {
        body.insert(k.into(), Value::String(v.into()));
    }
    body.insert("ThongTinBienLai".into(), receipt_object(cfg, &order.case, &order.order_info, order.amount));
    body.insert("MaXacThuc".into(), Value::String(checksum(&values, &cfg.secret)));
    Value::Object(body)
}

/// `ThongTinBienLai`: the case, the beneficiary account and the lines of `total` [S §4.2].
fn receipt_object(cfg: &DvcqgConfig, c: &OrderCase, info: &str, total: Money) -> Value {
    let lines: Vec<Value> = c
        .lines
        .iter()
        .filter(|l| l.amount.dong() > 0)
        .map(|l| {
            json!({
                "LoaiPhiLePhi": if l.kind == "phi" { "1" } else { "2" },
                "MaPhiLePhi": l.fee_id,
                "TenPhiLePhi": cut(&l.name),
                "SoTien": l.amount.dong(),
            })
        })
        .collect();
    json!({
        "MaDichVu": "2",
        "MaDVC": format!("{}.01", c.procedure_code),
        "TenDVC": cut(&c.procedure_name),
        "MaTTHC": c.procedure_code,
        "TenTTHC": cut(&c.procedure_name),
        "MaDonVi": c.unit_code,
        "TenDonVi": cfg.beneficiary.name,
        "MaHoSo": c.case_code,
        "TKThuHuong": cfg.beneficiary.account,
        "MaNHThuHuong": cfg.beneficiary.bank_code,
        "TenTKThuHuong": cfg.beneficiary.name,
        "PhiLePhi": lines,
        "DSKhoanNop": [{"NoiDung": info, "SoTien": total.dong().to_string()}],
        "NoiDungThanhToan": info,
        "HoTenNguoiNop": c.applicant_name,
        "SoCMNDNguoiNop": "000000000",
        "DiaChiNguoiNop": "",
        "HuyenNguoiNop": "",
        "TinhNguoiNop": "",
        "MaCoQuanQD": "", "TenCoQuanQD": "", "KhoBac": "", "NgayQD": "", "SoQD": "",
        "MaLoaiHinhThuPhat": "", "TenLoaiHinhThuPhat": "", "ThoiGianViPham": "", "DiaDiemViPham": "",
        "TenNguoiViPham": "", "TaiKhoanThuNSNN": "",
    })
}

/// The reverse lookup's answers [S §8: OpenCPS's `{error_code, message}`]: 1 with the bill
/// (`MaTraCuuTT` = the case code and `yyyyMMddHHmmss`, then `ThongTinBienLai`'s fields and the
/// total), 0 with nothing to pay (owed nothing, or already paid), -1 with an error's text.
pub fn lookup_bill(cfg: &DvcqgConfig, case: &OrderCase, total: Money, now: DateTime<Utc>) -> Value {
    let info = crate::gateway::ascii_order_info(&format!("Thanh toan le phi ho so {}", case.case_code));
    let mut bill = receipt_object(cfg, case, &info, total);
    if let Value::Object(m) = &mut bill {
        m.insert("MaTraCuuTT".into(), Value::String(format!("{}{}", case.case_code, vn_compact(now))));
        m.insert("SoTien".into(), Value::String(total.dong().to_string()));
        m.insert("MaDoiTac".into(), Value::String(cfg.partner_code.clone()));
    }
    json!({"error_code": 1, "message": bill})
}

pub fn lookup_nothing(why: &str) -> Value {
    json!({"error_code": 0, "message": why})
}

pub fn lookup_error(why: &str) -> Value {
    json!({"error_code": -1, "message": why})
}

/// QUERY or GET_BILL: the same five fields and checksum [S §6, §7]; `ThoiGianGD` is the INIT
/// time of the transaction, as sent [S].
fn lookup_request(cfg: &DvcqgConfig, kind: &str, txn_ref: &str, init_time: &str) -> Value {
    let values = [kind, PHIEN_BAN, cfg.partner_code.as_str(), txn_ref, init_time];
    debug_assert_eq!(values.len(), QUERY_FIELDS.len());
    json!({
        "LoaiBanTin": kind,
        "PhienBan": PHIEN_BAN,
        "MaDoiTac": cfg.partner_code,
        "MaThamChieu": txn_ref,
        "ThoiGianGD": init_time,
        "MaXacThuc": checksum(&values, &cfg.secret),
    })
}

pub fn query_request(cfg: &DvcqgConfig, txn_ref: &str, init_time: &str) -> Value {
    lookup_request(cfg, "QUERY", txn_ref, init_time)
}

pub fn bill_request(cfg: &DvcqgConfig, txn_ref: &str, init_time: &str) -> Value {
    lookup_request(cfg, "GET_BILL", txn_ref, init_time)
}
