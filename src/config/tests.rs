//! Configuration parsing: every variable's default, bad values named, secrets kept out of `Debug`.

use std::collections::HashMap;

use super::*;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_lookup(|k| m.get(k).cloned())
}

#[test]
fn remittance_settings_are_optional_and_checked() {
    assert_eq!(cfg(&[]).unwrap().remittance, RemittanceConfig::default());
    let c = cfg(&[("FEERECON_REMITTANCE_CHAPTER", " 418 "), ("FEERECON_REMITTANCE_PHI_ACCOUNT", "3511.1.1234567")])
        .unwrap();
    assert_eq!(
        (c.remittance.chapter.as_deref(), c.remittance.phi_account.as_deref()),
        (Some("418"), Some("3511.1.1234567"))
    );
    let e = cfg(&[("FEERECON_REMITTANCE_CHAPTER", "41")]).unwrap_err();
    assert!(e.to_string().contains("FEERECON_REMITTANCE_CHAPTER"), "{e}");
    let e = cfg(&[("FEERECON_REMITTANCE_TREASURY", "KBNN\nX")]).unwrap_err();
    assert!(e.to_string().contains("FEERECON_REMITTANCE_TREASURY"), "{e}");
}

#[test]
fn defaults_follow_the_spec() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.database_url.expose(), "sqlite://feerecon.db?mode=rwc");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    assert_eq!(c.request_timeout, Duration::from_secs(30));
    assert_eq!(c.max_body, 1 << 20);
    assert_eq!(c.max_upload, 512 << 20);
    assert_eq!(c.payment_ttl, Duration::from_secs(900));
    assert_eq!(c.notify_max_attempts, 20);
    assert_eq!(c.notify_max_backoff, Duration::from_secs(3600));
    assert!(c.vnpay.is_none() && c.momo.is_none() && c.zalopay.is_none() && c.webhook.is_none());
    assert_eq!(c.receipts, ReceiptConfig::default());
    assert_eq!(c.policy, PathBuf::from("embedded:fixtures/policies/vinh-phuc.toml"));
    assert_eq!(c.catalogue, PathBuf::from("embedded:fixtures/catalogue.toml"));
    assert_eq!(c.settlement_profiles, PathBuf::from("embedded:fixtures/settlement-profiles"));
    assert!(!c.receipts.configured);
}

#[test]
fn receipts_take_the_organisation_and_letters_from_the_environment() {
    let c = cfg(&[
        ("FEERECON_RECEIPT_ORG_NAME", "Sở Tư pháp tỉnh Phú Thọ"),
        ("FEERECON_RECEIPT_TAX_CODE", "2600123456-001"),
        ("FEERECON_RECEIPT_SYMBOL_LETTERS", "TP"),
    ])
    .unwrap();
    assert!(c.receipts.configured);
    assert_eq!(c.receipts.org_name, "Sở Tư pháp tỉnh Phú Thọ");
    assert_eq!(c.receipts.tax_code, "2600123456-001");
    assert_eq!(c.receipts.letters.symbol(2026), "26TTP");
    assert!(check_tax_code("0101234567").is_ok());
}

#[test]
fn durations_and_sizes_parse() {
    assert_eq!(parse_duration("90d").unwrap(), Duration::from_secs(90 * 86_400));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    for bad in ["", "10", "1w", "-1s", "0s", "s"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_size("64KiB").unwrap(), 65_536);
    assert_eq!(parse_size("100").unwrap(), 100);
    for bad in ["1MB", "", "0", "x"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_bad_value_names_its_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("FEERECON_REQUEST_TIMEOUT", "soon")], "FEERECON_REQUEST_TIMEOUT"),
        (&[("FEERECON_MAX_BODY", "lots")], "FEERECON_MAX_BODY"),
        (&[("FEERECON_LISTEN", "localhost")], "FEERECON_LISTEN"),
        (&[("FEERECON_LOG_FORMAT", "xml")], "FEERECON_LOG_FORMAT"),
        (&[("FEERECON_DATABASE_URL", "mysql://u:pw@h/db")], "FEERECON_DATABASE_URL"),
        (&[("FEERECON_NOTIFY_MAX_ATTEMPTS", "0")], "FEERECON_NOTIFY_MAX_ATTEMPTS"),
        (&[("FEERECON_PUBLIC_URL", "ftp://x")], "FEERECON_PUBLIC_URL"),
        (
            &[
                ("FEERECON_VNPAY_TMN_CODE", "T1"),
                ("FEERECON_VNPAY_HASH_SECRET", "s"),
                ("FEERECON_VNPAY_SERVER_IP", "host"),
            ],
            "FEERECON_VNPAY_SERVER_IP",
        ),
        (&[("FEERECON_RECEIPT_TAX_CODE", "12345")], "FEERECON_RECEIPT_TAX_CODE"),
        (&[("FEERECON_RECEIPT_TAX_CODE", "0101234567-01")], "FEERECON_RECEIPT_TAX_CODE"),
        (&[("FEERECON_RECEIPT_SYMBOL_LETTERS", "AF")], "FEERECON_RECEIPT_SYMBOL_LETTERS"),
        (&[("FEERECON_RECEIPT_SYMBOL_LETTERS", "abc")], "FEERECON_RECEIPT_SYMBOL_LETTERS"),
        (&[("FEERECON_RECEIPT_ORG_NAME", "two\nlines")], "FEERECON_RECEIPT_ORG_NAME"),
    ];
    for (pairs, variable) in cases {
        assert_eq!(cfg(pairs).unwrap_err().variable, *variable);
    }
}

#[test]
fn a_gateway_configured_in_part_is_refused() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("FEERECON_VNPAY_TMN_CODE", "T1")], "FEERECON_VNPAY_HASH_SECRET"),
        (&[("FEERECON_VNPAY_HASH_SECRET", "s")], "FEERECON_VNPAY_TMN_CODE"),
        (&[("FEERECON_VNPAY_HASH_SECRET_PREVIOUS", "s")], "FEERECON_VNPAY_HASH_SECRET_PREVIOUS"),
        (&[("FEERECON_MOMO_PARTNER_CODE", "P"), ("FEERECON_MOMO_SECRET_KEY", "k")], "FEERECON_MOMO_ACCESS_KEY"),
        (&[("FEERECON_MOMO_SECRET_KEY_PREVIOUS", "k")], "FEERECON_MOMO_SECRET_KEY_PREVIOUS"),
        (&[("FEERECON_ZALOPAY_APP_ID", "2554")], "FEERECON_ZALOPAY_KEY1"),
        (
            &[("FEERECON_ZALOPAY_APP_ID", "abc"), ("FEERECON_ZALOPAY_KEY1", "a"), ("FEERECON_ZALOPAY_KEY2", "b")],
            "FEERECON_ZALOPAY_APP_ID",
        ),
        (&[("FEERECON_DVCQG_PARTNER_CODE", "P")], "FEERECON_DVCQG_SECRET"),
        (&[("FEERECON_DVCQG_SECRET", "s")], "FEERECON_DVCQG_PARTNER_CODE"),
        (&[("FEERECON_DVCQG_TOKEN", "t")], "FEERECON_DVCQG_TOKEN"),
        (&[("FEERECON_DVCQG_PARTNER_CODE", "P"), ("FEERECON_DVCQG_SECRET", "s")], "FEERECON_DVCQG_INIT_URL"),
        (
            &[
                ("FEERECON_DVCQG_PARTNER_CODE", "P"),
                ("FEERECON_DVCQG_SECRET", "s"),
                ("FEERECON_DVCQG_INIT_URL", "https://p/init"),
                ("FEERECON_DVCQG_QUERY_URL", "https://p/query"),
                ("FEERECON_DVCQG_BILL_URL", "https://p/bill"),
            ],
            "FEERECON_DVCQG_BENEFICIARY",
        ),
        (&[("FEERECON_PORTAL_WEBHOOK_URL", "http://portal")], "FEERECON_PORTAL_WEBHOOK_SECRET"),
        (&[("FEERECON_PORTAL_WEBHOOK_SECRET", "s")], "FEERECON_PORTAL_WEBHOOK_URL"),
    ];
    for (pairs, variable) in cases {
        assert_eq!(cfg(pairs).unwrap_err().variable, *variable, "{pairs:?}");
    }
}

#[test]
fn gateways_are_enabled_by_their_credentials_and_secrets_stay_hidden() {
    let c = cfg(&[
        ("FEERECON_VNPAY_TMN_CODE", "T1"),
        ("FEERECON_VNPAY_HASH_SECRET", "vnpay-hash-secret-value"),
        ("FEERECON_MOMO_PARTNER_CODE", "P"),
        ("FEERECON_MOMO_ACCESS_KEY", "momo-access-value"),
        ("FEERECON_MOMO_SECRET_KEY", "momo-secret-value"),
        ("FEERECON_DATABASE_URL", "postgres://u:db-password-value@h/db"),
    ])
    .unwrap();
    assert!(c.vnpay.is_some() && c.momo.is_some() && c.zalopay.is_none() && c.dvcqg.is_none());
    let d = cfg(&[
        ("FEERECON_DVCQG_PARTNER_CODE", "000.00.00.H62"),
        ("FEERECON_DVCQG_SECRET", "dvcqg-secret-value"),
        ("FEERECON_DVCQG_TOKEN", "dvcqg-token-value"),
        ("FEERECON_DVCQG_INIT_URL", "https://testthanhtoan.dichvucong.gov.vn/api/init/"),
        ("FEERECON_DVCQG_QUERY_URL", "https://testthanhtoan.dichvucong.gov.vn/api/query"),
        ("FEERECON_DVCQG_BILL_URL", "https://testthanhtoan.dichvucong.gov.vn/api/bill"),
        ("FEERECON_DVCQG_BENEFICIARY", "1234567890,970415,Sở Tài chính"),
        ("FEERECON_DVCQG_LOOKUP_ALLOW", "203.0.113.0/24, 198.51.100.7"),
    ])
    .unwrap();
    let dv = d.dvcqg.as_ref().unwrap();
    assert_eq!((dv.init_url.as_str(), dv.lookup_allow.len()), ("https://testthanhtoan.dichvucong.gov.vn/api/init", 2));
    assert!(format!("{d:?}").contains("000.00.00.H62") && !format!("{d:?}").contains("dvcqg-token-value"));
    let shown = format!("{c:?}{d:?}");
    for secret in
        ["vnpay-hash-secret-value", "momo-access-value", "momo-secret-value", "db-password-value", "dvcqg-secret-value"]
    {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
}

#[test]
fn a_database_url_is_shown_without_its_password() {
    for (url, shown) in [
        (
            "postgres://app:s3cr%40t@db.example:5432/fees?sslmode=require",
            "postgres://app:***@db.example:5432/fees?sslmode=require",
        ),
        ("postgresql://app@db/fees", "postgresql://app@db/fees"),
        (
            "postgres://db/fees?user=app&password=s3cret&sslmode=require",
            "postgres://db/fees?user=app&password=***&sslmode=require",
        ),
        ("postgres://app:p@ss@db", "postgres://app:***@db"),
        ("sqlite://feerecon.db?mode=rwc", "sqlite://feerecon.db?mode=rwc"),
    ] {
        assert_eq!(super::redact_url(url), shown);
    }
}
