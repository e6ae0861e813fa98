//! The verifiers refuse every forgery: at least 10,000 per gateway, built by
//! `simulator::mutate` from validly signed messages that the simulator's own signer made.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use feerecon::config::{MomoConfig, VnpayConfig, ZalopayConfig};
use feerecon::domain::Secret;
use feerecon::gateway::{RawRequest, Verification};
use feerecon::simulator::{mutate, sign};

const NAMES: [&str; 6] = [
    "Thanh toan le phi ho so",
    "Lệ phí đổi giấy phép lái xe",
    "Phí thẩm định hồ sơ",
    "Lệ phí hộ tịch, số 2/3",
    "A*B~C!(x)",
    "Đăng ký kết hôn",
];

fn accepted(v: &Verification) -> bool {
    matches!(v, Verification::Valid { event: Ok(_), .. })
}

fn vnpay_cfg(previous: Option<&str>) -> VnpayConfig {
    VnpayConfig {
        tmn_code: "MUTA0001".into(),
        hash_secret: Secret::new("current-vnpay-secret"),
        hash_secret_previous: previous.map(Secret::new),
        pay_url: "http://x".into(),
        api_url: "http://x".into(),
        server_ip: "203.0.113.10".parse().unwrap(),
    }
}

fn vnpay_base(rng: &mut StdRng) -> String {
    let p: Vec<(String, String)> = vec![
        ("vnp_Amount".into(), (rng.gen_range(50..1_000_000i64) * 100).to_string()),
        ("vnp_BankCode".into(), "NCB".into()),
        ("vnp_CardType".into(), "ATM".into()),
        ("vnp_OrderInfo".into(), format!("{} {}", NAMES[rng.gen_range(0..NAMES.len())], rng.gen_range(1..9999))),
        ("vnp_PayDate".into(), "20241231235959".into()),
        ("vnp_ResponseCode".into(), "00".into()),
        ("vnp_TmnCode".into(), "MUTA0001".into()),
        ("vnp_TransactionNo".into(), rng.gen_range(1..99_999_999).to_string()),
        ("vnp_TransactionStatus".into(), "00".into()),
        ("vnp_TxnRef".into(), format!("241231{}", rng.gen_range(100_000..999_999))),
    ];
    sign::vnpay_signed_query("current-vnpay-secret", &p)
}

#[test]
fn vnpay_refuses_ten_thousand_forgeries() {
    let mut rng = StdRng::seed_from_u64(7);
    let cfg = vnpay_cfg(None);
    let mut refused = 0;
    while refused < 10_000 {
        let q = vnpay_base(&mut rng);
        assert!(accepted(&feerecon::gateway::vnpay::verify_params(&cfg, &q)), "the base message verifies: {q}");
        // What keeps the meaning verifies: other parameter order, %20 for +, upper-case hex.
        let mut parts: Vec<&str> = q.split('&').collect();
        parts.reverse();
        assert!(accepted(&feerecon::gateway::vnpay::verify_params(&cfg, &parts.join("&"))));
        assert!(accepted(&feerecon::gateway::vnpay::verify_params(&cfg, &q.replace('+', "%20"))));
        for m in mutate::vnpay(&q, "current-vnpay-secret", "old-vnpay-secret", &mut rng) {
            let v = feerecon::gateway::vnpay::verify_params(&cfg, &m);
            assert!(!accepted(&v), "accepted a forgery:\n{m}\nfrom\n{q}");
            // As a POST form, too.
            let raw = RawRequest { method: "POST".into(), body: m.clone().into_bytes(), ..Default::default() };
            assert!(!accepted(
                &feerecon::gateway::vnpay::Vnpay::new(cfg.clone(), reqwest::Client::new()).verify_callback_pure(&raw)
            ));
            refused += 1;
        }
    }
    // During rotation the previous secret verifies; once it is removed, it does not.
    let old = sign::vnpay_signed_query(
        "old-vnpay-secret",
        &[
            ("vnp_Amount".into(), "500000".into()),
            ("vnp_TmnCode".into(), "MUTA0001".into()),
            ("vnp_TxnRef".into(), "R".into()),
        ],
    );
    assert!(matches!(
        feerecon::gateway::vnpay::verify_params(&vnpay_cfg(Some("old-vnpay-secret")), &old),
        Verification::Valid { auth: feerecon::gateway::AuthenticatedBy::SignaturePrevious, .. }
    ));
    assert!(matches!(feerecon::gateway::vnpay::verify_params(&cfg, &old), Verification::BadSignature(_)));
}

fn momo_cfg() -> MomoConfig {
    MomoConfig {
        partner_code: "MOMOMUTA".into(),
        access_key: Secret::new("mutation-access"),
        secret_key: Secret::new("current-momo-secret"),
        secret_key_previous: None,
        endpoint: "http://x".into(),
    }
}

fn momo_base(rng: &mut StdRng) -> String {
    let amount = rng.gen_range(1_000..50_000_000i64);
    let order = format!("FR241231{}", rng.gen_range(100_000..999_999));
    let info = NAMES[rng.gen_range(0..NAMES.len())];
    let message = if rng.gen_bool(0.5) { "Thành công." } else { "Giao dịch thành công (mã số ô)." };
    let trans = rng.gen_range(1..9_999_999_999i64);
    let time = 1_735_664_399_000i64 + rng.gen_range(0..1_000_000);
    let raw = sign::momo_raw(&[
        ("accessKey", "mutation-access".into()),
        ("amount", amount.to_string()),
        ("extraData", String::new()),
        ("message", message.into()),
        ("orderId", order.clone()),
        ("orderInfo", info.into()),
        ("orderType", "momo_wallet".into()),
        ("partnerCode", "MOMOMUTA".into()),
        ("payType", "qr".into()),
        ("requestId", order.clone()),
        ("responseTime", time.to_string()),
        ("resultCode", "0".into()),
        ("transId", trans.to_string()),
    ]);
    serde_json::json!({
        "partnerCode": "MOMOMUTA", "orderId": order, "requestId": order, "amount": amount, "orderInfo": info,
        "orderType": "momo_wallet", "transId": trans, "resultCode": 0, "message": message, "payType": "qr",
        "responseTime": time, "extraData": "", "signature": sign::hmac_sha256("current-momo-secret", &raw),
    })
    .to_string()
}

#[test]
fn momo_refuses_ten_thousand_forgeries() {
    let mut rng = StdRng::seed_from_u64(11);
    let cfg = momo_cfg();
    let mut refused = 0;
    while refused < 10_000 {
        let b = momo_base(&mut rng);
        assert!(accepted(&feerecon::gateway::momo::verify_ipn(&cfg, b.as_bytes())), "{b}");
        for m in mutate::momo(&b, "current-momo-secret", "old-momo-secret", "mutation-access", &mut rng) {
            assert!(
                !accepted(&feerecon::gateway::momo::verify_ipn(&cfg, m.as_bytes())),
                "accepted a forgery:\n{m}\nfrom\n{b}"
            );
            refused += 1;
        }
    }
}

fn zalopay_cfg() -> ZalopayConfig {
    ZalopayConfig {
        app_id: "2554".into(),
        key1: Secret::new("zalopay-key1"),
        key2: Secret::new("current-zalopay-key2"),
        key2_previous: None,
        endpoint: "http://x".into(),
    }
}

fn zalopay_base(rng: &mut StdRng) -> String {
    let data = format!(
        r#"{{"app_id":2554,"app_trans_id":"241231_{}","app_time":1735664390000,"app_user":"u","amount":{},"embed_data":"{{}}","item":"[]","zp_trans_id":{},"server_time":{},"channel":38,"merchant_user_id":"","user_fee_amount":0,"discount_amount":0}}"#,
        rng.gen_range(100_000..999_999),
        rng.gen_range(1_000..10_000_000),
        rng.gen_range(1..999_999_999_999i64),
        1_735_664_399_000i64 + rng.gen_range(0..1_000_000)
    );
    serde_json::json!({"data": data, "mac": sign::zalopay_mac("current-zalopay-key2", &data), "type": 1}).to_string()
}

#[test]
fn zalopay_refuses_ten_thousand_forgeries() {
    let mut rng = StdRng::seed_from_u64(13);
    let cfg = zalopay_cfg();
    let mut refused = 0;
    while refused < 10_000 {
        let b = zalopay_base(&mut rng);
        assert!(accepted(&feerecon::gateway::zalopay::verify_callback(&cfg, b.as_bytes())), "{b}");
        for m in mutate::zalopay(&b, "current-zalopay-key2", "old-zalopay-key2", "zalopay-key1", &mut rng) {
            assert!(
                !accepted(&feerecon::gateway::zalopay::verify_callback(&cfg, m.as_bytes())),
                "accepted a forgery:\n{m}\nfrom\n{b}"
            );
            refused += 1;
        }
    }
}

fn dvcqg_cfg() -> feerecon::config::DvcqgConfig {
    feerecon::config::DvcqgConfig {
        partner_code: "000.00.00.H62".into(),
        secret: Secret::new("current-dvcqg-secret"),
        secret_previous: None,
        init_url: "http://x".into(),
        query_url: "http://x".into(),
        bill_url: "http://x".into(),
        beneficiary: feerecon::config::parse_beneficiary("1,2,X").unwrap(),
        token: None,
        server_ip: "203.0.113.10".parse().unwrap(),
        lookup_allow: vec![],
    }
}

fn dvcqg_base(rng: &mut StdRng) -> String {
    let amount = rng.gen_range(1_000..50_000_000i64);
    let ma_loi = if rng.gen_bool(0.8) { "00" } else { "24" };
    let no = if ma_loi == "00" { rng.gen_range(1..9_999_999_999i64).to_string() } else { String::new() };
    let fields = [
        ("LoaiBanTin", "PAYMENT_RESULT".to_owned()),
        ("MaLoi", ma_loi.to_owned()),
        ("MaDoiTac", "000.00.00.H62".to_owned()),
        ("MaThamChieu", format!("DVC241231{}", rng.gen_range(10_000_000_000i64..99_999_999_999))),
        ("SoTien", amount.to_string()),
        ("MaTienTe", "VND".to_owned()),
        ("MaGiaoDich", no),
        ("MaNganHang", if ma_loi == "00" { "VCB".to_owned() } else { String::new() }),
        ("ThoiGianGD", format!("2024123123{:02}{:02}", rng.gen_range(0..60), rng.gen_range(0..60))),
        ("ThongTinGiaoDich", format!("{} {}", NAMES[rng.gen_range(0..NAMES.len())], rng.gen_range(1..9999))),
    ];
    let values: Vec<&str> = fields.iter().map(|(_, v)| v.as_str()).collect();
    let mut m = serde_json::Map::new();
    for (k, v) in &fields {
        // SoTien arrives as a JSON integer or a string: both are its decimal text.
        let v = if *k == "SoTien" && rng.gen_bool(0.5) { serde_json::json!(amount) } else { serde_json::json!(v) };
        m.insert((*k).to_owned(), v);
    }
    m.insert("MaXacThuc".into(), serde_json::json!(sign::dvcqg_checksum(&values, "current-dvcqg-secret")));
    serde_json::Value::Object(m).to_string()
}

#[test]
fn dvcqg_refuses_ten_thousand_forgeries() {
    let mut rng = StdRng::seed_from_u64(17);
    let cfg = dvcqg_cfg();
    let mut refused = 0;
    while refused < 10_000 {
        let b = dvcqg_base(&mut rng);
        assert!(accepted(&feerecon::gateway::dvcqg::verify_callback(&cfg, b.as_bytes())), "the base verifies: {b}");
        // What keeps the meaning verifies: extra keys, upper-case hex.
        let extra = b.replacen('{', r#"{"UrlBienLai":"https://x/bl.pdf","MaHoSo":"000.00.12.H62-241231-0001","#, 1);
        assert!(accepted(&feerecon::gateway::dvcqg::verify_callback(&cfg, extra.as_bytes())));
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        let upper = b.replace(v["MaXacThuc"].as_str().unwrap(), &v["MaXacThuc"].as_str().unwrap().to_uppercase());
        assert!(accepted(&feerecon::gateway::dvcqg::verify_callback(&cfg, upper.as_bytes())));
        for m in mutate::dvcqg(&b, "current-dvcqg-secret", "old-dvcqg-secret", &mut rng) {
            assert!(
                !accepted(&feerecon::gateway::dvcqg::verify_callback(&cfg, m.as_bytes())),
                "accepted a forgery:\n{m}\nfrom\n{b}"
            );
            refused += 1;
        }
    }
}
