//! Known-answer vectors for `MaXacThuc`, computed apart from this code with `sha256sum` over the
//! pipe-joined strings (README, "DVCQG vectors"), and the reading of every message.

use super::*;
use crate::config::Beneficiary;
use crate::gateway::{OrderCase, OrderLine};

const SECRET: &str = "VECTORDVCQGSECRET0123456789abcdef";

pub(crate) fn cfg() -> DvcqgConfig {
    DvcqgConfig {
        partner_code: "000.00.00.H62".into(),
        secret: Secret::new(SECRET),
        secret_previous: None,
        init_url: "https://testthanhtoan.dichvucong.gov.vn/init".into(),
        query_url: "https://testthanhtoan.dichvucong.gov.vn/query".into(),
        bill_url: "https://testthanhtoan.dichvucong.gov.vn/bill".into(),
        beneficiary: Beneficiary {
            account: "1234567890".into(),
            bank_code: "970415".into(),
            name: "Sở Tài chính".into(),
        },
        token: None,
        server_ip: "203.0.113.10".parse().unwrap(),
        lookup_allow: vec![],
    }
}

/// `printf '%s' 'PAYMENT_RESULT|00|000.00.00.H62|DVC241231ABCDEFGHJKL|150000|VND|TT2412310000042|VCB|20241231235959|Thanh toan le phi ho so 000.00.12.H62-241231-0001|VECTORDVCQGSECRET0123456789abcdef' | sha256sum`
const CALLBACK_SUM: &str = "8e92fbf4fff5c34f1491600b44737ae2a9f530620637ed82e296e556b1e3b2fe";
/// The same with `MaLoi` 24 and `MaGiaoDich`, `MaNganHang` empty (`...|VND|||2024...`).
const FAILED_SUM: &str = "f360c9ae4e7c499009bbba68af8595af48db8bfafeac61c074f186b78f9b4143";
/// `INIT|1.0.6|000.00.00.H62|DVC241231ABCDEFGHJKL|150000|PAY|1|1|vi-VN|VND|PAYMENT|Lệ phí hộ tịch, hồ sơ 000.00.12.H62-241231-0001|20241231100000|203.0.113.10|<secret>` (UTF-8).
const INIT_SUM: &str = "126b21e0cf9c8e3edebdab5b3b05254e8639870063ed63c29720d3858593ce32";
/// `QUERY|1.0.6|000.00.00.H62|DVC241231ABCDEFGHJKL|20241231100000|<secret>`.
const QUERY_SUM: &str = "1e3ef1e732a422499ccffe9dc6f09ced27703cbb22035d406e21bcc3d4f47256";
/// `GET_BILL|1.0.6|000.00.00.H62|DVC241231ABCDEFGHJKL|20241231100000|<secret>`.
const BILL_SUM: &str = "ff3a66d672eae05386fa452db45e6a96489b056fb09b0e619c51a2afbbec3448";

pub(crate) fn callback_body(ma_loi: &str, no: &str, bank: &str, so_tien: Value, sum: &str) -> Vec<u8> {
    json!({
        "LoaiBanTin": "PAYMENT_RESULT", "MaLoi": ma_loi, "MaDoiTac": "000.00.00.H62",
        "MaThamChieu": "DVC241231ABCDEFGHJKL", "SoTien": so_tien, "MaTienTe": "VND", "MaGiaoDich": no,
        "MaNganHang": bank, "ThoiGianGD": "20241231235959",
        "ThongTinGiaoDich": "Thanh toan le phi ho so 000.00.12.H62-241231-0001", "MaXacThuc": sum,
        "MaHoSo": "000.00.12.H62-241231-0001", "UrlBienLai": "https://example.vn/bl.pdf",
    })
    .to_string()
    .into_bytes()
}

#[test]
fn the_vectors_are_sha256_over_the_pipe_joined_fields_and_the_secret() {
    let s = Secret::new(SECRET);
    let cb = [
        "PAYMENT_RESULT",
        "00",
        "000.00.00.H62",
        "DVC241231ABCDEFGHJKL",
        "150000",
        "VND",
        "TT2412310000042",
        "VCB",
        "20241231235959",
        "Thanh toan le phi ho so 000.00.12.H62-241231-0001",
    ];
    assert_eq!(checksum(&cb, &s), CALLBACK_SUM);
    assert_eq!(checksum(&["QUERY", "1.0.6", "000.00.00.H62", "DVC241231ABCDEFGHJKL", "20241231100000"], &s), QUERY_SUM);
    assert_eq!(
        checksum(&["GET_BILL", "1.0.6", "000.00.00.H62", "DVC241231ABCDEFGHJKL", "20241231100000"], &s),
        BILL_SUM
    );
    // Not an HMAC: the keyed hash of the same string differs.
    assert_ne!(crate::gateway::hmac_sha256_hex(&s, cb.join("|").as_bytes()), CALLBACK_SUM);
}

#[test]
fn the_callback_vector_verifies_with_so_tien_as_a_string_or_a_number() {
    for so_tien in [json!("150000"), json!(150_000)] {
        let v = verify_callback(&cfg(), &callback_body("00", "TT2412310000042", "VCB", so_tien, CALLBACK_SUM));
        let Verification::Valid { auth, event: Ok(e) } = v else { panic!("{v:?}") };
        assert_eq!(auth, AuthenticatedBy::SignatureCurrent);
        assert_eq!(
            (e.txn_ref.as_str(), e.amount, e.outcome),
            ("DVC241231ABCDEFGHJKL", Money::new(150_000).ok(), OutcomeKind::Success)
        );
        assert_eq!(e.gateway_txn_no.as_deref(), Some("TT2412310000042"));
        assert_eq!(e.paid_at.unwrap().to_rfc3339(), "2024-12-31T16:59:59+00:00");
    }
    // Upper-case hex is the same checksum.
    let upper = callback_body("00", "TT2412310000042", "VCB", json!("150000"), &CALLBACK_SUM.to_uppercase());
    assert!(matches!(verify_callback(&cfg(), &upper), Verification::Valid { event: Ok(_), .. }));
}

#[test]
fn a_failed_payment_with_empty_fields_verifies_as_a_failure() {
    let v = verify_callback(&cfg(), &callback_body("24", "", "", json!("150000"), FAILED_SUM));
    let Verification::Valid { event: Ok(e), .. } = v else { panic!("{v:?}") };
    assert_eq!((e.outcome, e.gateway_txn_no), (OutcomeKind::Failure, None));
}

#[test]
fn forged_mutated_or_foreign_callbacks_are_refused() {
    let bad = |b: Vec<u8>| matches!(verify_callback(&cfg(), &b), Verification::BadSignature(_));
    // Another amount, another MaLoi, another transaction number: the checksum no longer matches.
    assert!(bad(callback_body("00", "TT2412310000042", "VCB", json!("150001"), CALLBACK_SUM)));
    assert!(bad(callback_body("24", "TT2412310000042", "VCB", json!("150000"), CALLBACK_SUM)));
    assert!(bad(callback_body("00", "TT2412310000043", "VCB", json!("150000"), CALLBACK_SUM)));
    // SoTien as a float, a field dropped, a key twice.
    assert!(bad(callback_body("00", "TT2412310000042", "VCB", json!(150_000.0), CALLBACK_SUM)));
    let body = String::from_utf8(callback_body("00", "TT2412310000042", "VCB", json!("150000"), CALLBACK_SUM)).unwrap();
    assert!(bad(body.replace(r#""MaNganHang":"VCB","#, "").into_bytes()));
    assert!(bad(body.replacen('{', r#"{"MaLoi":"24","#, 1).into_bytes()));
    assert!(bad(b"not json".to_vec()));
    // Another province's partner code, signed with our secret: authentic, not ours.
    let mut other = cfg();
    other.partner_code = "000.00.00.H55".into();
    assert!(matches!(
        verify_callback(&other, body.as_bytes()),
        Verification::BadSignature(_) | Verification::Valid { event: Err(Unusable::NotOurs(_)), .. }
    ));
    // Rotation: the previous secret verifies while it is configured.
    let mut rotated = cfg();
    rotated.secret = Secret::new("new-secret");
    rotated.secret_previous = Some(Secret::new(SECRET));
    assert!(matches!(
        verify_callback(&rotated, body.as_bytes()),
        Verification::Valid { auth: AuthenticatedBy::SignaturePrevious, .. }
    ));
}

#[test]
fn the_reply_echoes_the_callback_and_states_the_category() {
    let body = callback_body("00", "TT2412310000042", "VCB", json!("150000"), CALLBACK_SUM);
    let r = reply(CallbackResult::Applied, &body);
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        json!({"MaLoi": "00", "MoTaLoi": "Thành công", "MaDoiTac": "000.00.00.H62", "MaThamChieu": "DVC241231ABCDEFGHJKL",
               "ThoiGianGD": "20241231235959", "MaXacThuc": CALLBACK_SUM})
    );
    let code = |r: CallbackResult| serde_json::from_slice::<Value>(&reply(r, &body).body).unwrap()["MaLoi"].clone();
    assert_eq!(code(CallbackResult::AlreadyConfirmed), "00");
    assert_eq!(code(CallbackResult::OrderNotFound), "01");
    assert_eq!(code(CallbackResult::InvalidAmount), "04");
    assert_eq!(code(CallbackResult::BadSignature), "97");
    assert_eq!(code(CallbackResult::Failure), "99");
    // A body that is not JSON still gets the platform's shape.
    assert_eq!(
        serde_json::from_slice::<Value>(&reply(CallbackResult::BadSignature, b"x").body).unwrap()["MaThamChieu"],
        ""
    );
}

fn order() -> Order {
    let t = parse_vn_compact("20241231100000").unwrap();
    Order {
        txn_ref: "DVC241231ABCDEFGHJKL".into(),
        amount: Money::new(150_000).unwrap(),
        order_info: "Lệ phí hộ tịch, hồ sơ 000.00.12.H62-241231-0001".into(),
        return_url: "r".into(),
        ipn_url: "i".into(),
        client_ip: "198.51.100.1".into(),
        created_at: t,
        expires_at: t,
        case: OrderCase {
            case_code: "000.00.12.H62-241231-0001".into(),
            procedure_code: "1.001193".into(),
            procedure_name: "Đăng ký khai sinh".into(),
            unit_code: "000.00.12.H62".into(),
            applicant_name: "Nguyễn Văn A".into(),
            lines: vec![
                OrderLine {
                    fee_id: "phi_x".into(),
                    kind: "phi".into(),
                    name: "Phí".into(),
                    amount: Money::new(100_000).unwrap(),
                },
                OrderLine {
                    fee_id: "le_phi_y".into(),
                    kind: "le_phi".into(),
                    name: "Lệ phí".into(),
                    amount: Money::new(50_000).unwrap(),
                },
                OrderLine {
                    fee_id: "waived".into(), kind: "le_phi".into(), name: "Miễn".into(), amount: Money::ZERO
                },
            ],
        },
    }
}

#[test]
fn init_carries_the_receipt_object_outside_its_checksum() {
    let v = init_request(&cfg(), &order());
    assert_eq!(v["MaXacThuc"], INIT_SUM);
    assert_eq!(
        (v["SoTien"].as_str(), v["ThoiGianGD"].as_str(), v["Ip"].as_str()),
        (Some("150000"), Some("20241231100000"), Some("203.0.113.10"))
    );
    let b = &v["ThongTinBienLai"];
    assert_eq!(
        (b["MaDichVu"].as_str(), b["MaTTHC"].as_str(), b["MaDVC"].as_str()),
        (Some("2"), Some("1.001193"), Some("1.001193.01"))
    );
    assert_eq!(
        (b["TKThuHuong"].as_str(), b["MaNHThuHuong"].as_str(), b["MaHoSo"].as_str()),
        (Some("1234567890"), Some("970415"), Some("000.00.12.H62-241231-0001"))
    );
    let lines = b["PhiLePhi"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "a waived line is not sent");
    assert_eq!((lines[0]["LoaiPhiLePhi"].as_str(), lines[0]["SoTien"].as_i64()), (Some("1"), Some(100_000)));
    assert_eq!((lines[1]["LoaiPhiLePhi"].as_str(), lines[1]["MaPhiLePhi"].as_str()), (Some("2"), Some("le_phi_y")));
    assert_eq!(b["DSKhoanNop"][0]["SoTien"], "150000");
    assert_eq!(query_request(&cfg(), "DVC241231ABCDEFGHJKL", "20241231100000")["MaXacThuc"], QUERY_SUM);
    assert_eq!(bill_request(&cfg(), "DVC241231ABCDEFGHJKL", "20241231100000")["MaXacThuc"], BILL_SUM);
}

#[test]
fn init_answers_give_the_pay_url_plain_or_wrapped() {
    assert_eq!(read_init_answer(br#"{"MaLoi":"00","UrlThanhToan":"https://p/pay?x=1"}"#).unwrap(), "https://p/pay?x=1");
    let wrapped =
        json!({"error_code": "0", "message": json!({"MaLoi": "00", "UrlThanhToan": "https://p/w"}).to_string()});
    assert_eq!(read_init_answer(wrapped.to_string().as_bytes()).unwrap(), "https://p/w");
    assert!(
        matches!(read_init_answer(br#"{"MaLoi":"12","MoTaLoi":"sai"}"#), Err(GatewayError::Refused(m)) if m.contains("12"))
    );
    assert!(read_init_answer(br#"{"error_code":"-1","message":"down"}"#).is_err());
    assert!(read_init_answer(br#"{"MaLoi":"00","UrlThanhToan":"javascript:x"}"#).is_err());
}

#[test]
fn query_answers_map_trang_thai_and_api_errors_are_no_outcome() {
    let a = |v: Value| read_query_answer(&cfg(), "DVC1", v.to_string().as_bytes(), AuthenticatedBy::TlsChannel);
    let ok = |t: Value, so_tien: &str| {
        json!({"MaLoi": "00", "MoTaLoi": "", "MaDoiTac": "000.00.00.H62", "MaThamChieu": "DVC1", "SoTien": so_tien,
               "MaTienTe": "VND", "MaGiaoDich": "TT9", "TrangThaiGD": t})
    };
    for (t, outcome) in
        [(json!("1"), OutcomeKind::Success), (json!(3), OutcomeKind::Pending), (json!("4"), OutcomeKind::Failure)]
    {
        let Verification::Valid { auth, event: Ok(e) } = a(ok(t, "150000")) else { panic!() };
        assert_eq!(
            (auth, e.outcome, e.paid_at, e.amount),
            (AuthenticatedBy::TlsChannel, outcome, None, Money::new(150_000).ok())
        );
    }
    for t in [json!("2"), json!("9"), json!("")] {
        assert!(
            matches!(a(ok(t.clone(), "150000")), Verification::Valid { event: Err(Unusable::ApiError { .. }), .. }),
            "{t}"
        );
    }
    let err = a(json!({"MaLoi": "91", "MoTaLoi": "Không tìm thấy", "TrangThaiGD": "1", "SoTien": "150000"}));
    assert!(
        matches!(err, Verification::Valid { event: Err(Unusable::ApiError { ref code, .. }), .. } if code == "91"),
        "{err:?}"
    );
    // A pending answer may name no amount; a success must.
    let Verification::Valid { event: Ok(e), .. } = a(ok(json!("3"), "0")) else { panic!() };
    assert_eq!(e.amount, None);
    assert!(matches!(a(ok(json!("1"), "")), Verification::Valid { event: Err(Unusable::Amount(_)), .. }));
    assert!(matches!(a(json!({"x": 1})), Verification::BadSignature(_)));
    let mut foreign = ok(json!("1"), "150000");
    foreign["MaDoiTac"] = json!("OTHER");
    assert!(matches!(a(foreign), Verification::Valid { event: Err(Unusable::NotOurs(_)), .. }));
}

#[test]
fn bill_answers_are_a_pdf_or_a_url() {
    assert_eq!(read_bill_answer("application/pdf", b"%PDF-1.4 x"), BillAnswer::Pdf(b"%PDF-1.4 x".to_vec()));
    assert_eq!(read_bill_answer("application/octet-stream", b"%PDF-1.7"), BillAnswer::Pdf(b"%PDF-1.7".to_vec()));
    assert!(matches!(read_bill_answer("application/pdf", b"<html>"), BillAnswer::Refused(_)));
    assert_eq!(
        read_bill_answer("application/json", br#"{"MaLoi":"00","UrlBienLai":"https://p/bl/1.pdf"}"#),
        BillAnswer::Url("https://p/bl/1.pdf".into())
    );
    assert!(
        matches!(read_bill_answer("application/json", br#"{"MaLoi":"07","MoTaLoi":"chua co"}"#), BillAnswer::Refused(m) if m.contains("07"))
    );
    assert!(matches!(read_bill_answer("text/html", b"<html>"), BillAnswer::Refused(_)));
}

#[test]
fn the_token_goes_only_to_the_bill_endpoint_s_origin() {
    assert!(same_origin("https://p.gov.vn/bl/1.pdf", "https://P.gov.vn/api/bill"));
    assert!(!same_origin("https://evil.example/bl.pdf", "https://p.gov.vn/api/bill"));
    assert!(!same_origin("http://p.gov.vn/bl.pdf", "https://p.gov.vn/api/bill"));
    assert!(!same_origin("https://p.gov.vn:8443/bl.pdf", "https://p.gov.vn/api/bill"));
    assert!(!same_origin("https://user@p.gov.vn/bl.pdf", "https://p.gov.vn/api/bill"));
}
