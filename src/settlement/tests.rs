use std::path::Path;

use super::*;

fn profiles_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/settlement-profiles")
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn sample() -> Vec<Line> {
    vec![
        Line {
            line_no: 2,
            gateway_txn_no: "14226112".into(),
            txn_ref: "240715ABC".into(),
            amount: 1_234_500,
            fee: 13_580,
            txn_time: t("2024-07-15T23:59:59+07:00"),
            status: LineStatus::Success,
        },
        Line {
            line_no: 3,
            gateway_txn_no: "14226113".into(),
            txn_ref: "240715ABD".into(),
            amount: 115_000,
            fee: 0,
            txn_time: t("2024-07-16T00:00:00+07:00"),
            status: LineStatus::Refund,
        },
    ]
}

fn parse_ok(p: &Profile, bytes: &[u8]) -> Vec<Line> {
    parse(p, bytes, &|_| {}).unwrap()
}

#[test]
fn every_fixture_profile_reads_what_it_writes() {
    for name in ["canonical", "vnpay", "momo", "zalopay"] {
        let p = Profile::resolve(&profiles_dir(), name).unwrap();
        let bytes = write(&p, &sample());
        let got = parse_ok(&p, &bytes);
        assert_eq!(got, sample(), "{name}");
        assert_eq!(got[0].business_date().to_string(), "2024-07-15", "23:59:59 belongs to the 15th");
        assert_eq!(got[1].business_date().to_string(), "2024-07-16", "00:00:00 to the 16th");
    }
}

#[test]
fn each_profile_has_its_gateway_s_shape() {
    let vnpay = write(&Profile::resolve(&profiles_dir(), "vnpay").unwrap(), &sample());
    assert!(vnpay.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with BOM");
    let text = String::from_utf8_lossy(&vnpay);
    assert!(text.contains("123450000"), "×100 amounts: {text}");
    assert!(text.contains("15/07/2024 23:59:59"), "{text}");
    let momo = String::from_utf8(write(&Profile::resolve(&profiles_dir(), "momo").unwrap(), &sample())).unwrap();
    assert!(momo.contains("\"1,234,500\"") || momo.contains("1,234,500"), "thousands: {momo}");
    assert!(momo.starts_with("Mã giao dịch MoMo;"), "{momo}");
    let zalo = write(&Profile::resolve(&profiles_dir(), "zalopay").unwrap(), &sample());
    assert_eq!(&zalo[..2], &[0xFF, 0xFE], "UTF-16LE");
}

#[test]
fn the_canonical_profile_takes_local_times_and_rfc3339() {
    let p = Profile::canonical();
    let csv = "gateway_txn_no,txn_ref,amount,fee,txn_time,status\nA1,R1,115000,1265,2024-07-15 09:00:00,success\nA2,R2,5000,0,2024-07-15T02:00:00Z,refund\n";
    let lines = parse_ok(&p, csv.as_bytes());
    assert_eq!(lines[0].txn_time, t("2024-07-15T09:00:00+07:00"));
    assert_eq!(lines[1].txn_time, t("2024-07-15T09:00:00+07:00"));
    assert_eq!((lines[1].status, lines[1].line_no), (LineStatus::Refund, 3));
}

#[test]
fn a_header_only_file_is_a_day_without_transactions() {
    assert!(parse_ok(&Profile::canonical(), b"gateway_txn_no,txn_ref,amount,fee,txn_time,status\n").is_empty());
}

#[test]
fn bad_files_are_refused_with_line_field_and_reason() {
    let head = "gateway_txn_no,txn_ref,amount,fee,txn_time,status\n";
    let good = "A1,R1,115000,1265,2024-07-15 09:00:00,success\n";
    let p = Profile::canonical();
    let cases: Vec<(Vec<u8>, usize, Option<&str>, &str)> = vec![
        (
            "gateway_txn_no,txn_ref,amount,txn_time,status\nA1,R1,1,2024-07-15 09:00:00,success\n".into(),
            1,
            Some("fee"),
            "missing column",
        ),
        ("gateway_txn_no,txn_ref,amount,amount,fee,txn_time,status\n".into(), 1, Some("amount"), "appears twice"),
        (format!("{head}{good}A2,R2,-5000,0,2024-07-15 09:00:00,success\n").into(), 3, Some("amount"), "negative"),
        (format!("{head}{good}{good}A3,R3,5000,0\n").into(), 4, None, "truncated"),
        (format!("{head}A1,R1,115000,1265,15/07/2024,success\n").into(), 2, Some("txn_time"), "matches none"),
        (format!("{head}A1,R1,115000,1265,2024-07-15 09:00:00,chargeback\n").into(), 2, Some("status"), "neither"),
        (format!("{head}A1,,115000,1265,2024-07-15 09:00:00,success\n").into(), 2, Some("txn_ref"), "empty"),
        (format!("{head}A1,R1,11.5,0,2024-07-15 09:00:00,success\n").into(), 2, Some("amount"), "not a whole amount"),
        ([head.as_bytes(), b"A1,R1,1\xff5,0,2024-07-15 09:00:00,success\n"].concat(), 2, None, "wrong encoding"),
    ];
    for (bytes, line, field, reason) in cases {
        let e = parse(&p, &bytes, &|_| {}).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (line, field), "{e}");
        assert!(e.to_string().contains(reason), "{e}");
    }
    // ×100 amounts must be whole đồng.
    let vnpay = Profile::resolve(&profiles_dir(), "vnpay").unwrap();
    let mut bytes = write(&vnpay, &sample());
    let text = String::from_utf8(bytes.clone()).unwrap().replace("123450000", "123450050");
    bytes = text.into_bytes();
    let e = parse(&vnpay, &bytes, &|_| {}).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (2, Some("amount")));
    assert!(e.reason.contains("divisible"), "{e}");
    // A UTF-16 file read with a UTF-8 profile, and the reverse.
    let zalo = write(&Profile::resolve(&profiles_dir(), "zalopay").unwrap(), &sample());
    assert!(parse(&Profile::canonical(), &zalo, &|_| {}).unwrap_err().reason.contains("wrong encoding"));
    let e = parse(&Profile::resolve(&profiles_dir(), "zalopay").unwrap(), b"abc", &|_| {}).unwrap_err();
    assert!(e.reason.contains("wrong encoding"), "{e}");
    // A BOM the profile requires.
    let e = parse(&vnpay, &write(&Profile::canonical(), &sample()), &|_| {}).unwrap_err();
    assert!(e.reason.contains("byte-order mark"), "{e}");
}

#[test]
fn profiles_are_checked() {
    assert!(
        Profile::parse(
            "[profile]\nname='x'\nencoding='latin1'\ntime_formats=[]\nsuccess_words=[]\nrefund_words=[]\n[columns]\n"
        )
        .unwrap_err()
        .contains("encoding")
    );
    assert!(Profile::resolve(&profiles_dir(), "nope").unwrap_err().contains("nope.toml"));
}
